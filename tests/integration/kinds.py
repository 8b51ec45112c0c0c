#!/usr/bin/python3
"""Integration helper for the model kinds of tests/fixtures/make_kinds.py.

  kinds.py job KINDS_DIR KIND OUT.ini      writes the job file precast runs for that kind
  kinds.py check KINDS_DIR KIND GET.jsonl  checks `precast get` output against PyTorch's
                                           outputs (expected.jsonl) through the kind's head

The check recomputes every head from PyTorch's raw graph outputs in float64 — softmax with a
stable log-sum-exp, sigmoids, thresholds, arg-max — and compares within 1e-5."""
import json, math, os, sys

TOL = 1e-5

def spec(kdir, kind):
    return json.load(open(os.path.join(kdir, "kinds.json")))["kinds"][kind]

def write_job(kdir, kind, out):
    k = spec(kdir, kind)
    d = os.path.join(os.path.abspath(kdir), k["dir"])
    head = k["head"] or {"name": "auto"}
    name = head["name"]
    if kind in ("topk_graph", "argmax_graph"):
        name = "auto"  # the graph's own TopK / ArgMax outputs
    lines = ["[model]", "path = %s/%s" % (d, k["model"])]
    if k.get("labels"):
        lines.append("labels = %s/%s" % (d, k["labels"]))
    lines += ["[input]", "paths = %s/%s" % (d, k["input"]), "format = %s" % k["format"]]
    if k["format"] == "csv":
        lines.append("id_column = %s" % k["id_column"])
        if len(k["inputs"]) > 1 or k["inputs"][0]["dtype"] != "float32":
            for i in k["inputs"]:
                lines.append("map.%s = %s" % (i["name"], ",".join(i["columns"])))
                if i.get("hash_buckets"):
                    lines.append("hash.%s = %d" % (i["name"], i["hash_buckets"]))
                vocab = i.get("vocab")
                if isinstance(vocab, list):
                    vocab = max(vocab)
                if vocab:
                    lines.append("vocab.%s = %d" % (i["name"], vocab))
        else:
            lines.append("features = %s" % ",".join(k["inputs"][0]["columns"]))
    lines += ["[output]", "table = table-%s" % kind, "head = %s" % name,
              "top_k = %d" % head.get("top_k", 3 if kind == "topk_graph" else 1)]
    if head.get("thresholds"):
        lines.append("thresholds = %s/%s" % (d, head["thresholds"]))
    if name == "one_vs_all":
        lines.append("all_scores = true")
    lines += ["[run]", "name = %s" % kind.replace("_", "-"), "batch_rows = 64"]
    open(out, "w").write("\n".join(lines) + "\n")

def sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))

def close(a, b):
    return abs(a - b) <= TOL * max(1.0, abs(b))

def check(kdir, kind, got_path):
    k = spec(kdir, kind)
    d = os.path.join(kdir, k["dir"])
    labels = [l.rstrip("\n") for l in open(os.path.join(d, k["labels"]))] if k.get("labels") else None
    name_of = (lambda c: labels[c]) if labels else (lambda c: str(c))
    want = {}
    for l in open(os.path.join(d, k["expected"])):
        e = json.loads(l)
        want[e["id"]] = e["outputs"]
    got = [json.loads(l) for l in open(got_path)]
    if len(got) != len(want):
        sys.exit("%s: %d lookups for %d rows" % (kind, len(got), len(want)))
    outs = k["outputs"]
    head = (k["head"] or {}).get("name")
    worst = 0.0
    for g in got:
        if not g["found"]:
            sys.exit("%s: id %s not in the table" % (kind, g["key"]))
        o, v = want[g["key"]], g["value"]
        first = o[outs[0]["name"]]
        def diff(a, b):
            nonlocal worst
            worst = max(worst, abs(a - b))
            if not close(a, b):
                sys.exit("%s: id %s: %r, PyTorch %r" % (kind, g["key"], a, b))
        if kind == "topk_graph":
            vals, idx = first, o[outs[1]["name"]]
            assert [c for c, _ in v["top"]] == [name_of(i) for i in idx], (g, idx)
            for (_, p), w in zip(v["top"], vals): diff(p, w)
        elif kind == "argmax_graph":
            assert v["label"] == name_of(first[0]), (g, first)
        elif head == "softmax_topk":
            if outs[0]["produced_by"] == "Softmax":
                probs = first
            else:
                m = max(first); lse = m + math.log(sum(math.exp(x - m) for x in first))
                probs = [math.exp(x - lse) for x in first]
            order = sorted(range(len(probs)), key=lambda c: (-probs[c], c))
            for (c, p), want_c in zip(v["top"], order):
                if c != name_of(want_c) and not close(probs[want_c], p):
                    sys.exit("%s: id %s: class %s where PyTorch ranks %s" % (kind, g["key"], c, name_of(want_c)))
                diff(p, probs[want_c])
        elif head == "sigmoid":
            p = first[0] if outs[0]["produced_by"] == "Sigmoid" else sigmoid(first[0])
            diff(v["p"], p)
        elif head == "one_vs_all":
            ps = first if outs[0]["produced_by"] == "Sigmoid" else [sigmoid(x) for x in first]
            best = max(range(len(ps)), key=lambda c: (ps[c], -c))
            assert v["label"] == name_of(best) or close(ps[best], v["p"]), (g, ps)
            for a, b in zip(v["scores"], ps): diff(a, b)
        elif head == "multilabel":
            th = k["thresholds_values"]
            ps = first if outs[0]["produced_by"] == "Sigmoid" else [sigmoid(x) for x in first]
            on = sorted([c for c in range(len(ps)) if ps[c] >= th[c]], key=lambda c: (-ps[c], c))
            near = [c for c in range(len(ps)) if abs(ps[c] - th[c]) < 1e-6]
            if not near:
                assert v["labels"] == [name_of(c) for c in on], (g, ps)
                for a, c in zip(v["p"], on): diff(a, ps[c])
        elif head == "embedding":
            for a, b in zip(v["vector"], first): diff(a, b)
        else:
            for a, b in zip(v["scores"], first): diff(a, b)
    print("%s: %d ids agree with PyTorch, largest difference %.3g" % (kind, len(got), worst))

if __name__ == "__main__":
    if sys.argv[1] == "job":
        write_job(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4])
