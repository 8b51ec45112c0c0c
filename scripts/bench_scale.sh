#!/bin/bash
# `make bench-scale`: a large input through the bench model (64 -> 256 -> 256 -> 10 softmax,
# the example's shape) with -np 2 and run.memory_mb = 256, so that the shuffle spills:
# rows per second, peak RSS per rank, spilled bytes, seconds per stage (from `run -v`).
# SCALE_ROWS (default 20,000,000) rows are generated once under var/scale/ (not committed;
# about 450 bytes a row: 9 GB for the default).
set -eu
cd "$(dirname "$0")/.."
OUT=${SCALE_DIR:-var/scale}
ROWS=${SCALE_ROWS:-20000000}
NP=${SCALE_NP:-2}
MEM=${SCALE_MEMORY_MB:-256}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_base_warn_component_unused=0
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT/spill"
/usr/bin/python3 scripts/make_bench_data.py "$OUT" --rows "$ROWS"
cat >"$OUT/scale.ini" <<INI
[model]
path = bench.onnx
[input]
paths = bench.csv
id_column = id
[output]
table = table
head = softmax_topk
top_k = 1
[run]
name = scale
memory_mb = $MEM
spill_dir = spill
split_mb = 64
INI
rm -rf "$OUT/table"
bytes=$(stat -c %s "$OUT/bench.csv")
t0=$(date +%s.%N)
mpirun --oversubscribe -np "$NP" bin/precast run "$OUT/scale.ini" -v >"$OUT/run.txt" 2>"$OUT/ranks.txt"
t1=$(date +%s.%N)
cat "$OUT/run.txt" "$OUT/ranks.txt"
echo
awk -v r="$ROWS" -v b="$bytes" -v a="$t0" -v z="$t1" -v np="$NP" -v mem="$MEM" 'BEGIN {
    s = z - a
    printf "bench-scale: %d rows (%.2f GB) with -np %d, memory_mb %d: %.1f s wall, %.0f rows/s, %.0f MB/s of CSV\n",
           r, b / 1e9, np, mem, s, r / s, b / 1e6 / s }'
echo "spill files left: $(ls "$OUT/spill" | wc -l)"
