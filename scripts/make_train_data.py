#!/usr/bin/python3
"""Training data sets for `precast train` (issue 9), written as CSV.

  make_train_data.py digits DIR      scikit-learn's digits (1,797 real 8x8 images, 64 features
                                     0..16): DIR/digits-train.csv (four fifths) and
                                     DIR/digits-test.csv (the held-back fifth), columns
                                     id,label,p0..p63; the split is fixed (seed 0), stratified.
  make_train_data.py classes DIR [--rows N] [--classes C] [--seed S]
                                     a synthetic many-class task: C classes with Zipf-like
                                     frequencies, each a noisy point near its class centre in 32
                                     dimensions; DIR/classes-train.csv and DIR/classes-test.csv
                                     with columns id,label,x0..x31. Default 20,000 classes.
  make_train_data.py tiny DIR        the first 60 digits rows only (DIR/tiny-train.csv), for
                                     provoking overfitting.
  make_train_data.py bench DIR [--rows N]
                                     DIR/bench-train.csv: N rows (default 100,000) of digits
                                     with noise (id,label,p0..p63), for make bench-train.
  make_train_data.py embed DIR       a small task with an id column and a bag column
                                     (user, items "3|17|5") beside 4 dense features, label =
                                     a function of both, for the embedding path.

Needs Debian's python3-sklearn and python3-numpy (run with /usr/bin/python3).
"""
import argparse
import os
import sys

import numpy as np


def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(r) + "\n")


def digits(out):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x, y = d.data.astype(np.float32), d.target
    ids = np.arange(len(y))
    xtr, xte, ytr, yte, itr, ite = train_test_split(x, y, ids, test_size=0.2, random_state=0, stratify=y)
    header = ["id", "label"] + ["p%d" % i for i in range(64)]
    for name, xs, ys, ii in (("train", xtr, ytr, itr), ("test", xte, yte, ite)):
        write_csv(os.path.join(out, "digits-%s.csv" % name), header,
                  (["d%04d" % i, str(c)] + ["%g" % v for v in row] for row, c, i in zip(xs, ys, ii)))
    # The test rows without their label: what `precast run` scores.
    write_csv(os.path.join(out, "digits-test-features.csv"), ["id"] + header[2:],
              (["d%04d" % i] + ["%g" % v for v in row] for row, i in zip(xte, ite)))


def tiny(out):
    from sklearn.datasets import load_digits
    d = load_digits()
    header = ["id", "label"] + ["p%d" % i for i in range(64)]
    write_csv(os.path.join(out, "tiny-train.csv"), header,
              (["t%04d" % i, str(d.target[i])] + ["%g" % v for v in d.data[i]] for i in range(60)))


def classes(out, rows, ncls, seed, dim=32):
    with open(os.path.join(out, "classes.labels"), "w") as f:  # every class, seen or not
        f.writelines("%d\n" % c for c in range(ncls))
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, size=(ncls, dim)).astype(np.float32)
    # Zipf-like class frequencies, class 0 the most frequent (what a log-uniform sampler assumes)
    p = 1.0 / np.arange(1, ncls + 1) ** 0.8
    p /= p.sum()
    header = ["id", "label"] + ["x%d" % i for i in range(dim)]
    for name, n in (("train", rows), ("test", max(rows // 10, 1))):
        y = rng.choice(ncls, size=n, p=p)
        x = centres[y] + rng.normal(0, 0.35, size=(n, dim)).astype(np.float32)
        write_csv(os.path.join(out, "classes-%s.csv" % name), header,
                  (["c%s%07d" % (name[0], i), str(c)] + ["%.4f" % v for v in row] for i, (row, c) in enumerate(zip(x, y))))


def bench(out, rows, seed=5):
    from sklearn.datasets import load_digits
    d = load_digits()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(d.target), size=rows)
    x = d.data[pick] + rng.normal(0, 1, size=(rows, 64))
    header = ["id", "label"] + ["p%d" % i for i in range(64)]
    write_csv(os.path.join(out, "bench-train.csv"), header,
              (["b%07d" % i, str(d.target[k])] + ["%.3f" % v for v in row] for i, (k, row) in enumerate(zip(pick, x))))


def embed(out, rows=6000, seed=3):
    rng = np.random.default_rng(seed)
    users, items = 200, 50
    ub = rng.normal(0, 1, users)
    ib = rng.normal(0, 1, items)
    header = ["id", "label", "user", "items", "a", "b", "c", "d"]
    lines = []
    for i in range(rows):
        u = rng.integers(0, users)
        k = rng.integers(1, 5)
        its = rng.integers(1, items, size=k)  # item 0 is the padding id
        dense = rng.normal(0, 1, 4)
        score = ub[u] + ib[its].mean() + dense[0] - 0.5 * dense[1]
        lines.append(["e%05d" % i, "1" if score > 0 else "0", str(u), "|".join(str(t) for t in its)] +
                     ["%.4f" % v for v in dense])
    write_csv(os.path.join(out, "embed-train.csv"), header, lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["digits", "classes", "tiny", "embed", "bench"])
    ap.add_argument("dir")
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--classes", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    if a.what == "digits":
        digits(a.dir)
    elif a.what == "tiny":
        tiny(a.dir)
    elif a.what == "embed":
        embed(a.dir)
    elif a.what == "bench":
        bench(a.dir, a.rows)
    else:
        classes(a.dir, a.rows, a.classes, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
