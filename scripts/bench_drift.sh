#!/bin/bash
# `make bench-drift` (issue 10): the cost of input.drift = warn against off, end to end, on
# `make bench`'s 1,000,000-row input (scripts/make_bench_data.py: 64 float features, the
# example model) under mpirun -np 2.  Runs alternate off / warn, REPS times each, so that
# machine noise hits both alike; the median of each is reported with their ratio (target:
# warn costs <= 5 %).  The training statistics come from `precast stats` over the same file
# (made once; not timed).  build/bin/bench_featstats times the sketch alone (ns per value)
# and its share of the off run's CPU time is printed beside.  Writes the table to
# $OUT/BENCH-drift.md too.
set -eu
cd "$(dirname "$0")/.."
OUT=${BENCH_DIR:-var/bench}
REPS=${DRIFT_REPS:-5}
NP=${DRIFT_NP:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_base_warn_component_unused=0
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
/usr/bin/python3 scripts/make_bench_data.py "$OUT" >/dev/null
# the batch size `make bench` found fastest, if it ran; else the job default
batch=$(sed -n 's/^batch_rows = //p' "$OUT/bench.ini" 2>/dev/null || true)
cat >"$OUT/drift-bench.ini" <<INI
[model]
path = bench.onnx
[input]
paths = bench.csv
id_column = id
drift_stats = bench.stats.json
[output]
table = table-drift
head = softmax_topk
top_k = 1
[run]
name = drift-bench
batch_rows = ${batch:-1024}
INI
log() { echo "  $*" >&2; }
if [ ! -s "$OUT/bench.stats.json" ] || [ "$OUT/bench.csv" -nt "$OUT/bench.stats.json" ]; then
    log "precast stats over $OUT/bench.csv (once)"
    mpirun --oversubscribe -np "$NP" bin/precast stats "$OUT/bench.csv" --job "$OUT/drift-bench.ini" \
        -o "$OUT/bench.stats.json" >&2
fi
rows_per_s() { # rows_per_s DRIFT: wall-clock rows/s of a whole run, MPI start-up included
    rm -rf "$OUT/table-drift"
    local t0 t1
    t0=$(date +%s.%N)
    mpirun --oversubscribe -np "$NP" bin/precast run "$OUT/drift-bench.ini" --set "input.drift=$1" \
        --set run.checkpoint=false >"$OUT/drift-run-$1.txt" 2>"$OUT/drift-run-$1.err"
    t1=$(date +%s.%N)
    log "drift=$1: $(cat "$OUT/drift-run-$1.txt")"
    awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f\n", 1000000/(b-a)}'
}
off=() warn=()
for i in $(seq "$REPS"); do
    off+=("$(rows_per_s off)")
    warn+=("$(rows_per_s warn)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
m_off=$(median "${off[@]}")
m_warn=$(median "${warn[@]}")
cost=$(awk -v o="$m_off" -v w="$m_warn" 'BEGIN{printf "%.1f", 100*(o-w)/o}')
# The sketch alone, one thread: its share of the off run's CPU time (NP ranks x wall time),
# a figure that machine noise cannot blur the way it blurs the difference of two runs.
sketch=$(build/bin/bench_featstats 1000000 64)
log "$sketch"
ns=$(echo "$sketch" | sed -nE 's/.* ([0-9.]+) ns per value.*/\1/p')
share=$(awk -v ns="$ns" -v o="$m_off" -v np="$NP" 'BEGIN{printf "%.1f", 100 * (ns * 64e6 / 1e9) / (np * 1e6 / o)}')
{
    echo "| figure (1,000,000 rows x 64 features, -np $NP, median of $REPS) | rows/s |"
    echo "|---|---:|"
    echo "| input.drift = off | $m_off |"
    echo "| input.drift = warn | $m_warn |"
    echo "| cost of the check, end to end (target <= 5 %) | $cost % |"
    echo "| the sketch alone: $ns ns per value x 64M values, share of the off run's CPU | $share % |"
    echo
    echo "all runs, off: ${off[*]}; warn: ${warn[*]}"
} | tee "$OUT/BENCH-drift.md"
