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
# The server: a few requests over both protocols (a batch, a miss, a protocol error), a
# reload to a second version, then SIGTERM; valgrind's exit status says whether it was clean.
# serve_under_valgrind NAME [serve flags...]
serve_under_valgrind() {
    local name=$1; shift
    $VG "$PRECAST" serve t --http 127.0.0.1:0 --resp 127.0.0.1:0 --threads 2 --reload-interval 200 "$@" 2>serve.err &
    local spid=$! hport rport rc
    for _ in $(seq 300); do grep -q "resp listening" serve.err && break; sleep 0.1; done
    hport=$(sed -n 's/.*http listening on 127.0.0.1:\([0-9]*\).*/\1/p' serve.err)
    rport=$(sed -n 's/.*resp listening on 127.0.0.1:\([0-9]*\).*/\1/p' serve.err)
    curl -s "http://127.0.0.1:$hport/v1/predictions/id1" >http.out
    curl -s -d '["id1","nope"]' "http://127.0.0.1:$hport/v1/predictions:batchGet" >>http.out
    curl -s "http://127.0.0.1:$hport/metrics" >/dev/null
    redis-cli -p "$rport" MGET id1 id2 nope >resp.out
    exec 3<>"/dev/tcp/127.0.0.1/$rport"; printf '*1\r\n$99999999999\r\n' >&3; timeout 5 cat <&3 >proto.out; exec 3>&-
    $VG "$PRECAST" run job.ini --set output.top_k=1 >/dev/null 2>&1
    for _ in $(seq 100); do grep -q "now serving" serve.err && break; sleep 0.1; done
    redis-cli -p "$rport" GET id1 >>resp.out
    kill -TERM $spid; wait $spid; rc=$?
    [ $rc = 0 ] && grep -q '"found": true' http.out && grep -q "Protocol error" proto.out && grep -q "now serving" serve.err && [ "$(wc -l <resp.out)" = 4 ] \
        && ok "valgrind: $name (both protocols, a reload, SIGTERM) is clean" \
        || not_ok "valgrind: $name" "exit $rc: $(head -30 serve.err)"
}
serve_under_valgrind "precast serve"
serve_under_valgrind "precast serve --preload" --preload

# Input drift: training statistics from the same rows, then a run that sketches and compares.
$VG "$PRECAST" stats a.csv --job job.ini -o small_softmax.stats.json >out.txt 2>err.txt; rc=$?
[ $rc = 0 ] && [ -s small_softmax.stats.json ] && ok "valgrind: precast stats is clean" \
    || not_ok "valgrind: precast stats" "exit $rc: $(grep -v hwloc err.txt | head -20)"
$VG "$PRECAST" run job.ini --set input.drift=gate >out.txt 2>err.txt; rc=$?
[ $rc = 0 ] && grep -q "3000 written" out.txt && ok "valgrind: precast run with input.drift = gate is clean" \
    || not_ok "valgrind: drift run" "exit $rc: $(grep -v hwloc err.txt | head -20)"
