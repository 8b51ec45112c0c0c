#!/bin/bash
# `make check-valgrind` only: one job as a single rank (no mpirun) and lookups, under
# valgrind: no invalid access and no definite leak in the driver, mapper, reducer or storage.
. "$(dirname "$0")/lib.sh"
cd "$TMP"
cp "$FIX/small_softmax.onnx" .
make_csv a.csv 3000 4 9
write_job job.ini small_softmax.onnx a.csv t "top_k = 2" "[run]" "batch_rows = 100"
VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=$ROOT/tests/valgrind.supp"
$VG "$PRECAST" run job.ini >out.txt 2>err.txt; rc=$?
[ $rc = 0 ] && grep -q "3000 written" out.txt && ok "valgrind: precast run (one rank) is clean" \
    || not_ok "valgrind: precast run" "exit $rc: $(grep -v hwloc err.txt | head -20)"
$VG "$PRECAST" get t id1 id2 nope >out.txt 2>err.txt; rc=$?
[ $rc = 0 ] && [ "$(wc -l <out.txt)" = 3 ] && ok "valgrind: precast get is clean" || not_ok "valgrind: precast get" "exit $rc: $(head -20 err.txt)"
$VG "$PRECAST" run job.ini --set input.paths=nothing.csv >out.txt 2>err.txt; rc=$?
[ $rc = 66 ] && ok "valgrind: a failing run is clean" || not_ok "valgrind: failing run" "exit $rc: $(grep -v hwloc err.txt | head -20)"
