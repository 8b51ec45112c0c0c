#!/bin/bash
# `make bench`: precast against PyTorch on the same model and rows, figures side by side.
#   data:  1,000,000 rows x 64 features (scripts/make_bench_data.py), model 64->256->256->10
#          softmax, exported from the very PyTorch module the baseline runs
#   rows:  precast end to end (mpirun -np 1 and -np 2: CSV -> sorted, published LevelDB table)
#          precast forward pass alone (build/bin/bench_forward, one thread) and the sgemm bound
#          PyTorch forward pass alone and end to end (CSV -> sorted output), 1 and 2 threads
# Figures are measured on this machine in this run; nothing is asserted.
set -eu
cd "$(dirname "$0")/.."
OUT=${BENCH_DIR:-var/bench}
ROWS=${BENCH_ROWS:-1000000}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_base_warn_component_unused=0
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
/usr/bin/python3 scripts/make_bench_data.py "$OUT" >/dev/null
make -s build/bin/bench_forward >/dev/null

cat >"$OUT/bench.ini" <<INI
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
name = bench
INI

results=()
add() { results+=("$(printf '%-44s %12s rows/s' "$1" "$2")"); }

now() { date +%s.%N; }
for np in 1 2; do
    rm -rf "$OUT/table"
    t0=$(now)
    mpirun --oversubscribe -np $np bin/precast run "$OUT/bench.ini" >"$OUT/run$np.txt"
    t1=$(now)
    rps=$(awk -v r="$ROWS" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", r/(b-a)}')
    add "precast end to end, mpirun -np $np (wall)" "$rps"
    echo "  $(cat "$OUT/run$np.txt")"
done
# The same with run.checkpoint off: what keeping map outputs for --resume costs.
rm -rf "$OUT/table"
t0=$(now)
mpirun --oversubscribe -np 2 bin/precast run "$OUT/bench.ini" --set run.checkpoint=false >"$OUT/run-nockpt.txt"
t1=$(now)
add "precast end to end, -np 2, checkpoint off" "$(awk -v r="$ROWS" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", r/(b-a)}')"

fwd=$(build/bin/bench_forward "$OUT/bench.onnx" 1024 "$ROWS")
echo "$fwd" | sed 's/^/  /'
add "precast forward pass, 1 thread" "$(echo "$fwd" | sed -nE 's/^ *forward: .* ([0-9]+) rows\/s.*/\1/p')"
add "cblas_sgemm bound at the same shapes, 1 thread" "$(echo "$fwd" | sed -nE 's/^ *sgemm bound: .* ([0-9]+) rows\/s.*/\1/p')"

# PyTorch in its best set-up (see scripts/bench_torch.py): OpenBLAS threads = torch threads
# (Debian's torch runs Linear through OpenBLAS), a glibc
# malloc that keeps buffers, passive OpenMP waiting with two threads.
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296
for th in 1 2; do
    for mode in forward e2e; do
        line=$(OMP_NUM_THREADS=$th OPENBLAS_NUM_THREADS=$th OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/bench_torch.py \
            --model "$OUT/bench.pt" --csv "$OUT/bench.csv" --threads $th --mode $mode)
        echo "  $line"
        add "PyTorch $mode, $th thread(s)" "$(echo "$line" | sed -nE 's/.*rows_per_s=([0-9.]+).*/\1/p')"
    done
done
unset GLIBC_TUNABLES

echo
echo "bench: $ROWS rows, 64 -> 256 -> 256 -> 10 softmax, top-1, on $(nproc) cores"
printf '%s\n' "${results[@]}"

# Issue 3's model kinds: wide (512 -> 1024 -> 1024 -> 100 softmax, top 5), embed (8 id columns,
# vocabulary 100,000, dim 32, mean + 16 dense -> 256 -> 64 -> sigmoid), items (64 -> 256 ->
# 50,000-class softmax, top 10). One rank / one thread each, beside PyTorch on the same rows.
[ "${BENCH_KINDS:-1}" = 1 ] || exit 0
/usr/bin/python3 scripts/make_bench_models.py "$OUT" >/dev/null
kind_rows=()
for kind in wide embed items; do
    /usr/bin/python3 - "$OUT" "$kind" >"$OUT/$kind.ini" <<'PYEOF'
import json, sys
out, kind = sys.argv[1], sys.argv[2]
k = json.load(open("%s/bench_models.json" % out))[kind]
print("[model]\npath = %s.onnx\n[input]\npaths = %s.csv\nid_column = id" % (kind, kind))
if len(k["inputs"]) > 1:
    for i in k["inputs"]:
        print("map.%s = %s" % (i["name"], ",".join(i["columns"])))
print("[output]\ntable = table-%s\nhead = %s\ntop_k = %d" % (kind, k["head"], k.get("top_k", 1)))
print("[run]\nname = bench-%s" % kind)
PYEOF
    rows=$(($(wc -l <"$OUT/$kind.csv") - 1))
    rm -rf "$OUT/table-$kind"
    t0=$(now)
    mpirun --oversubscribe -np 1 bin/precast run "$OUT/$kind.ini" >"$OUT/run-$kind.txt"
    t1=$(now)
    e2e=$(awk -v r="$rows" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", r/(b-a)}')
    frows=$(( rows < 100000 ? rows : 100000 ))
    fwd=$(build/bin/bench_forward "$OUT/$kind.onnx" 1024 "$frows")
    echo "$fwd" | sed 's/^/  /'
    f=$(echo "$fwd" | sed -nE 's/^ *forward: .* ([0-9]+) rows\/s.*/\1/p')
    flops=$(echo "$fwd" | sed -nE 's/.*flops\/row ([0-9]+).*/\1/p')
    ratio=$(echo "$fwd" | sed -nE 's/^ *forward \/ sgemm bound: ([0-9.]+).*/\1/p')
    tf=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296 \
        /usr/bin/python3 scripts/bench_torch.py --kind $kind --model "$OUT/$kind.pt" --csv "$OUT/$kind.csv" \
        --threads 1 --mode forward --repeat 1 | sed -nE 's/.*rows_per_s=([0-9.]+).*/\1/p')
    kind_rows+=("$(printf '%-6s %12s %12s %12s %8s %14s' "$kind" "$e2e" "$f" "$tf" "$ratio" "$flops")")
done
echo
echo "model kinds, one rank / one thread (rows/s): precast end to end, precast forward, PyTorch forward;"
echo "forward as a fraction of the cblas_sgemm bound at the same shapes; FLOPs per row"
printf '%-6s %12s %12s %12s %8s %14s\n' kind e2e forward torch-fwd /sgemm flops/row
printf '%s\n' "${kind_rows[@]}"
