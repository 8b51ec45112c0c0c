#!/usr/bin/python3
"""Shared helpers for precast's example / benchmark makers (make_example.py,
make_bench_data.py, bench_torch.py).  Run everything with /usr/bin/python3: Debian's
python3-torch, python3-onnx, python3-numpy and python3-sklearn are installed for it only.

- build_mlp(): the 64 -> 256 -> 256 -> 10 MLP with a Softmax head used by the example
  and the benchmark (state_dict keys 0.*, 3.*, 5.*).
- export_onnx(): torch.onnx.export with the settings precast's loader is tested against.
- write_csv(): fast, vectorised CSV writer for an id column plus float features that are
  quantised to 4 decimals and printed compactly ("0", "1", "0.25", "0.1234").
- up_to_date() / write_stamp(): idempotence (skip when outputs exist and the maker's
  source files are unchanged).
"""
import hashlib
import os
import sys

import numpy as np

N_IN, N_HIDDEN, N_OUT = 64, 256, 10


def build_mlp():
    import torch.nn as nn
    return nn.Sequential(
        nn.Linear(N_IN, N_HIDDEN), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(N_HIDDEN, N_HIDDEN), nn.ReLU(),
        nn.Linear(N_HIDDEN, N_OUT), nn.Softmax(dim=1),
    )


def export_onnx(model, path):
    """Export `model` (eval mode) with a dynamic batch axis; returns the op types."""
    import torch
    import onnx
    model.eval()
    dummy = torch.zeros(2, N_IN, dtype=torch.float32)
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, dummy, tmp, opset_version=13,
                          input_names=["x"], output_names=["probs"],
                          dynamic_axes={"x": {0: "batch"}, "probs": {0: "batch"}})
    m = onnx.load(tmp)
    onnx.checker.check_model(m)
    os.replace(tmp, path)
    return [n.op_type for n in m.graph.node]


# ---------------------------------------------------------------------------------------
# CSV writing

def _value_table():
    """uint8 [10001, 6] characters and lengths of k/10000 printed compactly."""
    strs = []
    for k in range(10001):
        if k == 0:
            s = "0"
        elif k == 10000:
            s = "1"
        else:
            s = ("0.%04d" % k).rstrip("0")
        strs.append(s)
    lens = np.array([len(s) for s in strs], dtype=np.int64)
    chars = np.zeros((10001, 6), dtype=np.uint8)
    for k, s in enumerate(strs):
        chars[k, :len(s)] = np.frombuffer(s.encode(), dtype=np.uint8)
    return chars, lens


_TABLE = None


def quantize(x):
    """float array in [0,1] -> int array k such that the value written is k/10000."""
    return np.rint(np.clip(x, 0.0, 1.0) * 10000.0).astype(np.int64)


def id_chars(prefix, numbers, width):
    """uint8 [n, len(prefix)+width]: prefix followed by zero-padded decimal numbers."""
    n = len(numbers)
    out = np.empty((n, len(prefix) + width), dtype=np.uint8)
    out[:, :len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    v = np.asarray(numbers, dtype=np.int64).copy()
    for j in range(width - 1, -1, -1):
        out[:, len(prefix) + j] = ord("0") + (v % 10)
        v //= 10
    return out


def format_rows(ids, k):
    """bytes of CSV lines: ids (uint8 [n, w]) then k (int [n, f]) values, '\\n' ended."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _value_table()
    chars, lens = _TABLE
    n, f = k.shape
    w = ids.shape[1]
    field = np.empty((n, f, 7), dtype=np.uint8)
    field[:, :, 0] = ord(",")
    field[:, :, 1:] = chars[k]
    line = np.empty((n, w + f * 7 + 1), dtype=np.uint8)
    line[:, :w] = ids
    line[:, w:w + f * 7] = field.reshape(n, f * 7)
    line[:, -1] = ord("\n")
    keep = np.ones((n, w + f * 7 + 1), dtype=bool)
    keep[:, w:w + f * 7] = (np.arange(7)[None, None, :] <= lens[k][:, :, None]).reshape(n, f * 7)
    return line[keep].tobytes()


def write_csv(path, header, ids, k, chunk=50000):
    """Write header + rows to path (atomically).  ids: uint8 [n, w]; k: int [n, f]."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write((",".join(header) + "\n").encode())
        for s in range(0, len(k), chunk):
            fh.write(format_rows(ids[s:s + chunk], k[s:s + chunk]))
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# Idempotence

def source_digest(*extra):
    """sha256 over the calling script, this module, and any extra files."""
    h = hashlib.sha256()
    for p in [os.path.abspath(sys.argv[0]), os.path.abspath(__file__)] + list(extra):
        with open(p, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def up_to_date(out_dir, name, outputs):
    stamp = os.path.join(out_dir, "." + name + ".stamp")
    if not all(os.path.exists(os.path.join(out_dir, o)) for o in outputs):
        return False
    try:
        with open(stamp) as fh:
            return fh.read().strip() == source_digest()
    except OSError:
        return False


def write_stamp(out_dir, name):
    with open(os.path.join(out_dir, "." + name + ".stamp"), "w") as fh:
        fh.write(source_digest() + "\n")
