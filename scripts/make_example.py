#!/usr/bin/python3
"""Make precast's example: a digits classifier (ONNX + torch state_dict), its labels, a
100,000-row input CSV and PyTorch's own answers for the first 20 ids.

Usage: /usr/bin/python3 scripts/make_example.py OUT_DIR     (normally via make-example.sh)

Writes, in OUT_DIR:
  model.onnx    nn.Sequential(Linear(64,256), ReLU, Dropout(0.1), Linear(256,256), ReLU,
                Linear(256,10), Softmax(dim=1)) trained on scikit-learn's digits,
                exported in eval mode, opset 13, input "x" [batch,64] -> output "probs"
  model.pt      the module's state_dict (for scripts/bench_torch.py)
  labels.txt    zero .. nine, one per line (class index i -> line i)
  input.csv     user_id,f0..f63; ids u000000..u099999 in shuffled order; features are
                digits images / 16 plus small noise, clipped to [0,1], 4 decimals at most
  expected.csv  user_id,label_index,p: PyTorch's top-1 for the first 20 ids in sorted
                order, computed from the float32 values parsed back from input.csv's text
Skips the work ("up to date") when all outputs exist and this script is unchanged.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_common as mc  # noqa: E402

import numpy as np  # noqa: E402

OUTPUTS = ["model.onnx", "model.pt", "labels.txt", "input.csv", "expected.csv"]
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
N_ROWS = 100_000
N_EXPECTED = 20
SEED = 20240601


def train(X, y):
    import torch
    import torch.nn as nn
    torch.manual_seed(SEED)
    model = mc.build_mlp()
    body = model[:-1]  # shares parameters with model; logits before the Softmax
    rng = np.random.default_rng(SEED)
    idx = rng.permutation(len(X))
    n_test = len(X) // 5
    test, tr = idx[:n_test], idx[n_test:]
    Xtr = torch.from_numpy(X[tr]); ytr = torch.from_numpy(y[tr])
    Xte = torch.from_numpy(X[test]); yte = torch.from_numpy(y[test])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(SEED)
    for epoch in range(30):
        model.train()
        perm = torch.randperm(len(Xtr), generator=g)
        for s in range(0, len(Xtr), 64):
            b = perm[s:s + 64]
            opt.zero_grad()
            loss = loss_fn(body(Xtr[b]), ytr[b])
            loss.backward()
            opt.step()
    model.eval()
    with torch.inference_mode():
        acc = (model(Xte).argmax(1) == yte).float().mean().item()
    print("make_example: held-out accuracy %.4f (%d test images, final train loss %.4f)"
          % (acc, len(test), loss.item()))
    return model


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: make_example.py OUT_DIR\n")
        return 64
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if mc.up_to_date(out, "make_example", OUTPUTS):
        print("make_example: %s up to date" % out)
        return 0
    t0 = time.time()

    import torch
    from sklearn.datasets import load_digits
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)

    model = train(X, y)
    torch.save(model.state_dict(), os.path.join(out, "model.pt"))
    ops = mc.export_onnx(model, os.path.join(out, "model.onnx"))
    print("make_example: model.onnx ops: %s" % " ".join(ops))

    with open(os.path.join(out, "labels.txt.tmp"), "w") as fh:
        fh.write("\n".join(LABELS) + "\n")
    os.replace(os.path.join(out, "labels.txt.tmp"), os.path.join(out, "labels.txt"))

    # Input rows: random digits images plus noise; ids in shuffled order.
    rng = np.random.default_rng(SEED + 1)
    pick = rng.integers(0, len(X), size=N_ROWS)
    feats = X[pick].astype(np.float64) + rng.normal(0.0, 0.03, size=(N_ROWS, X.shape[1]))
    k = mc.quantize(feats)
    numbers = rng.permutation(N_ROWS)
    ids = mc.id_chars("u", numbers, 6)
    header = ["user_id"] + ["f%d" % i for i in range(X.shape[1])]
    csv_path = os.path.join(out, "input.csv")
    mc.write_csv(csv_path, header, ids, k)

    # Expected answers: parse the first N_EXPECTED ids (sorted) back from the CSV text.
    want = {"u%06d" % i for i in range(N_EXPECTED)}
    rows = {}
    with open(csv_path) as fh:
        fh.readline()
        for line in fh:
            uid = line[:line.index(",")]
            if uid in want:
                rows[uid] = np.array(line.rstrip("\n").split(",")[1:]).astype(np.float32)
                if len(rows) == len(want):
                    break
    keys = sorted(rows)
    batch = torch.from_numpy(np.stack([rows[u] for u in keys]))
    with torch.inference_mode():
        probs = model(batch)
    p, lab = probs.max(dim=1)
    with open(os.path.join(out, "expected.csv.tmp"), "w") as fh:
        fh.write("user_id,label_index,p\n")
        for u, li, pi in zip(keys, lab.tolist(), p.tolist()):
            fh.write("%s,%d,%.9g\n" % (u, li, pi))
    os.replace(os.path.join(out, "expected.csv.tmp"), os.path.join(out, "expected.csv"))

    mc.write_stamp(out, "make_example")
    print("make_example: wrote %s (%d rows, %.1f MB) in %.1f s"
          % (out, N_ROWS, os.path.getsize(csv_path) / 1e6, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
