#!/usr/bin/python3
"""Independent reference for the integration tests: runs an MLP ONNX model (Gemm, Relu,
Sigmoid, Tanh, Softmax, LogSoftmax, Identity/Dropout/Flatten) in numpy on a CSV and checks a
`precast get` JSON-lines output against it.

usage: reference.py MODEL.onnx INPUT.csv GET_OUTPUT.jsonl HEAD(softmax_topk|sigmoid|raw)
Exits 1 with a message naming the first key that differs (tolerance 1e-5 on probabilities)."""
import csv, json, sys
import numpy as np
import onnx
from onnx import numpy_helper

def forward(model, x):
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    vals = dict(init)
    vals[model.graph.input[0].name] = x.astype(np.float64)
    final = None
    for n in model.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        i = [vals[k] for k in n.input if k]
        if n.op_type == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * A @ B
            if len(i) > 2: y = y + a.get("beta", 1.0) * i[2]
        elif n.op_type == "MatMul": y = i[0] @ i[1]
        elif n.op_type == "Add": y = i[0] + i[1]
        elif n.op_type == "Relu": y = np.maximum(i[0], 0)
        elif n.op_type == "Sigmoid": y = 1 / (1 + np.exp(-i[0]))
        elif n.op_type == "Tanh": y = np.tanh(i[0])
        elif n.op_type in ("Softmax", "LogSoftmax"):
            e = np.exp(i[0] - i[0].max(axis=1, keepdims=True)); y = e / e.sum(axis=1, keepdims=True)
            if n.op_type == "LogSoftmax": y = np.log(y)
        elif n.op_type in ("Identity", "Dropout", "Flatten"): y = i[0]
        else: sys.exit("reference.py: op %s not modelled" % n.op_type)
        final = n.op_type if n.op_type not in ("Identity", "Dropout", "Flatten") else final
        vals[n.output[0]] = y
    return vals[model.graph.output[0].name], final

def main():
    model = onnx.load(sys.argv[1])
    rows = list(csv.reader(open(sys.argv[2])))
    header, rows = rows[0], rows[1:]
    idc = header.index("id")
    ids = [r[idc] for r in rows]
    x = np.array([[np.float32(v) for j, v in enumerate(r) if j != idc] for r in rows], dtype=np.float32)
    y, final = forward(model, x)
    head = sys.argv[4]
    if head == "softmax_topk" and final != "Softmax":
        e = np.exp(y - y.max(axis=1, keepdims=True)); y = e / e.sum(axis=1, keepdims=True)
    if head == "sigmoid" and final != "Sigmoid":
        y = 1 / (1 + np.exp(-y))
    want = dict(zip(ids, y))
    got = [json.loads(l) for l in open(sys.argv[3])]
    if len(got) != len(ids): sys.exit("reference.py: %d lookups for %d ids" % (len(got), len(ids)))
    worst = 0.0
    for g in got:
        if not g["found"]: sys.exit("reference.py: id %s not found" % g["key"])
        p = want[g["key"]]
        v = g["value"]
        if head == "softmax_topk":
            top = int(np.argmax(p))
            if int(v["label"]) != top and abs(p[top] - p[int(v["label"])]) > 1e-6:
                sys.exit("reference.py: id %s: label %s, numpy says %d" % (g["key"], v["label"], top))
            d = abs(v["p"] - p[top])
        elif head == "sigmoid":
            d = abs(v["p"] - p[0])
        else:
            d = float(np.max(np.abs(np.array(v["scores"]) - p)))
        worst = max(worst, d)
        if d > 1e-5 * max(1.0, abs(float(np.max(p)))):
            sys.exit("reference.py: id %s differs by %g" % (g["key"], d))
    print("reference.py: %d ids agree, largest difference %.3g" % (len(got), worst))

main()
