#!/usr/bin/python3
"""PyTorch baseline for `make bench`: the same model over the same CSV, in PyTorch's best
set-up, so precast's figures have something honest to stand beside.

Usage:
  /usr/bin/python3 scripts/bench_torch.py --model OUT_DIR/bench.pt --csv OUT_DIR/bench.csv \
      --threads N [--mode forward|e2e] [--batch 1024] [--out FILE] [--repeat R]
  /usr/bin/python3 scripts/bench_torch.py --kind wide|embed|items --model OUT_DIR/K.pt \
      --csv OUT_DIR/K.csv --threads N [--mode forward|e2e] ...

--kind selects the module (default mlp: the 64 -> 256 -> 256 -> 10 example MLP of
make_bench_data.py; wide, embed, items: issue 3's models of make_bench_models.py, built by
make_common.build_bench_model).  For `embed` the rows are pre-loaded as two tensors, the
16 dense features as float32 and the 8 id columns as int64, and the module gets both.
Measured at threads=1 (2-core machine, other work running, 2026-11-26): wide forward
25,317 rows/s (84.8 GFLOP/s), e2e 13,272; embed forward 579,837, e2e 187,541; items forward
3,414 rows/s (87.5 GFLOP/s), e2e 2,254.

Prints exactly one line per run:
  torch <mode> threads=<N> rows=<R> seconds=<S> rows_per_s=<X>

Modes:
  forward  rows pre-loaded (untimed) as one contiguous float32 tensor; times only the
           forward pass over all rows in batches of --batch (after one warm-up batch).
  e2e      times everything a user's script does: read the CSV, forward, top-1 class and
           its probability, sort by id, write sorted `id,label,p` lines to --out (default: a
           temporary file, removed afterwards).  For --kind wide/items the head is top-k
           (k = 5 / 10) with probabilities (items: softmax over the logits via logsumexp,
           computed for the k only) and lines are `id,c1:p1|c2:p2|...`; for embed `id,p`.

Set-up (best case for PyTorch): torch.set_num_threads(N), torch.inference_mode(), the module
in eval(), batches sliced from one contiguous tensor, outputs written into preallocated
tensors.  CSV reading uses np.loadtxt with a structured dtype (id + 64 float32 in one pass):
since numpy 1.23 loadtxt is a C parser and it measured fastest of what Debian ships without
pandas (np.fromstring over split lines was ~3x slower, str.split + astype ~6x slower);
pandas.read_csv (C engine) is used instead when python3-pandas is installed.

Environment the CALLER should set for a fair best-case comparison (it must be in place before
the process starts; this script fills in the three thread variables only when they are unset):
  OMP_NUM_THREADS=N            torch's intra-op (OpenMP) pool, the same N as --threads
  OPENBLAS_NUM_THREADS=1       the usual advice: Debian's torch 1.13 runs Linear's GEMM in
                               OpenBLAS (pthread build), whose own pool otherwise fights
                               torch's OpenMP pool.  Measured here (2 cores, 1M rows, batch
                               1024): with =1, threads=2 is no faster than threads=1 (~0.5M
                               rows/s), because the GEMM then runs on one core.  The best
                               set-up for N>1 is OPENBLAS_NUM_THREADS=N together with
                               OMP_WAIT_POLICY=passive (~0.7-0.8M rows/s at N=2); with
                               OPENBLAS_NUM_THREADS=N but OpenMP's default spinning workers,
                               threads=2 drops to ~0.13M rows/s.  So this script defaults
                               to OPENBLAS_NUM_THREADS=N and OMP_WAIT_POLICY=passive.
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296
                               keep large buffers (up to 1 GiB) in the heap instead of a
                               fresh mmap/munmap (and page faults) per batch and tensor.
                               (Via GLIBC_TUNABLES glibc 2.36 accepts thresholds above the
                               32 MiB cap that mallopt() enforces; checked with mallinfo2.)
                               Measured: at threads=1 forward ~0.37M rows/s without it vs
                               ~0.51M with it.
Forward mode reports the fastest of --repeat passes (default 3; e2e default 1) since the
2-core machine's timings vary by +-30% run to run.
"""
import argparse
import os
import sys
import tempfile
import time


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch baseline for precast's benchmark")
    ap.add_argument("--kind", choices=["mlp", "wide", "embed", "items"], default="mlp",
                    help="which module (default mlp, the make_bench_data.py model)")
    ap.add_argument("--model", required=True,
                    help="state_dict saved by make_bench_data.py / make_bench_models.py")
    ap.add_argument("--csv", required=True, help="id column then the model's columns")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--mode", choices=["forward", "e2e"], default="forward")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--out", help="e2e: where to write the sorted id,label,p lines")
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed passes, the fastest is reported (default: 3 forward, 1 e2e)")
    a = ap.parse_args()
    if a.repeat is None:
        a.repeat = 3 if a.mode == "forward" else 1
    if a.threads < 1 or a.batch < 1 or a.repeat < 1:
        ap.error("--threads, --batch and --repeat must be >= 1")
    return a


def read_csv(path, np):
    """Return (ids as a bytes array, features as a contiguous float32 [rows, 64] array)."""
    with open(path, "rb") as fh:
        header = fh.readline().decode().rstrip("\r\n").split(",")
    n_feat = len(header) - 1
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        dtypes = {header[0]: str}
        dtypes.update({c: np.float32 for c in header[1:]})
        df = pd.read_csv(path, dtype=dtypes, engine="c")
        ids = df[header[0]].to_numpy().astype("S")
        x = np.ascontiguousarray(df[header[1:]].to_numpy(dtype=np.float32))
        return ids, x
    dt = np.dtype([("id", "S64"), ("f", np.float32, (n_feat,))])
    rec = np.loadtxt(path, delimiter=",", skiprows=1, dtype=dt, comments=None)
    return rec["id"], np.ascontiguousarray(rec["f"])


def read_csv_kind(path, np, kind, mc):
    """--kind wide/embed/items: (ids bytes array, [input arrays in forward() order]).
    Columns are matched by name to make_common.bench_io(kind); each input's columns must be
    contiguous and in order in the header."""
    with open(path, "rb") as fh:
        header = fh.readline().decode().rstrip("\r\n").split(",")
    inputs, _ = mc.bench_io(kind)
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        dtypes = {header[0]: str}
        for _, dt, cols in inputs:
            dtypes.update({c: dt for c in cols})
        df = pd.read_csv(path, dtype=dtypes, engine="c")
        ids = df[header[0]].to_numpy().astype("S")
        return ids, [np.ascontiguousarray(df[cols].to_numpy(dtype=dt)) for _, dt, cols in inputs]
    fields = [("id", "S64")]
    pos = 1
    order = sorted(range(len(inputs)), key=lambda i: header.index(inputs[i][2][0]))
    for i in order:
        name, dt, cols = inputs[i]
        if header[pos:pos + len(cols)] != cols:
            raise SystemExit("bench_torch: %s: columns %s..%s not found in order at column %d"
                             % (path, cols[0], cols[-1], pos + 1))
        fields.append((name, dt, (len(cols),)))
        pos += len(cols)
    if pos != len(header):
        raise SystemExit("bench_torch: %s: %d columns, expected %d" % (path, len(header), pos))
    rec = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.dtype(fields), comments=None)
    return rec["id"], [np.ascontiguousarray(rec[name]) for name, _, _ in inputs]


def forward_multi(model, xs, batch, head=None):
    """Forward over all rows of the input tensors xs (sliced alike) in batches; head(s, out)
    consumes each batch's output."""
    rows = xs[0].shape[0]
    for s in range(0, rows, batch):
        out = model(*[x[s:s + batch] for x in xs])
        if head is not None:
            head(s, out)


def e2e_kind_once(np, torch, mc, model, a, out):
    """--kind wide/embed/items end to end: read, forward, head, sort by id, write."""
    ids, arrs = read_csv_kind(a.csv, np, a.kind, mc)
    xs = [torch.from_numpy(v) for v in arrs]
    rows = xs[0].shape[0]
    spec = mc.BENCH_MODELS[a.kind]
    k = spec["top_k"]
    if spec["final"] == "sigmoid":
        p = torch.empty(rows, dtype=torch.float32)

        def head(s, y):
            p[s:s + y.shape[0]] = y[:, 0]
    else:
        p = torch.empty(rows, k, dtype=torch.float32)
        cls = torch.empty(rows, k, dtype=torch.int64)
        logits = spec["final"] is None

        def head(s, y):
            v, i = torch.topk(y, k, dim=1)
            if logits:
                v = torch.exp(v - torch.logsumexp(y, dim=1, keepdim=True))
            p[s:s + y.shape[0]] = v
            cls[s:s + y.shape[0]] = i
    forward_multi(model, xs, a.batch, head)
    order = np.argsort(ids, kind="stable")
    ids_s = ids[order].tolist()
    with open(out, "wb") as fh:
        if spec["final"] == "sigmoid":
            fh.write(b"id,p\n")
            fh.write(b"".join([b"%s,%.6g\n" % t for t in zip(ids_s, p.numpy()[order].tolist())]))
        else:
            fh.write(b"id,top\n")
            ps = p.numpy()[order].tolist()
            cs = cls.numpy()[order].tolist()
            fh.write(b"".join([b"%s,%s\n" % (i, b"|".join([b"%d:%.6g" % cp for cp in zip(c, q)]))
                               for i, c, q in zip(ids_s, cs, ps)]))
    return rows


def forward_all(torch, model, x, batch, labels_out=None, p_out=None):
    for s in range(0, x.shape[0], batch):
        probs = model(x[s:s + batch])
        if labels_out is not None:
            p, lab = probs.max(dim=1)
            p_out[s:s + batch] = p
            labels_out[s:s + batch] = lab


def e2e_once(np, torch, model, a, out):
    """Read, forward, top-1, sort by id, write: what a user's batch script does."""
    ids, xs = read_csv(a.csv, np)
    x = torch.from_numpy(xs)
    rows = x.shape[0]
    labels = torch.empty(rows, dtype=torch.int64)
    p = torch.empty(rows, dtype=torch.float32)
    forward_all(torch, model, x, a.batch, labels, p)
    order = np.argsort(ids, kind="stable")
    ids_s = ids[order].tolist()
    lab_s = labels.numpy()[order].tolist()
    p_s = p.numpy()[order].tolist()
    with open(out, "wb") as fh:
        fh.write(b"id,label,p\n")
        fh.write(b"".join([b"%s,%d,%.6g\n" % t for t in zip(ids_s, lab_s, p_s)]))
    return rows


def run_kind(a, np, torch, mc):
    """--kind wide/embed/items: (fastest seconds, rows)."""
    model = mc.build_bench_model(a.kind)
    model.load_state_dict(torch.load(a.model, map_location="cpu"))
    model.eval()
    with torch.inference_mode():
        if a.mode == "forward":
            ids, arrs = read_csv_kind(a.csv, np, a.kind, mc)
            xs = [torch.from_numpy(v) for v in arrs]
            rows = xs[0].shape[0]
            forward_multi(model, [x[:a.batch] for x in xs], a.batch)  # warm-up, real rows
            forward_multi(model, [x[:a.batch] for x in xs], a.batch)
            secs = float("inf")
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                forward_multi(model, xs, a.batch)
                secs = min(secs, time.perf_counter() - t0)
            return secs, rows
        out = a.out
        tmp = None
        if out is None:
            fd, tmp = tempfile.mkstemp(prefix="bench_torch-", suffix=".csv")
            os.close(fd)
            out = tmp
        try:
            secs = float("inf")
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                rows = e2e_kind_once(np, torch, mc, model, a, out)
                secs = min(secs, time.perf_counter() - t0)
        finally:
            if tmp is not None:
                os.unlink(tmp)
        return secs, rows


def main():
    a = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(a.threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_common as mc

    torch.set_num_threads(a.threads)
    if a.kind != "mlp":
        secs, rows = run_kind(a, np, torch, mc)
        print("torch %s threads=%d rows=%d seconds=%.3f rows_per_s=%.0f"
              % (a.mode, a.threads, rows, secs, rows / secs))
        return 0
    model = mc.build_mlp()
    model.load_state_dict(torch.load(a.model, map_location="cpu"))
    model.eval()

    with torch.inference_mode():
        warm = torch.rand(a.batch, mc.N_IN)
        model(warm)
        model(warm)

        if a.mode == "forward":
            ids, xs = read_csv(a.csv, np)
            x = torch.from_numpy(xs)
            rows = x.shape[0]
            forward_all(torch, model, x[:a.batch], a.batch)  # warm-up on real rows
            secs = float("inf")
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                forward_all(torch, model, x, a.batch)
                secs = min(secs, time.perf_counter() - t0)
        else:
            out = a.out
            tmp = None
            if out is None:
                fd, tmp = tempfile.mkstemp(prefix="bench_torch-", suffix=".csv")
                os.close(fd)
                out = tmp
            try:
                secs = float("inf")
                for _ in range(a.repeat):
                    t0 = time.perf_counter()
                    rows = e2e_once(np, torch, model, a, out)
                    secs = min(secs, time.perf_counter() - t0)
            finally:
                if tmp is not None:
                    os.unlink(tmp)

    print("torch %s threads=%d rows=%d seconds=%.3f rows_per_s=%.0f"
          % (a.mode, a.threads, rows, secs, rows / secs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
