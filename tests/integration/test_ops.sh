#!/bin/bash
# Nightly operations: the job's lock, the run report, the Prometheus textfile.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cp "$FIX/small_softmax.onnx" .
make_csv a.csv 3000 4 8
write_job job.ini small_softmax.onnx a.csv t "[run]" "split_mb = 1" "metrics_textfile = metrics/precast.prom"
mkdir -p metrics

# A second run of the same job while the first holds the lock exits 75 naming the holder.
ASAN_OPTIONS=$MPI_ASAN_OPTIONS PRECAST_TEST_SLOW_RANK=0:3000 mpirun --oversubscribe -np 1 "$PRECAST" run job.ini >first.out 2>first.err &
first=$!
for _ in $(seq 50); do [ -s t/.lock-job ] && break; sleep 0.1; done
run_np 1 run job.ini; rc=$?
[ $rc = 75 ] && grep -q "job 'job' is running: host .*, pid [0-9]*, since 20" "$TMP/err" \
    && ok "a second run exits 75 naming the holder: $(head -1 "$TMP/err" | cut -c1-120)" || not_ok "lock" "exit $rc: $(cat "$TMP/err")"
wait $first; rc=$?
[ $rc = 0 ] && ok "the first run publishes" || not_ok "first run" "exit $rc: $(cat first.err)"
run_np 2 run job.ini && ok "the lock is free once the holder exits" || not_ok "lock released" "$(cat "$TMP/err")"

# The run report: what the night did, per rank.
out=$($PY - t/report-job.json <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["exit_status"] == 0 and r["version"].startswith("v"), r
assert r["rows_read"] == 3000 and r["rows_written"] == 3000 and r["rows_rejected"] == 0, r
assert len(r["per_rank"]) == 2 and sum(x["rows_read"] for x in r["per_rank"]) == 3000, r["per_rank"]
for k in ("setup", "map", "forward", "shuffle", "write", "publish"):
    assert r["seconds"][k] >= 0, k
print("report: %d rows, %d ranks, %.2f s" % (r["rows_written"], len(r["per_rank"]), r["duration_seconds"]))
PYEOF
) && ok "$out" || not_ok "report" "$out"
grep -q '^precast_last_success_timestamp_seconds{job="job"} [0-9]' metrics/precast.prom \
    && grep -q '^precast_rows_total{job="job"} 6000' metrics/precast.prom \
    && ok "metrics textfile: last success and rows counted over both runs" || not_ok "metrics" "$(cat metrics/precast.prom)"
success=$(grep '^precast_last_success_timestamp_seconds' metrics/precast.prom)

# A failed night: the report says why, the metrics keep the last success.
run_np 1 run job.ini --set input.paths=nothing.csv; rc=$?
[ $rc = 66 ] && $PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["exit_status"]==66 and "nothing.csv" in r["message"] and r["version"] is None, r' t/report-job.json \
    && ok "a failed run's report names the exit status and the cause" || not_ok "failed report" "exit $rc: $(cat t/report-job.json)"
[ "$(grep '^precast_last_success_timestamp_seconds' metrics/precast.prom)" = "$success" ] \
    && grep -q '^precast_last_exit_status{job="job"} 66' metrics/precast.prom \
    && ok "metrics after a failure: last success kept, exit status 66" || not_ok "metrics failure" "$(cat metrics/precast.prom)"

# scripts/precast-cron passes the exit status through and timestamps the log.
ASAN_OPTIONS=$MPI_ASAN_OPTIONS PRECAST_RANKS=1 PRECAST_LOG=$TMP/cron.log PRECAST="$PRECAST" "$ROOT/scripts/precast-cron" job.ini >cron.out 2>&1; rc=$?
[ $rc = 0 ] && grep -qE '^20[0-9-]+T[0-9:]+Z .*published v' cron.log && ok "precast-cron: exit 0, timestamped log" \
    || not_ok "precast-cron" "exit $rc: $(cat cron.out cron.log 2>/dev/null | tail -5)"
ASAN_OPTIONS=$MPI_ASAN_OPTIONS PRECAST_RANKS=1 PRECAST_LOG=$TMP/cron.log PRECAST="$PRECAST" "$ROOT/scripts/precast-cron" nojob.ini >cron.out 2>&1; rc=$?
[ $rc = 66 ] && ok "precast-cron passes a failure's status through (66)" || not_ok "precast-cron failure" "exit $rc"

# The diff against the previous version, in the report, and the max_changed gate.
cp "$FIX/small_sigmoid.onnx" .
head -2001 a.csv >fewer.csv
run_np 2 run job.ini --set input.paths=fewer.csv
out=$($PY - t/report-job.json <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))["diff"]
assert d["keys_before"] == 3000 and d["keys_after"] == 2000 and d["keys_removed"] == 1000 and d["keys_added"] == 0, d
assert d["keys_compared"] == 2000 and d["top1_changed"] == 0 and not d["blocked"], d
assert sum(c["before"] for c in d["classes"]) == 3000 and sum(c["after"] for c in d["classes"]) == 2000, d["classes"]
print("diff: %d removed, %d compared, %d top-1 changed, %d classes" % (d["keys_removed"], d["keys_compared"], d["top1_changed"], len(d["classes"])))
PYEOF
) && ok "report diff: $out" || not_ok "report diff" "$out"
before=$(cat t/CURRENT)
run_np 2 run job.ini --set input.paths=fewer.csv --set model.path=small_sigmoid.onnx --set output.head=sigmoid \
    --set output.max_changed=10%; rc=$?
[ $rc = 65 ] && grep -q "keys changed .*over output.max_changed 10.0%: not published; the new version is staged in" "$TMP/err" \
    && [ "$(cat t/CURRENT)" = "$before" ] && ls -d t/.staging-job >/dev/null 2>&1 \
    && $PY -c 'import json,sys; d=json.load(open(sys.argv[1]))["diff"]; assert d["blocked"] and d["top1_changed"] > 200, d' t/report-job.json \
    && ok "a change over max_changed blocks the publish (65), CURRENT unchanged, the version stays staged" \
    || not_ok "max_changed gate" "exit $rc: $(head -c 300 "$TMP/err")"
run_np 2 run job.ini --set input.paths=fewer.csv --set output.max_changed=10% \
    && [ "$(cat t/CURRENT)" != "$before" ] && ok "an unchanged night passes the gate and publishes" || not_ok "gate pass" "$(head -c 300 "$TMP/err")"

# The diff is split across ranks by key range: -np 3 over a 2-shard previous version gives
# the same counts and classes as -np 1 over a copy of the same table.
rm -rf t1 && cp -r t t1
run_np 1 run job.ini --set input.paths=a.csv --set model.path=small_sigmoid.onnx --set output.head=sigmoid \
    --set output.table=t1 && run_np 3 run job.ini --set input.paths=a.csv --set model.path=small_sigmoid.onnx \
    --set output.head=sigmoid \
    && out=$($PY - t1/report-job.json t/report-job.json <<'PYEOF'
import json, sys
a, b = (json.load(open(p))["diff"] for p in sys.argv[1:3])
for d in (a, b):
    d["classes"] = sorted((c["label"], c["before"], c["after"]) for c in d["classes"])
assert a == b, (a, b)
assert a["keys_added"] == 1000 and a["keys_compared"] == 2000 and a["top1_changed"] > 200, a
print("%d added, %d top-1 changed, %d classes" % (a["keys_added"], a["top1_changed"], len(a["classes"])))
PYEOF
) && ok "diff split over 3 ranks equals the diff of 1 rank: $out" || not_ok "diff across ranks" "$out $(head -c 300 "$TMP/err")"

# Ranks that plan different inputs (a file appearing or growing while they glob and stat) stop
# the run before anything is mapped; `precast stats` plans its inputs the same way. An MPMD
# launch gives the second rank another input.
make_csv other.csv 500 4 5
ASAN_OPTIONS=$MPI_ASAN_OPTIONS mpirun --oversubscribe -np 1 "$PRECAST" run job.ini --set output.table=tdiff : \
    -np 1 "$PRECAST" run job.ini --set output.table=tdiff --set input.paths=other.csv >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc = 74 ] && grep -q "ranks see different input files or sizes" "$TMP/err" && [ ! -e tdiff/CURRENT ] \
    && ok "ranks that see different inputs: 74, named, nothing published" || not_ok "plan mismatch" "exit $rc: $(head -c 300 "$TMP/err")"
ASAN_OPTIONS=$MPI_ASAN_OPTIONS mpirun --oversubscribe -np 1 "$PRECAST" stats a.csv --job job.ini -o st.json : \
    -np 1 "$PRECAST" stats other.csv --job job.ini -o st.json >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc = 74 ] && grep -q "ranks see different input files or sizes" "$TMP/err" && [ ! -e st.json ] \
    && ok "precast stats: ranks that see different inputs: 74, nothing written" || not_ok "stats plan mismatch" "exit $rc: $(head -c 300 "$TMP/err")"

# run --check validates without publishing; predict runs without a job file.
run_np 1 run --check job.ini --set output.table=checked; rc=$?
[ $rc = 0 ] && grep -q "ok: model .* loads (1 input), the first 1000 rows of 1 file map and predict" "$TMP/out" && [ ! -e checked/CURRENT ] \
    && ok "run --check: ok, nothing published" || not_ok "check ok" "exit $rc: $(cat "$TMP/out" "$TMP/err")"
{ head -5 a.csv; echo "idZ,1,2"; } >badfirst.csv
run_np 1 run --check job.ini --set input.paths=badfirst.csv; rc=$?
[ $rc = 65 ] && grep -q "badfirst.csv:6: 3 fields" "$TMP/err" && ok "run --check finds a bad row among the first rows (65)" \
    || not_ok "check bad row" "exit $rc: $(cat "$TMP/err")"
run_np 1 run --check job.ini --set model.path=nosuch.onnx; rc=$?
[ $rc = 66 ] && ok "run --check: a missing model is 66" || not_ok "check model" "exit $rc"
touch notadir
run_np 1 run --check job.ini --set output.table=notadir/t; rc=$?
[ $rc = 73 ] && ok "run --check: a table dir that cannot be written is 73" || not_ok "check table" "exit $rc: $(cat "$TMP/err")"
run_np 2 predict --model small_softmax.onnx --input a.csv --table pt --top-k 2 \
    && [ "$("$PRECAST" get pt "$(sed -n 2p a.csv | cut -d, -f1)" | grep -c '"top":\[\[')" = 1 ] \
    && grep -q "precast: predict: 3000 rows in" "$TMP/out" && ok "predict: a one-off run from flags" \
    || not_ok "predict" "$(cat "$TMP/out" "$TMP/err" | head -c 300)"
"$PRECAST" predict --model x.onnx --bogus >/dev/null 2>&1; [ $? = 64 ] && ok "predict: an unknown flag is 64" || not_ok "predict usage" "wrong status"
