#!/bin/bash
# Drill 6: lookups while versions are published, rolled back and garbage-collected.
#   usage: concurrency.sh [SECONDS]     (default 15)
# Writers (one loop): `precast run` (alternately top_k 1 and 2, keep_versions = 1),
# `precast versions --rollback` to the newest version that is not CURRENT, `precast versions --keep 1`, again.
# Readers, all at once, for SECONDS:
#   library  build/bin/drill_lookup: open CURRENT, multi_get 50 keys, close, in a loop;
#   CLI      `precast get --format raw TABLE -` of the same keys, in a loop;
#   server   `precast serve --reload-interval 50`: HTTP batchGet and RESP MGET of 25 keys in a
#            loop (tests/integration/serve_client.py reload).
# Every lookup round must succeed, find every key, and hold values of one version (top_k 1 and
# 2 values differ in their number of '['). Trials: lookup rounds; failures: failed or mixed.
DRILL=concurrency
. "$(dirname "$0")/lib.sh"
SECONDS_RUN=${1:-15}
LOOKUP="$BUILD/bin/drill_lookup"
[ -x "$LOOKUP" ] || { not_ok "concurrency" "$LOOKUP missing: make $LOOKUP"; exit 1; }
cd "$TMP"
setup_data 2000
head -50 sample.txt >keys50.txt
write_job job.ini small_softmax.onnx a.csv t "keep_versions = 1"
for k in 1 2; do run_np 2 run job.ini --set output.top_k=$k || { not_ok "setup" "$(cat "$TMP/err")"; exit 1; }; done
"$PRECAST" serve t --http 127.0.0.1:0 --resp 127.0.0.1:0 --reload-interval 50 2>serve.log &
SPID=$!
for _ in $(seq 100); do grep -q "resp listening" serve.log && break; sleep 0.1; done
HPORT=$(sed -n 's/.*http listening on 127.0.0.1:\([0-9]*\).*/\1/p' serve.log)
RPORT=$(sed -n 's/.*resp listening on 127.0.0.1:\([0-9]*\).*/\1/p' serve.log)
[ -n "$HPORT" ] || { not_ok "concurrency: serve" "$(cat serve.log)"; exit 1; }

"$PY" "$ROOT/tests/integration/serve_client.py" reload "$HPORT" "$RPORT" keys50.txt "$SECONDS_RUN" server.json &
CPID=$!
"$LOOKUP" t keys50.txt "$SECONDS_RUN" >lib.out 2>lib.err &
LPID=$!
(
    end=$((SECONDS + SECONDS_RUN)) rounds=0 failed=0 mixed=0
    while [ $SECONDS -lt $end ]; do
        rounds=$((rounds + 1))
        if ! "$PRECAST" get --format raw t - <keys50.txt >cli.out 2>cli.err; then
            failed=$((failed + 1)); [ $failed -le 3 ] && echo "get failed: $(head -c 200 cli.err)" >>cli.log; continue
        fi
        if grep -c '^$' cli.out | grep -qv '^0$'; then
            failed=$((failed + 1)); echo "a key not found" >>cli.log; continue
        fi
        [ "$(awk '{print gsub(/\[/, "[")}' cli.out | sort -u | wc -l)" = 1 ] || { mixed=$((mixed + 1)); echo "mixed" >>cli.log; }
    done
    echo "$rounds $failed $mixed" >cli.count
) &
GPID=$!

publishes=0 rollbacks=0 gcs=0 wfail=0 k=2
end=$((SECONDS + SECONDS_RUN))
while [ $SECONDS -lt $end ]; do
    k=$((3 - k))
    if run_np 2 run job.ini --set output.top_k=$k; then publishes=$((publishes + 1)); else wfail=$((wfail + 1)); echo "run: $(head -c 200 "$TMP/err")" >>writer.log; fi
    # back to the newest version that is not CURRENT (retention may have removed the one before)
    prev=$(ls -d t/v* | xargs -n1 basename | grep -vx "$(current_of t)" | sort | tail -1)
    if "$PRECAST" versions t --rollback "$prev" >rb.out 2>&1; then rollbacks=$((rollbacks + 1)); k=$((3 - k)); else wfail=$((wfail + 1)); cat rb.out >>writer.log; fi
    if "$PRECAST" versions t --keep 1 >keep.out 2>&1; then gcs=$((gcs + 1)); else wfail=$((wfail + 1)); cat keep.out >>writer.log; fi
done
wait $CPID $LPID $GPID
kill -TERM $SPID; wait $SPID; src=$?

read -r lib_rounds lib_failed lib_mixed lib_versions lib_held < <(sed -E 's/.*rounds=([0-9]+) failed=([0-9]+) mixed=([0-9]+) versions=([0-9]+) held_failed=([0-9]+).*/\1 \2 \3 \4 \5/' lib.out)
read -r cli_rounds cli_failed cli_mixed <cli.count
read -r srv_batches srv_failed srv_mixed srv_versions < <("$PY" -c '
import json; s = json.load(open("server.json"))
print(s["batches"], len(s["failures"]), s["mixed"], len(s["versions"]))')
TRIALS=$((lib_rounds + cli_rounds + srv_batches))
FAILURES=$((lib_failed + lib_mixed + cli_failed + cli_mixed + srv_failed + srv_mixed))
[ "$lib_failed$lib_mixed" = 00 ] || not_ok "concurrency: library" "$(cat lib.out lib.err | head -c 600)"
[ "$cli_failed$cli_mixed" = 00 ] || not_ok "concurrency: CLI" "$(head -c 600 cli.log)"
[ "$srv_failed$srv_mixed" = 00 ] || not_ok "concurrency: server" "$(head -c 600 server.json)"
[ "$src" = 0 ] || { not_ok "concurrency: serve exit" "$src: $(tail -c 300 serve.log)"; FAILURES=$((FAILURES + 1)); }
[ "$wfail" = 0 ] || { not_ok "concurrency: writers" "$wfail failed: $(head -c 400 writer.log)"; FAILURES=$((FAILURES + 1)); }
[ "$publishes" -ge 2 ] && [ "$rollbacks" -ge 2 ] || not_ok "concurrency: writers" "too few changes: $publishes publishes, $rollbacks rollbacks"
drill_end "${SECONDS_RUN}s: $publishes publishes, $rollbacks rollbacks, $gcs --keep 1; library $lib_rounds rounds ($lib_failed failed, $lib_mixed mixed, $lib_versions version changes seen; a handle held across the run failed $lib_held rounds after its version was removed), CLI $cli_rounds ($cli_failed failed, $cli_mixed mixed), server $srv_batches batches over HTTP+RESP ($srv_failed failed, $srv_mixed mixed, $srv_versions versions)"
