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

# Spilling: memory_mb = 1 forces many sorted runs on both sides of the shuffle; the table is
# the same, and no spill file is left, also after a failed run.
mkdir -p spill
for np in 1 2 3 8; do
    if run_np $np run job.ini -v --set output.table=sp$np --set run.memory_mb=1 --set run.spill_dir=$TMP/spill \
        && "$DUMP" sp$np >sp$np.txt; then
        spilled=$(awk '/spilled_mb/ {getline; print $NF}' "$TMP/err")
        cmp -s ref.txt sp$np.txt && [ -z "$(ls spill)" ] && { [ $np != 1 ] || [ "$spilled" != "0.0" ]; } \
            && ok "memory_mb = 1, -np $np: spilled (rank 0: $spilled MiB), same table, spill dir empty" \
            || not_ok "spill -np $np" "differs or files left: $(ls spill | head -3)"
    else
        not_ok "spill -np $np" "$(head -c 300 "$TMP/err")"
    fi
done
# Any split size: 1 MiB segments over 8 ranks, with and without spilling.
for mem in 1 512; do
    run_np 8 run job.ini --set output.table=split$mem --set run.split_mb=1 --set run.memory_mb=$mem \
        --set run.spill_dir=$TMP/spill && "$DUMP" split$mem >split$mem.txt && cmp -s ref.txt split$mem.txt \
        && ok "-np 8, split_mb = 1, memory_mb = $mem: same table" || not_ok "split_mb 1 mem $mem" "$(head -c 300 "$TMP/err")"
done
run_np 2 run job.ini --set input.paths=dup.csv --set output.table=x --set run.memory_mb=1 --set run.spill_dir=$TMP/spill
[ -z "$(ls spill)" ] && ok "a failed run leaves no spill file" || not_ok "spill after failure" "$(ls spill)"
touch spill/precast-job-AbC123.run spill/other-file.run
run_np 2 run job.ini --set output.table=x2 --set run.spill_dir=$TMP/spill
[ ! -e spill/precast-job-AbC123.run ] && [ -e spill/other-file.run ] \
    && ok "a killed run's spill files are swept by the next run, others left alone" || not_ok "sweep" "$(ls spill)"

# Skewed ids (a common prefix, very different lengths, a heavy prefix): shards within 10%.
$PY - <<'PYEOF'
import random
r = random.Random(4)
with open("skew.csv", "w") as f:
    f.write("id,a,b,c,d\n")
    for i in range(30000):
        k = r.random()
        if k < 0.5: key = "user-0000000%d" % i
        elif k < 0.8: key = "u%d" % (i * 7919 % 100003)
        else: key = "user-00000001-%0*d" % (1 + i % 11, i)
        f.write("%s-%d,%s\n" % (key, i, ",".join("%.2f" % r.uniform(-1, 1) for _ in range(4))))
PYEOF
if run_np 4 run job.ini --set input.paths=skew.csv --set output.table=skew --set run.memory_mb=2; then
    out=$($PY - skew <<'PYEOF'
import glob, json, sys
m = json.load(open(glob.glob(sys.argv[1] + "/v*/MANIFEST.json")[0]))
rows = [s["rows"] for s in m["shards"]]
mean = sum(rows) / len(rows)
worst = max(abs(r - mean) / mean for r in rows)
print("shard rows %s, worst %.1f%% from the mean" % (rows, 100 * worst))
sys.exit(0 if worst <= 0.10 else 1)
PYEOF
    ) && ok "skewed ids, -np 4: $out" || not_ok "skew balance" "$out"
else
    not_ok "skew run" "$(head -c 300 "$TMP/err")"
fi

# Stragglers: many small segments handed out as ranks become free; a rank slowed on purpose
# takes fewer of them, and the table is the same.
for i in 0 1 2 3; do make_csv big$i.csv 6000 4 $((20 + i)); sed -i "2,\$s/^id\([0-9]*\),/id\1-$i,/" big$i.csv; done
write_job big.ini small_softmax.onnx "big*.csv" t "[run]" "split_mb = 1"
run_np 1 run big.ini --set output.table=bigref && "$DUMP" bigref >bigref.txt
if PRECAST_TEST_SLOW_RANK=1:300 run_np 2 run big.ini -v --set output.table=slow; then
    segs=$(awk '/^ *[0-9]+ +[0-9]+ +[0-9]+/ {print $2}' "$TMP/err" | tr '\n' ' ')
    s0=$(echo $segs | cut -d' ' -f1); s1=$(echo $segs | cut -d' ' -f2)
    "$DUMP" slow >slow.txt
    [ -n "$s0" ] && [ -n "$s1" ] && [ "$s1" -lt "$s0" ] && cmp -s bigref.txt slow.txt \
        && ok "a slowed rank took fewer segments ($s1 vs $s0) and the table is the same" \
        || not_ok "straggler" "segments per rank: $segs; $(head -c 300 "$TMP/err")"
else
    not_ok "straggler run" "$(head -c 300 "$TMP/err")"
fi

# Compressed input: .gz files (whole-file segments) give the same table as plain ones.
gzip -c a.csv >a.csv.gz
gzip -c b.csv >b.csv.gz
for np in 1 3; do
    run_np $np run job.ini --set "input.paths=a.csv.gz b.csv.gz" --set output.table=gz$np && "$DUMP" gz$np >gz$np.txt \
        && cmp -s ref.txt gz$np.txt && ok ".gz inputs, -np $np: same table as plain" || not_ok ".gz -np $np" "$(head -c 300 "$TMP/err")"
done
head -c 20000 a.csv.gz >trunc.csv.gz
run_np 2 run job.ini --set input.paths=trunc.csv.gz --set output.table=x; rc=$?
[ $rc = 74 ] && grep -q "trunc.csv.gz" "$TMP/err" && ok "a truncated .gz is an I/O error naming the file (74)" \
    || not_ok "truncated gz" "exit $rc: $(head -c 300 "$TMP/err")"
