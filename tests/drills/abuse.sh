#!/bin/bash
# Drill 7: precast serve under abuse (tests/drills/abuse.py): IDLE idle half-requests
# (slowloris) closed after the idle timeout while a fresh client is served; MALFORMED
# malformed HTTP and RESP requests with RSS growth under 10%; a steady load of LOAD_SECONDS
# with 0 errors and RSS within 10%. The server runs with --idle-timeout 3 and
# --max-connections above IDLE; the drill raises its own and the server's open-file limit.
#   usage: abuse.sh [IDLE] [MALFORMED] [LOAD_SECONDS]     (default 1000 2000 20)
DRILL=abuse
. "$(dirname "$0")/lib.sh"
IDLE=${1:-1000}
BAD=${2:-2000}
LOAD=${3:-20}
cd "$TMP"
setup_data 2000
write_job job.ini small_softmax.onnx a.csv t "top_k = 2"
run_np 2 run job.ini || { not_ok "run" "$(cat "$TMP/err")"; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 4096
echo "# open files limit $(ulimit -n)"
"$PRECAST" serve t --http 127.0.0.1:0 --resp 127.0.0.1:0 --idle-timeout 3 --max-connections $((IDLE + 100)) 2>serve.log &
SPID=$!
for _ in $(seq 100); do grep -q "resp listening" serve.log && break; sleep 0.1; done
HPORT=$(sed -n 's/.*http listening on 127.0.0.1:\([0-9]*\).*/\1/p' serve.log)
RPORT=$(sed -n 's/.*resp listening on 127.0.0.1:\([0-9]*\).*/\1/p' serve.log)
"$PY" "$DRILLS/abuse.py" "$HPORT" "$RPORT" "$SPID" sample.txt "$IDLE" "$BAD" "$LOAD" 3 >abuse.out 2>&1
cat abuse.out
for part in slowloris malformed load; do
    if grep -q "^$part: ok" abuse.out; then trial_ok; else trial_fail "$part: $(grep "^$part" abuse.out || tail -c 400 abuse.out)"; fi
done
if kill -0 $SPID 2>/dev/null; then
    kill -TERM $SPID; wait $SPID; src=$?
    [ $src = 0 ] || trial_fail "serve exit $src after SIGTERM: $(tail -c 300 serve.log)"
else
    wait $SPID; trial_fail "the server died (exit $?): $(tail -c 300 serve.log)"
fi
drill_end "$IDLE idle connections, $BAD malformed requests, ${LOAD}s of load; $(sed -E 's/^(slowloris|malformed|load): (ok|FAIL) //' abuse.out | tr '\n' ';' | cut -c1-400)"
