#!/bin/bash
# A run killed (SIGKILL, as by kill -9 or a crash) at any stage leaves the published version
# current and answering as before; the next run cleans up and publishes a complete, verified
# version. PRECAST_TEST_CRASH=POINT:RANK is a test hook in the driver.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cp "$FIX/small_softmax.onnx" "$FIX/small_logits.onnx" .
make_csv a.csv 4000 4 13
mkdir -p spill
write_job job.ini small_softmax.onnx a.csv t "top_k = 2" "[run]" "memory_mb = 1" "spill_dir = spill"
run_np 2 run job.ini || { not_ok "first run" "$(cat "$TMP/err")"; exit 1; }
key=$(sed -n 2p a.csv | cut -d, -f1)
before_current=$(cat t/CURRENT)
before=$("$PRECAST" get t "$key")
for point in after_map:1 mid_shuffle:0 mid_write:1 before_publish:0; do
    # the killed run would publish different values (another model), if it got that far
    PRECAST_TEST_CRASH=$point run_np 2 run job.ini --set model.path=small_logits.onnx --set output.head=raw; rc=$?
    if [ $rc = 0 ]; then not_ok "crash at $point" "the run did not die"; continue; fi
    [ "$(cat t/CURRENT)" = "$before_current" ] && [ "$("$PRECAST" get t "$key")" = "$before" ] \
        && ok "killed at $point (exit $rc): the published version still answers as before" \
        || not_ok "crash at $point" "CURRENT or values changed"
    "$PRECAST" verify t >/dev/null 2>verify.err && ok "killed at $point: precast verify passes on CURRENT" \
        || not_ok "verify after $point" "$(cat verify.err)"
done
# The next run: the lock is free (flock died with the process), stale staging and spill files
# are cleaned, and a complete version is published and verified.
if run_np 2 run job.ini --set model.path=small_logits.onnx --set output.head=raw; then
    [ "$(cat t/CURRENT)" != "$before_current" ] && "$PRECAST" verify t >/dev/null 2>verify.err \
        && "$PRECAST" get t "$key" | grep -q '"scores"' \
        && ok "the rerun publishes a complete version that verifies" || not_ok "rerun" "$(cat verify.err)"
    [ -z "$(ls spill)" ] && ok "no spill file is left after the rerun" || not_ok "spill after crashes" "$(ls spill | head)"
    ls -d t/.staging-* >/dev/null 2>&1 && not_ok "staging after rerun" "$(ls -a t)" || ok "no staging dir is left after the rerun"
else
    not_ok "rerun" "$(cat "$TMP/err")"
fi

# --resume: a run killed mid-map is rerun reusing the segments it finished; the table (and
# the rejects) are exactly those of a clean run.
for i in 0 1 2 3 4 5; do make_csv part$i.csv 1500 4 $((40 + i)); sed -i "2,\$s/^id\([0-9]*\),/id\1-$i,/" part$i.csv; done
sed -i '20s/.*/id-bad,1,2/' part0.csv
write_job r.ini small_softmax.onnx "part*.csv" tr "top_k = 2" "[input]" "bad_rows = skip"
{ echo "[model]"; echo "path = small_softmax.onnx"; echo "[input]"; echo "paths = part*.csv"; echo "bad_rows = skip";
  echo "[output]"; echo "table = tr"; echo "top_k = 2"; echo "[run]"; echo "split_mb = 1"; echo "checkpoint = true"; } >r.ini
run_np 1 run r.ini --set output.table=clean && "$DUMP" clean >clean.txt && cp clean/rejects-r.jsonl clean-rejects.jsonl \
    || not_ok "resume: clean run" "$(cat "$TMP/err")"
PRECAST_TEST_CRASH=mid_map:1 run_np 2 run r.ini; rc=$?
[ $rc != 0 ] && [ ! -e tr/CURRENT ] && ls tr/.checkpoint-r/seg-*.pairs >/dev/null 2>&1 \
    && ok "killed mid-map (exit $rc): nothing published, finished segments checkpointed ($(ls tr/.checkpoint-r/*.pairs | wc -l))" \
    || not_ok "resume: kill" "exit $rc: $(ls -a tr tr/.checkpoint-r 2>&1 | head)"
if run_np 2 run r.ini --resume && "$DUMP" tr >resumed.txt; then
    reused=$(grep -o '[0-9]* segments\? reused' "$TMP/out")
    [ -n "$reused" ] && cmp -s clean.txt resumed.txt && cmp -s clean-rejects.jsonl tr/rejects-r.jsonl \
        && [ ! -e tr/.checkpoint-r ] && "$PRECAST" verify tr >/dev/null \
        && ok "--resume reuses finished segments ($reused): the same table and rejects as a clean run, checkpoints removed" \
        || not_ok "resume" "$(cat "$TMP/out") $(diff clean-rejects.jsonl tr/rejects-r.jsonl | head -3)"
else
    not_ok "resume run" "$(cat "$TMP/err")"
fi
# run.checkpoint = auto (the default) checkpoints only inputs of 1 GiB or more: killed mid-map,
# this small job leaves none, and --resume still works (it maps everything again).
PRECAST_TEST_CRASH=mid_map:1 run_np 2 run r.ini --set run.checkpoint=auto --set output.table=tauto; rc=$?
left=$(ls tauto/.checkpoint-r/*.pairs 2>/dev/null | wc -l)
run_np 2 run r.ini --set run.checkpoint=auto --set output.table=tauto --resume; rc2=$?
[ $rc != 0 ] && [ "$left" = 0 ] && [ $rc2 = 0 ] && [ -e tauto/CURRENT ] \
    && ok "checkpoint = auto: a small input is not checkpointed; --resume maps it again" \
    || not_ok "checkpoint auto" "exit $rc/$rc2, $left checkpoints: $(head -c 300 "$TMP/err")"
# Checkpoints of another model are never reused.
PRECAST_TEST_CRASH=mid_map:0 run_np 2 run r.ini --set output.table=tr2; rc=$?
run_np 2 run r.ini --set output.table=tr2 --set model.path=small_logits.onnx --set output.head=softmax_topk --resume \
    && ! grep -q "reused" "$TMP/out" && ok "--resume after a model change maps everything again" \
    || not_ok "resume model change" "$(cat "$TMP/out" "$TMP/err" | head -c 300)"
