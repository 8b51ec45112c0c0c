#!/bin/bash
# bad_rows = skip: every bad row goes to the rejects file (file, line, offset, reason, raw row),
# the good ones to the table, rows in = written + rejected; max_bad_rows fails the job (65).
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cp "$FIX/small_softmax.onnx" .
make_csv good.csv 2000 4 5
{
    head -50 good.csv
    echo "idF,1.0,2.0"                      # line 51: too few fields
    sed -n 51,100p good.csv
    echo "idV,1.0,abc,3.0,4.0"              # line 102: not a number
    sed -n 101,150p good.csv
    echo ",1.0,2.0,3.0,4.0"                 # line 153: empty id
    sed -n 151,200p good.csv
    echo "idN,3e38,3e38,3e38,3e38"          # line 204: the model's output overflows
    sed -n 201,300p good.csv
    printf 'idQ,"1.0,2.0,3.0,4.0\n'        # line 305: an unterminated quote swallows the rest
} >bad.csv
{ echo "[model]"; echo "path = small_softmax.onnx"; echo "[input]"; echo "paths = bad.csv"; echo "bad_rows = skip";
  echo "[output]"; echo "table = t"; } >job.ini
if run_np 2 run job.ini; then
    ok "bad_rows = skip: the job publishes"
else
    not_ok "skip run" "$(head -c 400 "$TMP/err")"
fi
grep -q "304 rows in, 299 written, 5 rejected (in .*rejects-job.jsonl)" "$TMP/out" \
    && ok "summary counts rows in = written + rejected: $(grep -o '[0-9]* rows in, [0-9]* written, [0-9]* rejected' "$TMP/out")" \
    || not_ok "skip counts" "$(cat "$TMP/out")"
out=$($PY - t/rejects-job.jsonl <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
got = {(r["line"], r["reason"]) for r in rows}
want = {(51, "fields"), (102, "value"), (153, "empty_id"), (204, "output"), (305, "csv")}
assert got == want, "rejects %s, want %s" % (sorted(got), sorted(want))
src = open("bad.csv", "rb").read()
for r in rows:
    assert r["file"].endswith("bad.csv"), r
    if r["row"] is not None:
        assert src[r["offset"]:r["offset"] + len(r["row"])].decode() == r["row"], r
    assert "bad.csv:%d" % r["line"] in r["message"], r
print("%d rejects with file, line, offset, reason and raw row" % len(rows))
PYEOF
) && ok "$out" || not_ok "rejects file" "$out"
good_id=$(sed -n 2p good.csv | cut -d, -f1)
n=$("$PRECAST" get t idN "$good_id" idV idF | grep -c '"found": true')
[ "$n" = 1 ] && ok "rejected ids are not in the table, good ones are" || not_ok "table content" "$n found"
grep -q '"rows_rejected": 5' t/v*/MANIFEST.json && ok "the manifest records the rejected count" || not_ok "manifest rejected" "$(grep -o '"rows_rejected"[^,]*' t/v*/MANIFEST.json)"

run_np 2 run job.ini --set input.max_bad_rows=4 --set output.table=t2; rc=$?
[ $rc = 65 ] && grep -q "5 bad rows of 304 exceed input.max_bad_rows" "$TMP/err" && [ ! -e t2/CURRENT ] \
    && ok "max_bad_rows = 4 with 5 bad rows fails (65) and publishes nothing" || not_ok "max_bad_rows count" "exit $rc: $(head -c 300 "$TMP/err")"
run_np 2 run job.ini --set input.max_bad_rows=2% --set output.table=t3; rc=$?
[ $rc = 0 ] && ok "max_bad_rows = 2% allows 5 of 304" || not_ok "max_bad_rows pct ok" "exit $rc: $(head -c 300 "$TMP/err")"
run_np 2 run job.ini --set input.max_bad_rows=1% --set output.table=t4; rc=$?
[ $rc = 65 ] && ok "max_bad_rows = 1% refuses 5 of 304 (65)" || not_ok "max_bad_rows pct fail" "exit $rc"
run_np 1 run job.ini --set input.paths=good.csv --set output.table=t; rc=$?
[ $rc = 0 ] && [ ! -e t/rejects-job.jsonl ] && ok "a clean night removes last night's rejects file" || not_ok "stale rejects" "exit $rc; $(ls t)"
ls t/*.rank-* >/dev/null 2>&1 && not_ok "rank parts" "left behind" || ok "no per-rank rejects part is left"
