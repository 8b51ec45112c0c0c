#!/bin/bash
# End to end: the same input through -np 1..4 gives the same table, sorted within and across
# shards, every id once, predictions equal to an independent numpy forward pass.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
make_csv a.csv 3000 4 1
make_csv b.csv 2000 4 2
sed -i '2,$s/^id\([0-9]*\),/id\1b,/' b.csv   # ids distinct from a.csv's
cp "$FIX/small_softmax.onnx" "$FIX/small_logits.onnx" "$FIX/small_sigmoid.onnx" .
tail -n +2 a.csv | cut -d, -f1 >ids.txt
tail -n +2 b.csv | cut -d, -f1 >>ids.txt
{ head -1 a.csv; tail -n +2 a.csv; tail -n +2 b.csv; } >all.csv

write_job softmax.ini small_softmax.onnx "a.csv b.csv" t_softmax
for np in 1 2 3 4; do
    if run_np "$np" run softmax.ini --set output.table=t$np; then
        ok "run -np $np publishes"
    else
        not_ok "run -np $np publishes" "exit $?: $(cat "$TMP/err")"
        continue
    fi
    if "$DUMP" t$np >dump$np.txt 2>dump.err; then
        ok "-np $np: keys in order within and across shards, counts match the manifest"
    else
        not_ok "-np $np: table order" "$(cat dump.err)"
    fi
done
grep -q "5000 rows in, 5000 written, 0 rejected" "$TMP/out" && grep -q "published v" "$TMP/out" \
    && ok "summary line names rows and the version" || not_ok "summary line" "$(cat "$TMP/out")"

n=$(cut -f1 dump1.txt | sort -u | wc -l)
[ "$n" = 5000 ] && [ "$(wc -l <dump1.txt)" = 5000 ] && ok "every id appears exactly once" \
    || not_ok "every id once" "$n distinct of $(wc -l <dump1.txt)"
for np in 2 3 4; do
    cmp -s dump1.txt dump$np.txt && ok "-np $np table equals -np 1" || not_ok "-np $np equals -np 1" "dumps differ"
done
[ "$(ls -d t4/v*/shard-* | wc -l)" = 4 ] && ok "-np 4 writes 4 shards" || not_ok "-np 4 shards" "$(ls t4/*)"

"$PRECAST" get t2 - <ids.txt >get.jsonl 2>get.err && ok "get - reads keys from stdin" || not_ok "get -" "$(cat get.err)"
out=$("$PY" "$ROOT/tests/integration/reference.py" small_softmax.onnx all.csv get.jsonl softmax_topk 2>&1) \
    && ok "predictions agree with numpy ($out)" || not_ok "predictions agree with numpy" "$out"

# A graph without its final Softmax, with head softmax_topk, must give the same table: no head
# applies softmax twice, and none forgets it.
write_job logits.ini small_logits.onnx "a.csv b.csv" t_logits "head = softmax_topk"
if run_np 2 run logits.ini && "$DUMP" t_logits >dump_logits.txt; then
    out=$("$PY" - dump1.txt dump_logits.txt <<'PYEOF'
import json, sys
a = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
b = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
assert [x[0] for x in a] == [x[0] for x in b], "keys differ"
worst = 0
for (ka, va), (kb, vb) in zip(a, b):
    va, vb = json.loads(json.loads(va)), json.loads(json.loads(vb))
    assert va["label"] == vb["label"], "label differs for %s" % ka
    worst = max(worst, abs(va["p"] - vb["p"]))
assert worst < 1e-5, "p differs by %g" % worst
print("largest p difference %.2g" % worst)
PYEOF
    ) && ok "logits + softmax_topk head equals graph Softmax ($out)" || not_ok "softmax not twice" "$out"
else
    not_ok "logits model run" "$(cat "$TMP/err")"
fi

# head auto on the Softmax graph: the values already are probabilities (no second softmax)
grep -q '\\"p\\":0' dump1.txt && ok "auto head on a Softmax graph yields probabilities" || not_ok "auto head" "$(head -2 dump1.txt)"

# top_k and labels
printf 'cat\ndog\nbird\n' >labels.txt
{ echo "[model]"; echo "path = small_softmax.onnx"; echo "labels = labels.txt"; echo "[input]"; echo "paths = a.csv";
  echo "[output]"; echo "table = t_top"; echo "top_k = 3"; } >top.ini
if run_np 2 run top.ini; then
    line=$("$PRECAST" get t_top id7)
    echo "$line" | "$PY" -c '
import json, sys
d = json.loads(sys.stdin.read())
v = d["value"]
assert d["found"] and d["key"] == "id7"
assert v["label"] in ("cat", "dog", "bird") and len(v["top"]) == 3, v
assert v["top"][0][0] == v["label"] and v["top"][0][1] >= v["top"][1][1] >= v["top"][2][1]
assert abs(sum(p for _, p in v["top"]) - 1) < 1e-4
' && ok "top_k 3 with labels: names, descending, sum to 1" || not_ok "top_k with labels" "$line"
else
    not_ok "top_k job" "$(cat "$TMP/err")"
fi
line=$("$PRECAST" get t_top nosuchid)
[ "$line" = '{"key": "nosuchid", "found": false}' ] && ok "get prints found:false on a miss" || not_ok "miss" "$line"

# sigmoid head
write_job sig.ini small_sigmoid.onnx "a.csv b.csv" t_sig "head = sigmoid" "threshold = 0.5"
if run_np 3 run sig.ini && "$PRECAST" get t_sig - <ids.txt >sig.jsonl; then
    out=$("$PY" "$ROOT/tests/integration/reference.py" small_sigmoid.onnx all.csv sig.jsonl sigmoid 2>&1) \
        && ok "sigmoid head agrees with numpy ($out)" || not_ok "sigmoid head" "$out"
else
    not_ok "sigmoid job" "$(cat "$TMP/err")"
fi

# raw values and f32
write_job raw.ini small_logits.onnx "a.csv" t_raw "head = raw" "value_format = f32"
if run_np 2 run raw.ini; then
    "$PRECAST" get t_raw - <ids.txt | head -3000 >raw.jsonl
    head -1 raw.jsonl | grep -q '"value": \[' && ok "f32 values print as JSON arrays" || not_ok "f32" "$(head -1 raw.jsonl)"
else
    not_ok "raw job" "$(cat "$TMP/err")"
fi

# A second run publishes a new version; the first stays on disk.
run_np 2 run softmax.ini --set output.table=t2
[ "$(ls -d t2/v* | wc -l)" = 2 ] && [ -f t2/CURRENT ] && ! ls -d t2/.staging-* >/dev/null 2>&1 \
    && ok "second run publishes a second version, no staging left" || not_ok "second version" "$(ls -a t2)"
