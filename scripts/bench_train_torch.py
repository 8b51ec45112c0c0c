#!/usr/bin/python3
"""PyTorch's side of `make bench-train`: the same network, optimiser, batch size and rows as
precast train's example architecture, on one thread, timed over the training loop only.

  bench_train_torch.py CSV --layers 256,256 --batch 64 --epochs 3 --lr 0.001

CSV has columns id,label,f...; labels are class numbers 0..C-1. Prints one line:
  torch rows/s R  (E epochs, N rows, final train loss L)
Needs Debian's python3-torch and python3-numpy (run with /usr/bin/python3).
"""
import argparse
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--layers", default="256,256")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.001)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1)
    data = np.loadtxt(a.csv, delimiter=",", skiprows=1, usecols=None, dtype=np.float32,
                      converters={0: lambda s: 0.0})
    y = torch.from_numpy(data[:, 1].astype(np.int64))
    x = torch.from_numpy(np.ascontiguousarray(data[:, 2:]))
    classes = int(y.max()) + 1
    dims = [x.shape[1]] + [int(u) for u in a.layers.split(",")]
    mods = []
    for i in range(len(dims) - 1):
        mods += [torch.nn.Linear(dims[i], dims[i + 1]), torch.nn.ReLU()]
    net = torch.nn.Sequential(*mods, torch.nn.Linear(dims[-1], classes))
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    lossf = torch.nn.CrossEntropyLoss()
    n = x.shape[0]
    gen = torch.Generator().manual_seed(1)
    seconds, loss = 0.0, float("nan")
    for _ in range(a.epochs):
        perm = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        for s in range(0, n, a.batch):
            idx = perm[s:s + a.batch]
            opt.zero_grad()
            out = lossf(net(x[idx]), y[idx])
            out.backward()
            opt.step()
        seconds += time.perf_counter() - t0
        loss = float(out)
    print("torch rows/s %.0f  (%d epochs, %d rows, final train loss %.4f)" % (a.epochs * n / seconds, a.epochs, n, loss))


if __name__ == "__main__":
    main()
