#!/bin/bash
# Records whose quoted fields hold commas, quotes, newlines and CRLFs, in files whose byte
# ranges are cut among 1..4 ranks: every row is read once, by exactly one rank.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cp "$FIX/small_softmax.onnx" .
"$PY" - <<'PYEOF'
import random
rnd = random.Random(5)
for name, n, crlf in (("q1.csv", 700, False), ("q2.csv", 40, True), ("q3.csv", 0, False)):
    nl = "\r\n" if crlf else "\n"
    with open(name, "w", newline="") as f:
        f.write('id,"f,0",f1,"f""2",f3' + nl)
        for i in range(n):
            kind = i % 4
            if kind == 0: key = '"k%d,%s"' % (i, name)
            elif kind == 1: key = '"k%d ""q"" %s"' % (i, name)
            elif kind == 2: key = '"k%d%sline2 %s"' % (i, nl, name)
            else: key = "k%d%s" % (i, name)
            vals = ["%.3f" % rnd.uniform(-1, 1) for _ in range(4)]
            vals[1] = '"%s"' % vals[1]
            f.write(key + "," + ",".join(vals) + nl)
PYEOF
write_job job.ini small_softmax.onnx "q*.csv" t
for np in 1 2 3 4; do
    if run_np "$np" run job.ini --set output.table=t$np && "$DUMP" t$np >d$np.txt 2>derr.txt; then
        ok "quoted records, -np $np: run and table order"
    else
        not_ok "quoted records, -np $np" "$(cat "$TMP/err" derr.txt)"
    fi
done
[ "$(wc -l <d1.txt)" = 740 ] && ok "740 records read" || not_ok "740 records" "$(wc -l <d1.txt)"
for np in 2 3 4; do
    cmp -s d1.txt d$np.txt && ok "-np $np equals -np 1 on quoted records" || not_ok "-np $np quoted" "differs"
done
grep -q '"k2\\nline2 q1.csv"' d1.txt && ok "an id with an embedded newline survives" || not_ok "embedded newline" "$(grep k2 d1.txt | head -2)"
grep -q '"k1 \\"q\\" q1.csv"' d1.txt && ok "an id with doubled quotes is unescaped" || not_ok "doubled quotes" "$(grep '^"k1 ' d1.txt | head -1)"
