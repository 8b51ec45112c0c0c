#!/usr/bin/python3
"""Make issue 3's benchmark models and their input rows, for `make bench`.

Usage: /usr/bin/python3 scripts/make_bench_models.py OUT_DIR [--kinds wide,embed,items]
                                                     [--rows N] [--force]

For each kind K (architectures in make_common.BENCH_MODELS / build_bench_model), in OUT_DIR:
  K.onnx   torch.onnx.export of the module in eval mode, opset 13, dynamic "batch" axis
  K.pt     its state_dict, for scripts/bench_torch.py --kind K
  K.csv    header + rows, ids r0000000.. (7 digits) in shuffled order
and bench_models.json describing all three (inputs and the CSV columns that feed them,
output, head, top_k, FLOPs per row).

  wide   512 dense -> 1024 relu -> 1024 relu -> 100 Softmax     200,000 rows
         input "x" float32 [batch,512] <- f0..f511; output "probs" [batch,100];
         head softmax_topk, top_k 5.  CSV about 0.7 GB.
  embed  8 id columns (vocabulary 100,000 each, dim 32, one 800,000 x 32 table; the
         per-column offsets i*100000 are added inside the graph), mean over the 8,
         concat [pooled(32), dense(16)] -> 256 relu -> 64 relu -> 1 Sigmoid; 1,000,000 rows
         inputs "dense" float32 [batch,16] <- d0..d15, "cats" int64 [batch,8] <- c0..c7
         (raw ids 0..99999, uniform); output "p" [batch,1]; head sigmoid.
         CSV columns: id,c0..c7,d0..d15.
  items  64 dense -> 256 relu -> 50,000 logits (no softmax in the graph); 100,000 rows
         input "x" float32 [batch,64] <- f0..f63; output "logits" [batch,50000];
         head softmax_topk, top_k 10.
Dense features are uniform in [0,1] with 4 decimals (trailing zeros dropped).

A kind is skipped when its three files exist and its stamp (.make_bench_models-K.stamp:
the kind's spec, rows and seed) matches; --force remakes it.  --rows N overrides every
selected kind's row count (for quick tries).  Prints the time each step took.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_common as mc  # noqa: E402

import numpy as np  # noqa: E402

SEED = 1303
FORMAT = 1  # bump when the files this script writes change


def stamp_text(kind, rows):
    return json.dumps({"format": FORMAT, "kind": kind, "rows": rows, "seed": SEED,
                       "spec": mc.BENCH_MODELS[kind]}, sort_keys=True)


def stamp_path(out, kind):
    return os.path.join(out, ".make_bench_models-%s.stamp" % kind)


def up_to_date(out, kind, rows):
    if not all(os.path.exists(os.path.join(out, kind + ext)) for ext in (".onnx", ".pt", ".csv")):
        return False
    try:
        with open(stamp_path(out, kind)) as fh:
            return fh.read().strip() == stamp_text(kind, rows)
    except OSError:
        return False


def make_model(out, kind, kidx):
    import torch
    torch.manual_seed(SEED + kidx)
    model = mc.build_bench_model(kind).eval()
    torch.save(model.state_dict(), os.path.join(out, kind + ".pt"))
    spec = mc.BENCH_MODELS[kind]
    inputs, output = mc.bench_io(kind)
    args = tuple(torch.zeros(2, len(cols), dtype=getattr(torch, dt)) for _, dt, cols in inputs)
    ops = mc.export_onnx_multi(model, args, [n for n, _, _ in inputs], [output],
                               os.path.join(out, kind + ".onnx"))
    return ops


def make_csv(out, kind, kidx, rows):
    spec = mc.BENCH_MODELS[kind]
    inputs, _ = mc.bench_io(kind)
    rng = np.random.default_rng(SEED + kidx)
    numbers = rng.permutation(rows)
    width = max(7, len(str(rows - 1)))
    header = ["id"]
    for name, dt, cols in (inputs[::-1] if spec["n_cats"] else inputs):
        header += cols                       # embed: ids c0..c7 first, then d0..d15
    row_bytes = 8 + spec["n_dense"] * 7 + spec["n_cats"] * 6
    chunk = max(1000, min(50_000, (64 << 20) // row_bytes // 8))
    path = os.path.join(out, kind + ".csv")
    tmp = path + ".tmp"
    vdigits = len(str(spec["vocab"] - 1)) if spec["n_cats"] else 0
    with open(tmp, "wb") as fh:
        fh.write((",".join(header) + "\n").encode())
        for s in range(0, rows, chunk):
            n = min(chunk, rows - s)
            blocks = []
            if spec["n_cats"]:
                blocks.append(mc.int_fields(rng.integers(0, spec["vocab"],
                                                         size=(n, spec["n_cats"])), vdigits))
            blocks.append(mc.float_fields(rng.integers(0, 10001, size=(n, spec["n_dense"]))))
            fh.write(mc.format_fields(mc.id_chars("r", numbers[s:s + n], width), blocks))
    os.replace(tmp, path)
    return os.path.getsize(path)


def describe(kind, rows):
    spec = mc.BENCH_MODELS[kind]
    inputs, output = mc.bench_io(kind)
    return {
        "model": kind + ".onnx", "state_dict": kind + ".pt", "csv": kind + ".csv",
        "rows": rows, "id_column": "id",
        "inputs": [{"name": n, "dtype": dt, "width": len(c), "columns": c}
                   for n, dt, c in inputs],
        "output": {"name": output, "width": spec["layers"][-1],
                   "ends_in": {"softmax": "Softmax", "sigmoid": "Sigmoid"}.get(spec["final"],
                                                                             "Gemm")},
        "head": spec["head"], "top_k": spec["top_k"], "flops_per_row": mc.bench_flops(kind),
        "vocab": spec["vocab"] or None,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--kinds", default="wide,embed,items")
    ap.add_argument("--rows", type=int, default=None, help="override every kind's row count")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    kinds = [k for k in a.kinds.split(",") if k]
    for k in kinds:
        if k not in mc.BENCH_MODELS:
            ap.error("unknown kind %r (wide, embed, items)" % k)
    out = a.out_dir
    os.makedirs(out, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    all_kinds = list(mc.BENCH_MODELS)
    desc_path = os.path.join(out, "bench_models.json")
    try:
        with open(desc_path) as fh:
            desc = json.load(fh)
    except (OSError, ValueError):
        desc = {}
    for k in kinds:
        kidx = all_kinds.index(k)
        rows = a.rows or mc.BENCH_MODELS[k]["rows"]
        if not a.force and up_to_date(out, k, rows):
            print("make_bench_models: %s up to date" % k)
            desc[k] = describe(k, rows)
            continue
        try:
            os.remove(stamp_path(out, k))
        except OSError:
            pass
        t0 = time.time()
        ops = make_model(out, k, kidx)
        t1 = time.time()
        size = make_csv(out, k, kidx, rows)
        t2 = time.time()
        with open(stamp_path(out, k), "w") as fh:
            fh.write(stamp_text(k, rows) + "\n")
        desc[k] = describe(k, rows)
        print("make_bench_models: %s: model (%s) in %.1f s; %d rows, %.0f MB CSV in %.1f s "
              "(%.0f MB/s)" % (k, " ".join(dict.fromkeys(ops)), t1 - t0, rows, size / 1e6,
                               t2 - t1, size / 1e6 / max(t2 - t1, 1e-9)))
    with open(desc_path + ".tmp", "w") as fh:
        json.dump(desc, fh, indent=1)
        fh.write("\n")
    os.replace(desc_path + ".tmp", desc_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
