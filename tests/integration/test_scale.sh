#!/bin/bash
# Scale: one-shard output, the same table at every rank count and output layout.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cp "$FIX/small_softmax.onnx" .
make_csv a.csv 4000 4 11
make_csv b.csv 3000 4 12
sed -i '2,$s/^id\([0-9]*\),/id\1b,/' b.csv
write_job job.ini small_softmax.onnx "a.csv b.csv" t "top_k = 2"

run_np 1 run job.ini --set output.table=ref && "$DUMP" ref >ref.txt || not_ok "reference run" "$(cat "$TMP/err")"
for np in 1 2 3 4; do
    if run_np $np run job.ini --set output.table=one$np --set output.shards=1 && "$DUMP" one$np >one$np.txt; then
        n=$(ls -d one$np/v*/shard-* | wc -l)
        [ "$n" = 1 ] && cmp -s ref.txt one$np.txt && grep -q ", 1 shard," "$TMP/out" \
            && ok "output.shards = 1 with -np $np: one LevelDB, same table" || not_ok "shards=1 -np $np" "$n shards or differs"
    else
        not_ok "shards=1 -np $np" "$(cat "$TMP/err")"
    fi
done
# A failure on one rank while streaming to rank 0 (a duplicate id lands on some rank) must not hang.
{ cat a.csv; sed -n 2p a.csv; } >dup.csv
run_np 3 run job.ini --set input.paths=dup.csv --set output.table=dup --set output.shards=1; rc=$?
[ $rc = 65 ] && grep -q "duplicate id" "$TMP/err" && ok "a duplicate found while streaming to rank 0 fails cleanly" \
    || not_ok "duplicate with shards=1" "exit $rc: $(head -c 300 "$TMP/err")"
run_np 1 run job.ini --set output.shards=2; rc=$?
[ $rc = 78 ] && grep -q "output.shards = '2': expected ranks or 1" "$TMP/err" && ok "output.shards other than ranks or 1 is refused" \
    || not_ok "shards=2" "exit $rc"
