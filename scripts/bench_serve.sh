#!/bin/bash
# `make bench-serve` (issue 6): lookups from precast against redis-server on the same keys and
# values, on loopback, figures side by side.
#   data:  the bench model and rows of `make bench` (scripts/make_bench_data.py, var/bench/),
#          ids renamed r0000000..r0999999 -> key:000000000000..key:000000999999, the keys
#          redis-benchmark -r 1000000 asks for; one real `mpirun -np 2 precast run` into
#          var/bench-serve/table (reused while the model, rows and job are unchanged)
#   rows:  in-process precast_table_get (build/bin/tool_bench_lookup, after an untimed pass over
#          the keys that warms the table): gets/s, p50, p99, from
#          1 thread and 2 threads sharing the handle, 1 thread over a tenth of the keys (what
#          the block cache does), and misses (keys inside the shards' ranges, answered by the
#          bloom filter)
#          redis-benchmark -t get -r 1000000 -n 1000000 -P 1 and -P 16 against redis-server
#          (no persistence; loaded with every pair of the table by tool_resp_load |
#          redis-cli --pipe), against `precast serve`'s RESP endpoint (lookups in LevelDB) and
#          against `precast serve --preload`'s (lookups in its memory index): two rounds,
#          the second in the reverse order, each server's better run shown
#          wrk against both servers' HTTP endpoints, GET /v1/predictions/KEY, random keys
# Targets (issue 7): precast serve >= 1.0x redis-server GET requests/s at -P 1 and -P 16;
# in-process precast_table_get p99 <= 10 us (1 thread, warm table).
# Everything runs on this machine at once (servers, load generators), so the load generators
# take CPU from the servers; the figures are this run's and nothing is asserted on them.
# Ports (fixed, loopback; the run stops if one is taken): BENCH_REDIS_PORT (16379),
# BENCH_RESP_PORT (16380), BENCH_HTTP_PORT (18080), BENCH_PRELOAD_RESP_PORT (16381),
# BENCH_PRELOAD_HTTP_PORT (18081).  Also BENCH_REQUESTS (redis-benchmark -n,
# 1000000), BENCH_GETS (in-process gets per run, 2000000), BENCH_WRK_SECONDS (10),
# BENCH_SERVE_THREADS (precast serve --threads, 1 unless set; "default": precast serve's own
# default, one per CPU).  One, because redis-server answers from one thread and
# redis-benchmark keeps one of this machine's 2 cores busy: a second request thread only
# competes with the load generator (measured with --preload, 2026-11-26: at -P 1, 8.5-10.1 CPU
# seconds per million GETs with 2 threads against 7.6-8.2 with 1, redis-server 8.8-10.0; at
# -P 16, 1.04-1.16 either way, redis-server 1.75-1.94).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_SERVE_DIR:-var/bench-serve}
SERVE_THREADS=${BENCH_SERVE_THREADS:-1}
[ "$SERVE_THREADS" = default ] && SERVE_THREADS=
SRC=${BENCH_DIR:-var/bench}
KEYS=1000000
REQUESTS=${BENCH_REQUESTS:-1000000}
GETS=${BENCH_GETS:-2000000}
WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
REDIS_PORT=${BENCH_REDIS_PORT:-16379}
RESP_PORT=${BENCH_RESP_PORT:-16380}
HTTP_PORT=${BENCH_HTTP_PORT:-18080}
PRE_RESP_PORT=${BENCH_PRELOAD_RESP_PORT:-16381}
PRE_HTTP_PORT=${BENCH_PRELOAD_HTTP_PORT:-18081}
HOST=127.0.0.1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_base_warn_component_unused=0
export OPENBLAS_NUM_THREADS=1 LC_ALL=C

die() { echo "bench-serve: $*" >&2; exit 1; }
for tool in redis-server redis-cli redis-benchmark wrk curl mpirun; do
    command -v $tool >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done
bin/precast serve --help >/dev/null 2>&1 || die "bin/precast has no serve command (make all)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- servers: started in the background, always stopped on the way out ----------------------
REDIS_PID='' SERVE_PID='' PRE_PID=''
stop() { # stop PID NAME: SIGTERM, then wait for it
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || echo "  ($2 exited with status $?)"
}
cleanup() {
    stop "$SERVE_PID" "precast serve"; SERVE_PID=
    stop "$PRE_PID" "precast serve --preload"; PRE_PID=
    stop "$REDIS_PID" redis-server; REDIS_PID=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
for p in "$REDIS_PORT" "$RESP_PORT" "$HTTP_PORT" "$PRE_RESP_PORT" "$PRE_HTTP_PORT"; do
    port_free "$p" || die "port $HOST:$p is taken by another program (set BENCH_REDIS_PORT, BENCH_RESP_PORT, BENCH_HTTP_PORT, BENCH_PRELOAD_RESP_PORT or BENCH_PRELOAD_HTTP_PORT)"
done

# wait_ready PID NAME LOG COMMAND...: until COMMAND succeeds (30 s at most) while PID lives.
wait_ready() {
    local pid=$1 name=$2 log=$3; shift 3
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$name exited before it was ready (log: $log)"; }
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$log" >&2
    die "$name not ready after 30 s (log: $log)"
}
redis_ping() { [ "$(redis-cli -h $HOST -p "$1" PING 2>/dev/null)" = PONG ]; }
resp_answers() { redis-cli -h $HOST -p "$1" GET key:000000000000 2>/dev/null | grep -q .; }
http_answers() { curl -s -o /dev/null "http://$HOST:$1/v1/predictions/key:000000000000"; }

# ---- 1. the table --------------------------------------------------------------------------
mkdir -p "$OUT"
make -s build/bin/tool_resp_load build/bin/tool_bench_lookup >/dev/null
/usr/bin/python3 scripts/make_bench_data.py "$SRC" --rows $KEYS >/dev/null
if [ ! -f "$OUT/serve.csv" ] || [ "$SRC/bench.csv" -nt "$OUT/serve.csv" ]; then
    # r0668784 -> key:000000668784 (the 7 digits of make_bench_data's ids, padded to 12)
    sed -E '1!s/^r([0-9]{7}),/key:00000\1,/' "$SRC/bench.csv" >"$OUT/serve.csv.tmp"
    [ "$(grep -c -v '^key:' "$OUT/serve.csv.tmp")" = 1 ] || die "$SRC/bench.csv: ids other than r0000000..r9999999"
    mv "$OUT/serve.csv.tmp" "$OUT/serve.csv"
fi
cmp -s "$SRC/bench.onnx" "$OUT/model.onnx" || cp "$SRC/bench.onnx" "$OUT/model.onnx"
cat >"$OUT/serve.ini.tmp" <<INI
[model]
path = model.onnx
[input]
paths = serve.csv
id_column = id
[output]
table = table
head = softmax_topk
top_k = 1
keep_versions = 0
[run]
name = bench-serve
checkpoint = false
INI
if cmp -s "$OUT/serve.ini.tmp" "$OUT/serve.ini"; then rm "$OUT/serve.ini.tmp"; else mv "$OUT/serve.ini.tmp" "$OUT/serve.ini"; fi
fresh=1
for f in serve.csv model.onnx serve.ini; do
    [ -f "$OUT/table/CURRENT" ] && [ "$OUT/table/CURRENT" -nt "$OUT/$f" ] || fresh=0
done
if [ $fresh = 1 ]; then
    echo "  table: $OUT/table is up to date ($(cat "$OUT/table/CURRENT"))"
else
    rm -rf "$OUT/table"
    mpirun --oversubscribe -np 2 bin/precast run "$OUT/serve.ini" | tee "$OUT/run.txt" | sed 's/^/  /'
fi
bin/precast get "$OUT/table" key:000000000000 key:000000999999 key:000001000000 | sed 's/^/  /'

# ---- 2. in-process lookups (before the servers start, so that nothing else runs) ------------
results=()
inproc() { # inproc LABEL ARGS...
    local label=$1; shift
    local line
    line=$(build/bin/tool_bench_lookup "$OUT/table" --gets "$GETS" --keys $KEYS "$@")
    echo "  $line"
    results+=("$(echo "$line" | awk -v l="$label" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "  %-52s %12s %12s %12s", l, f["gets_per_s"], f["p50_us"], f["p99_us"] }')")
}
inproc "1 thread, present keys"
inproc "2 threads sharing the handle, present keys" --threads 2
inproc "1 thread, present keys, only 100,000 of them" --keys 100000
inproc "1 thread, absent keys inside the ranges (bloom)" --miss
inproc_rows=("${results[@]}")

# ---- 3. redis-server, loaded with the table's pairs ----------------------------------------
redis-server --port "$REDIS_PORT" --bind $HOST --save '' --appendonly no --daemonize no \
    --loglevel warning >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
wait_ready "$REDIS_PID" redis-server "$OUT/redis.log" redis_ping "$REDIS_PORT"
build/bin/tool_resp_load "$OUT/table" 2>"$OUT/load.err" | redis-cli -h $HOST -p "$REDIS_PORT" --pipe >"$OUT/load.txt" \
    || { cat "$OUT/load.err" "$OUT/load.txt" >&2; die "loading redis-server failed"; }
cat "$OUT/load.err" | sed 's/^/  /'
grep -q 'errors: 0,' "$OUT/load.txt" || { cat "$OUT/load.txt" >&2; die "redis-cli --pipe reported errors"; }
rows=$(sed -nE 's/^tool_resp_load: ([0-9]+) pairs.*/\1/p' "$OUT/load.err")
dbsize=$(redis-cli -h $HOST -p "$REDIS_PORT" DBSIZE)
[ "$dbsize" = "$rows" ] && [ "$rows" = $KEYS ] || die "redis-server DBSIZE $dbsize, table rows $rows, want $KEYS"
echo "  redis-server: DBSIZE $dbsize = the table's rows; used_memory $(redis-cli -h $HOST -p "$REDIS_PORT" INFO memory | sed -nE 's/^used_memory_human:(.*)\r$/\1/p')"

# ---- 4. precast serve and precast serve --preload, beside redis-server (all up; each idles
# while another is measured)
# shellcheck disable=SC2086
bin/precast serve "$OUT/table" --http $HOST:"$HTTP_PORT" --resp $HOST:"$RESP_PORT" \
    ${SERVE_THREADS:+--threads $SERVE_THREADS} >"$OUT/serve.log" 2>&1 &
SERVE_PID=$!
wait_ready "$SERVE_PID" "precast serve" "$OUT/serve.log" resp_answers "$RESP_PORT"
wait_ready "$SERVE_PID" "precast serve" "$OUT/serve.log" http_answers "$HTTP_PORT"
sed 's/^/  /' "$OUT/serve.log"
# shellcheck disable=SC2086
bin/precast serve "$OUT/table" --preload --http $HOST:"$PRE_HTTP_PORT" --resp $HOST:"$PRE_RESP_PORT" \
    ${SERVE_THREADS:+--threads $SERVE_THREADS} >"$OUT/serve-preload.log" 2>&1 &
PRE_PID=$!
wait_ready "$PRE_PID" "precast serve --preload" "$OUT/serve-preload.log" resp_answers "$PRE_RESP_PORT"
wait_ready "$PRE_PID" "precast serve --preload" "$OUT/serve-preload.log" http_answers "$PRE_HTTP_PORT"
sed 's/^/  /' "$OUT/serve-preload.log"
grep -q ' preloaded: ' "$OUT/serve-preload.log" || die "precast serve --preload did not preload (see $OUT/serve-preload.log)"
pre_rss=$(awk '/^VmRSS:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$PRE_PID/status")
echo "  precast serve --preload: RSS $pre_rss"
# The same bytes from the three servers, for present and absent keys.
for k in key:000000000000 key:000000424242 key:000000999999 key:000001000000 key:000000424242-miss; do
    a=$(redis-cli -h $HOST -p "$REDIS_PORT" GET "$k")
    b=$(redis-cli -h $HOST -p "$RESP_PORT" GET "$k")
    c=$(redis-cli -h $HOST -p "$PRE_RESP_PORT" GET "$k")
    [ "$a" = "$b" ] || die "GET $k: redis-server says '$a', precast serve says '$b'"
    [ "$a" = "$c" ] || die "GET $k: redis-server says '$a', precast serve --preload says '$c'"
done
echo "  GET of 5 keys (3 present, 2 absent): redis-server, precast serve and --preload answer the same"
code=$(curl -s -o "$OUT/http-hit.txt" -w '%{http_code}' "http://$HOST:$HTTP_PORT/v1/predictions/key:000000424242")
[ "$code" = 200 ] || die "GET /v1/predictions/key:000000424242 answered $code, want 200"
code=$(curl -s -o "$OUT/http-miss.txt" -w '%{http_code}' "http://$HOST:$HTTP_PORT/v1/predictions/key:000001000000")
[ "$code" = 404 ] || die "GET /v1/predictions/key:000001000000 answered $code, want 404"
echo "  http: key:000000424242 -> 200 $(head -c 200 "$OUT/http-hit.txt"); key:000001000000 -> 404"

# rb PORT PIPELINE: redis-benchmark's CSV row "GET",rps,avg,min,p50,p95,p99,max -> "rps p50 p99"
rb() {
    local csv
    csv=$(redis-benchmark -h $HOST -p "$1" -c 50 -t get -r $KEYS -n "$REQUESTS" -P "$2" --csv 2>>"$OUT/redis-benchmark.err") || true
    echo "$csv" >>"$OUT/redis-benchmark.csv"
    echo "$csv" | tr -d '"' | awk -F, '$1 == "GET" { printf "%.0f %s %s", $2, $5, $7 }'
}
declare -A redis serve pre
: >"$OUT/redis-benchmark.csv"
: >"$OUT/redis-benchmark.err"
# CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# rb_row NAME PORT P PID: one redis-benchmark run, echoed; on stdout "rps p50 p99 cpu", cpu
# being the server's CPU seconds per million requests during the run.  Requests/s depend on
# whatever else the 2 cores are doing; the server's CPU per request much less so.
rb_row() {
    local row before after cpu
    before=$(cpu_s "$4")
    row=$(rb "$2" "$3")
    after=$(cpu_s "$4")
    [ -n "$row" ] || die "redis-benchmark -P $3 against $1 printed no GET row (see $OUT/redis-benchmark.err)"
    cpu=$(awk -v a="$before" -v b="$after" -v n="$REQUESTS" 'BEGIN { printf "%.2f", (b - a) / n * 1e6 }')
    printf '  %-24s -P %-2s: req/s p50 p99 = %s, server CPU s per 1M requests %s\n' "$1," "$3" "$row" "$cpu" >&2
    echo "$row $cpu"
}
# best OLD NEW: whichever of two rows has more requests/s.
best() { if [ -z "$1" ] || awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); exit !(y[1] > x[1]) }'; then echo "$2"; else echo "$1"; fi; }
# Two rounds per pipeline depth, the second in the reverse order, and each server's better run
# kept: the machine's load drifts during a bench, and whoever ran first would otherwise see
# another machine than whoever ran last.
for P in 1 16; do
    redis[$P]='' serve[$P]='' pre[$P]=''
    for order in forward reverse; do
        names=(redis serve pre)
        [ $order = reverse ] && names=(pre serve redis)
        for n in "${names[@]}"; do
            case $n in
            redis) redis[$P]=$(best "${redis[$P]}" "$(rb_row redis-server "$REDIS_PORT" $P "$REDIS_PID")") ;;
            serve) serve[$P]=$(best "${serve[$P]}" "$(rb_row "precast serve" "$RESP_PORT" $P "$SERVE_PID")") ;;
            pre) pre[$P]=$(best "${pre[$P]}" "$(rb_row "precast serve --preload" "$PRE_RESP_PORT" $P "$PRE_PID")") ;;
            esac
        done
    done
done
redis_mem=$(redis-cli -h $HOST -p "$REDIS_PORT" INFO memory | sed -nE 's/^used_memory_rss_human:(.*)\r$/\1/p')
stop "$REDIS_PID" redis-server; REDIS_PID=

# ---- 5. wrk against the HTTP endpoints -----------------------------------------------------
wrk_run() { # wrk_run PORT OUTFILE: prints its summary line
    BENCH_KEYS=$KEYS wrk -t2 -c50 -d"${WRK_SECONDS}s" --latency -s scripts/bench_serve.lua \
        "http://$HOST:$1" >"$2" 2>&1 || { cat "$2" >&2; die "wrk failed"; }
    grep '^wrk_summary:' "$2" || { cat "$2" >&2; die "wrk printed no summary"; }
}
wrk_line=$(wrk_run "$HTTP_PORT" "$OUT/wrk.txt")
echo "  precast serve: $wrk_line"
wrk_pre=$(wrk_run "$PRE_HTTP_PORT" "$OUT/wrk-preload.txt")
echo "  precast serve --preload: $wrk_pre"
stop "$SERVE_PID" "precast serve"; SERVE_PID=
stop "$PRE_PID" "precast serve --preload"; PRE_PID=

# ---- 6. side by side -------------------------------------------------------------------------
field() { echo "$1" | awk -v i="$2" '{ print $i }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "bench-serve: $KEYS keys key:000000000000..key:000000999999, values as the table stores them"
echo "(JSON, top-1 softmax), loopback, servers and load generators together on $(nproc) cores;"
echo "load average before the run $LOAD_START, after it $(cut -d' ' -f1-3 /proc/loadavg)"
echo
threads=${SERVE_THREADS:-$(nproc) (its default)}
echo "precast serve --threads $threads; redis-server: one thread.  --preload: RSS $pre_rss;"
echo "redis-server: used_memory_rss $redis_mem.  cpu_s/1M: the server's CPU seconds (user +"
echo "system) per million requests during its run."
echo
fmt='  %-22s %-7s %13s %13s %13s %13s %13s\n'
printf "$fmt" "redis-benchmark -t get" "" redis-server "precast serve" "serve/redis" "--preload" "preload/redis"
printf "$fmt" "-c 50 -n $REQUESTS" "" "" "(LevelDB)" "" "(memory)" ""
printf "$fmt" "better of 2 runs" "" "" "" "" "" ""
for P in 1 16; do
    r=${redis[$P]} s=${serve[$P]} q=${pre[$P]}
    for i in 1 2 3 4; do
        label=""; [ $i = 1 ] && label="GET -P $P"
        unit=$(echo "req/s p50_ms p99_ms cpu_s/1M" | awk -v i=$i '{ print $i }')
        printf "$fmt" "$label" "$unit" "$(field "$r" $i)" "$(field "$s" $i)" \
            "$(ratio "$(field "$s" $i)" "$(field "$r" $i)")" "$(field "$q" $i)" "$(ratio "$(field "$q" $i)" "$(field "$r" $i)")"
    done
done
echo
printf '  %-52s %12s %12s %12s\n' "HTTP GET /v1/predictions/KEY, wrk -t2 -c50 ${WRK_SECONDS}s" req/s "p50 ms" "p99 ms"
for line in "precast serve|$wrk_line" "precast serve --preload|$wrk_pre"; do
    echo "${line#*|}" | awk -v name="${line%%|*}" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        printf "  %-52s %12s %12s %12s\n", name " (" f["non2xx"] " non-2xx, " f["errors"] " socket errors)", f["req_per_s"], f["p50_ms"], f["p99_ms"] }'
done
echo
printf '  %-52s %12s %12s %12s\n' "in-process precast_table_get, $GETS random gets, warm" gets/s "p50 us" "p99 us"
printf '%s\n' "${inproc_rows[@]}"
echo
# The targets, from this run's figures (nothing is asserted: the run exits 0 either way).
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b ? "met" : "NOT met") }'; }
echo "targets (issue 7, lookups):"
for P in 1 16; do
    r=$(field "${redis[$P]}" 1) s=$(field "${serve[$P]}" 1) q=$(field "${pre[$P]}" 1)
    printf '  GET -P %-2s >= 1.0x redis-server: precast serve %s (%s), --preload %s (%s)\n' "$P" \
        "$(ratio "$s" "$r")x" "$(verdict "$(ratio "$s" "$r")" 1)" "$(ratio "$q" "$r")x" "$(verdict "$(ratio "$q" "$r")" 1)"
done
p99=$(echo "${inproc_rows[0]}" | awk '{ print $NF }')
printf '  in-process precast_table_get p99 <= 10 us (1 thread, warm): %s us (%s)\n' "$p99" \
    "$(awk -v p="$p99" 'BEGIN { print (p <= 10 ? "met" : "NOT met") }')"
