#!/usr/bin/python3
"""Shared helpers for precast's example / benchmark makers (make_example.py,
make_bench_data.py, bench_torch.py).  Run everything with /usr/bin/python3: Debian's
python3-torch, python3-onnx, python3-numpy and python3-sklearn are installed for it only.

- build_mlp(): the 64 -> 256 -> 256 -> 10 MLP with a Softmax head used by the example
  and the benchmark (state_dict keys 0.*, 3.*, 5.*).
- BENCH_MODELS, build_bench_model(kind): issue 3's benchmark models `wide`, `embed`,
  `items` (made by make_bench_models.py, run by bench_torch.py --kind).
- int_fields(), float_fields(), format_fields(): vectorised CSV lines of an id column and
  blocks of integer / 4-decimal columns (make_bench_models.py).
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
# Issue 3 benchmark models

# Per kind: dense inputs/columns, id inputs/columns, output, head, FLOPs per row (2 per
# multiply-add of the dense layers; gathers and the mean not counted).
BENCH_MODELS = {
    "wide": dict(n_dense=512, n_cats=0, vocab=0, dim=0, layers=[1024, 1024, 100],
                 final="softmax", output="probs", head="softmax_topk", top_k=5,
                 rows=200_000),
    "embed": dict(n_dense=16, n_cats=8, vocab=100_000, dim=32, layers=[256, 64, 1],
                  final="sigmoid", output="p", head="sigmoid", top_k=1, rows=1_000_000),
    "items": dict(n_dense=64, n_cats=0, vocab=0, dim=0, layers=[256, 50_000],
                  final=None, output="logits", head="softmax_topk", top_k=10,
                  rows=100_000),
}


def bench_flops(kind):
    spec = BENCH_MODELS[kind]
    width = spec["n_dense"] + spec["dim"]
    flops = 0
    for n in spec["layers"]:
        flops += 2 * width * n
        width = n
    return flops


def build_bench_model(kind):
    """The torch module of benchmark model `kind`.

    wide, items: forward(x float32 [B, n_dense]) -> probs [B,100] / logits [B,50000]
    embed:       forward(dense float32 [B,16], cats int64 [B,8]) -> p [B,1]; cats are raw
                 per-column ids 0..99999, the module adds the per-column offsets
                 (i * 100000) and gathers from one 800000 x 32 table, mean over the 8
                 columns, then concat [pooled(32), dense(16)] -> 256 relu -> 64 relu -> 1
                 sigmoid.
    """
    import torch
    import torch.nn as nn
    spec = BENCH_MODELS[kind]
    mods = []
    width = spec["n_dense"] + spec["dim"]
    for i, n in enumerate(spec["layers"]):
        mods.append(nn.Linear(width, n))
        if i + 1 < len(spec["layers"]):
            mods.append(nn.ReLU())
        width = n
    if spec["final"] == "softmax":
        mods.append(nn.Softmax(dim=1))
    elif spec["final"] == "sigmoid":
        mods.append(nn.Sigmoid())
    mlp = nn.Sequential(*mods)
    if not spec["n_cats"]:
        return mlp

    class EmbedMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(spec["n_cats"] * spec["vocab"], spec["dim"])
            self.register_buffer(
                "offsets", torch.arange(spec["n_cats"], dtype=torch.int64) * spec["vocab"])
            self.mlp = mlp

        def forward(self, dense, cats):
            pooled = self.table(cats + self.offsets).mean(dim=1)
            return self.mlp(torch.cat([pooled, dense], dim=1))

    return EmbedMLP()


def bench_io(kind):
    """(inputs, output name): inputs = [(name, dtype, [CSV columns])] in forward() order."""
    spec = BENCH_MODELS[kind]
    dense = ["d%d" % i for i in range(spec["n_dense"])] if spec["n_cats"] else \
        ["f%d" % i for i in range(spec["n_dense"])]
    if spec["n_cats"]:
        cats = ["c%d" % i for i in range(spec["n_cats"])]
        return [("dense", "float32", dense), ("cats", "int64", cats)], spec["output"]
    return [("x", "float32", dense)], spec["output"]


def export_onnx_multi(model, args, in_names, out_names, path, opset=13):
    """torch.onnx.export with a dynamic "batch" axis on every input and output; returns
    the op types."""
    import torch
    import onnx
    model.eval()
    tmp = path + ".tmp"
    dyn = {n: {0: "batch"} for n in in_names + out_names}
    with torch.no_grad():
        torch.onnx.export(model, args, tmp, opset_version=opset, input_names=in_names,
                          output_names=out_names, dynamic_axes=dyn)
    m = onnx.load(tmp)
    onnx.checker.check_model(m)
    os.replace(tmp, path)
    return [n.op_type for n in m.graph.node]


# ---------------------------------------------------------------------------------------
# Generic vectorised CSV lines: an id column, then blocks of columns

def float_fields(k):
    """4-decimal values k/10000 (k int [n, f] in 0..10000) -> (chars [n,f,6], lens [n,f])."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _value_table()
    chars, lens = _TABLE
    return chars[k], lens[k]


def int_fields(v, width):
    """non-negative ints v [n, f] below 10**width -> (chars [n,f,width], lens [n,f]),
    printed without leading zeros."""
    v = np.asarray(v, dtype=np.int64)
    n, f = v.shape
    digits = np.empty((n, f, width), dtype=np.uint8)
    t = v.copy()
    for j in range(width - 1, -1, -1):
        digits[:, :, j] = ord("0") + (t % 10)
        t //= 10
    lens = np.ones((n, f), dtype=np.int64)
    for j in range(1, width):
        lens += v >= 10 ** j
    # shift left so the number starts at column 0
    out = np.zeros_like(digits)
    for L in range(1, width + 1):
        sel = lens == L
        if sel.any():
            out[sel, :L] = digits[sel, width - L:]
    return out, lens


def format_fields(ids, blocks):
    """bytes of CSV lines: ids (uint8 [n, w], fixed width) then, for each (chars, lens)
    block in order, its columns; fields joined by ',' and lines ended by '\n'."""
    n, w = ids.shape
    parts = [ids]
    keeps = [np.ones((n, w), dtype=bool)]
    for chars, lens in blocks:
        _, f, cw = chars.shape
        field = np.empty((n, f, cw + 1), dtype=np.uint8)
        field[:, :, 0] = ord(",")
        field[:, :, 1:] = chars
        parts.append(field.reshape(n, f * (cw + 1)))
        keeps.append((np.arange(cw + 1)[None, None, :] <= lens[:, :, None])
                     .reshape(n, f * (cw + 1)))
    parts.append(np.full((n, 1), ord("\n"), dtype=np.uint8))
    keeps.append(np.ones((n, 1), dtype=bool))
    line = np.concatenate(parts, axis=1)
    keep = np.concatenate(keeps, axis=1)
    return line[keep].tobytes()


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
