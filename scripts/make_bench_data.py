#!/usr/bin/python3
"""Make precast's benchmark model and data.

Usage: /usr/bin/python3 scripts/make_bench_data.py OUT_DIR [--rows N]

Writes, in OUT_DIR:
  bench.onnx   the example's architecture, nn.Sequential(Linear(64,256), ReLU, Dropout(0.1),
               Linear(256,256), ReLU, Linear(256,10), Softmax(dim=1)), randomly initialised
               with a fixed seed, exported in eval mode (opset 13, "x" [batch,64] -> "probs")
  bench.pt     its state_dict, for scripts/bench_torch.py
  bench.csv    header id,f0..f63 and N rows (default 1,000,000): ids r0000000..r0999999
               (7 digits) in shuffled order, uniform random features in [0,1] with 4
               decimals (trailing zeros dropped)
Skips the work ("up to date") when all outputs exist and this script is unchanged.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_common as mc  # noqa: E402

import numpy as np  # noqa: E402

OUTPUTS = ["bench.onnx", "bench.pt", "bench.csv"]
SEED = 7
CHUNK = 50_000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--rows", type=int, default=1_000_000)
    a = ap.parse_args()
    out = a.out_dir
    os.makedirs(out, exist_ok=True)
    name = "make_bench_data-%d" % a.rows
    if mc.up_to_date(out, name, OUTPUTS):
        print("make_bench_data: %s up to date" % out)
        return 0
    t0 = time.time()

    import torch
    torch.manual_seed(SEED)
    model = mc.build_mlp().eval()
    torch.save(model.state_dict(), os.path.join(out, "bench.pt"))
    ops = mc.export_onnx(model, os.path.join(out, "bench.onnx"))
    print("make_bench_data: bench.onnx ops: %s" % " ".join(ops))

    rng = np.random.default_rng(SEED)
    numbers = rng.permutation(a.rows)
    width = max(7, len(str(a.rows - 1)))
    header = ["id"] + ["f%d" % i for i in range(mc.N_IN)]
    path = os.path.join(out, "bench.csv")
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write((",".join(header) + "\n").encode())
        for s in range(0, a.rows, CHUNK):
            n = min(CHUNK, a.rows - s)
            k = rng.integers(0, 10001, size=(n, mc.N_IN))
            fh.write(mc.format_rows(mc.id_chars("r", numbers[s:s + n], width), k))
    os.replace(tmp, path)

    mc.write_stamp(out, name)
    # Drop stamps of other row counts: they describe files that were just replaced.
    for f in os.listdir(out):
        if f.startswith(".make_bench_data-") and f != "." + name + ".stamp":
            os.remove(os.path.join(out, f))
    print("make_bench_data: wrote %s (%d rows, %.1f MB) in %.1f s"
          % (out, a.rows, os.path.getsize(path) / 1e6, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
