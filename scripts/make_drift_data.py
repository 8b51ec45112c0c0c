#!/usr/bin/python3
"""make_drift_data.py OUTDIR [ROWS] — synthetic inputs for the input-drift tests (issue 10).

Writes into OUTDIR:
  model.onnx    inputs "dense" float (N, 4) and "user" int64 (N, 1) and "city" int64 (N, 1);
                Gather (embeddings of 1000 users and 64 city buckets), Flatten, Concat, Gemm,
                Softmax over 3 classes (opset 13)
  train.csv     ROWS rows: id, x_shift, x_scale, x_ctrl, x_ctrl2, user, city
                x_shift ~ N(0, 1), x_scale ~ N(5, 2), x_ctrl ~ U(-1, 1), x_ctrl2 ~ N(10, 3),
                user uniform in 0..99, city one of 12 names
  same.csv      ROWS fresh rows from the training distribution (another seed): no drift
  drifted.csv   ROWS rows where x_shift is shifted by 2 standard deviations, x_scale is
                multiplied by 1000, 40% of user ids are in 100..199 (never seen in training);
                x_ctrl, x_ctrl2 and city are drawn as in training (the controls)
  job.ini       the job mapping those columns (input.drift left to the test's --set)

Seeds are fixed, so the files are the same on every run.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CITIES = ["oslo", "rome", "lima", "kyiv", "nara", "bern", "cork", "doha", "fez", "graz", "hue", "ica"]


def model(path):
    rng = np.random.default_rng(10)
    eu = rng.normal(size=(1000, 4)).astype(np.float32)
    ec = rng.normal(size=(64, 2)).astype(np.float32)
    w = (rng.normal(size=(10, 3)) * 0.3).astype(np.float32)
    b = rng.normal(size=(3,)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["emb_user", "user"], ["gu"], axis=0),
        helper.make_node("Flatten", ["gu"], ["fu"], axis=1),
        helper.make_node("Gather", ["emb_city", "city"], ["gc"], axis=0),
        helper.make_node("Flatten", ["gc"], ["fc"], axis=1),
        helper.make_node("Concat", ["dense", "fu", "fc"], ["h"], axis=1),
        helper.make_node("Gemm", ["h", "w", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "drift",
        [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("user", TensorProto.INT64, ["N", 1]),
         helper.make_tensor_value_info("city", TensorProto.INT64, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(eu, "emb_user"), numpy_helper.from_array(ec, "emb_city"),
         numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def rows(path, n, seed, drifted, first_id):
    rng = np.random.default_rng(seed)
    x_shift = rng.normal(0, 1, n) + (2.0 if drifted else 0.0)
    x_scale = rng.normal(5, 2, n) * (1000.0 if drifted else 1.0)
    x_ctrl = rng.uniform(-1, 1, n)
    x_ctrl2 = rng.normal(10, 3, n)
    user = rng.integers(0, 100, n)
    if drifted:
        new = rng.random(n) < 0.4
        user[new] = rng.integers(100, 200, int(new.sum()))
    city = rng.integers(0, len(CITIES), n)
    with open(path, "w") as f:
        f.write("id,x_shift,x_scale,x_ctrl,x_ctrl2,user,city\n")
        for i in range(n):
            f.write("r%d,%.6g,%.6g,%.6g,%.6g,%d,%s\n" % (first_id + i, x_shift[i], x_scale[i], x_ctrl[i],
                                                       x_ctrl2[i], user[i], CITIES[city[i]]))


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    os.makedirs(out, exist_ok=True)
    model(os.path.join(out, "model.onnx"))
    rows(os.path.join(out, "train.csv"), n, 1, False, 0)
    rows(os.path.join(out, "same.csv"), n, 2, False, 0)
    rows(os.path.join(out, "drifted.csv"), n, 3, True, 0)
    with open(os.path.join(out, "job.ini"), "w") as f:
        f.write("[model]\npath = model.onnx\n\n"
                "[input]\npaths = same.csv\nid_column = id\n"
                "map.dense = x_shift, x_scale, x_ctrl, x_ctrl2\n"
                "map.user = user\nvocab.user = 1000\n"
                "map.city = city\nhash.city = 64\n\n"
                "[output]\ntable = table\n\n"
                "[run]\nname = drift\n")
    print(out)


if __name__ == "__main__":
    main()
