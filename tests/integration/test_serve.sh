#!/bin/bash
# precast serve: HTTP/JSON and Redis-protocol lookups against a real table, malformed
# requests of every kind, limits, hot reload under load (no failed request, no batch mixing
# versions), readers beside the server, and a draining SIGTERM.
. "$(dirname "$0")/lib.sh"
cd "$TMP" || exit 1
CLIENT="$PY $ROOT/tests/integration/serve_client.py"
cp "$FIX/small_softmax.onnx" .
make_csv a.csv 500 4 3
write_job job.ini small_softmax.onnx a.csv t "top_k = 2"
run_np 2 run job.ini || { not_ok "serve: run" "$(cat "$TMP/err")"; exit 1; }
tail -n +2 a.csv | cut -d, -f1 >keys.txt
k1=$(sed -n 1p keys.txt); k2=$(sed -n 2p keys.txt)

# start_server LOG ARGS...: starts precast serve on free ports; sets SPID, HPORT, RPORT.
start_server() {
    local log=$1; shift
    "$PRECAST" serve "${SERVE_TABLE:-t}" --http 127.0.0.1:0 --resp 127.0.0.1:0 "$@" 2>"$log" &
    SPID=$!
    for _ in $(seq 100); do grep -q "resp listening" "$log" && break; sleep 0.1; done
    HPORT=$(sed -n 's/.*http listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$log")
    RPORT=$(sed -n 's/.*resp listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$log")
    [ -n "$HPORT" ] && [ -n "$RPORT" ]
}
http() { $CLIENT http "$HPORT" "$@"; }
# resp_send 'BYTES': raw bytes (printf %b escapes) to the RESP port; prints the reply's repr.
resp_send() { $CLIENT resp "$RPORT" "$(printf '%b' "$1" | od -An -tx1 | tr -d ' \n')"; }
rcli() { redis-cli -p "$RPORT" "$@"; }

if start_server serve.log; then ok "serve: listening on http $HPORT, resp $RPORT"
else not_ok "serve: start" "$(cat serve.log)"; exit 1; fi
version=$(cat t/CURRENT)

# ---- HTTP ----
want1=$("$PRECAST" get --format raw t "$k1")
got=$(http GET "/v1/predictions/$k1")
[ "$got" = "200 {\"key\": \"$k1\", \"version\": \"$version\", \"value\": $want1}" ] \
    && ok "http: GET answers what precast get answers, with the version" || not_ok "http GET" "$got"
got=$(http GET /v1/predictions/nope)
[ "$got" = "404 {\"error\": \"not found\", \"key\": \"nope\", \"version\": \"$version\"}" ] \
    && ok "http: a miss is 404 with a JSON body" || not_ok "http miss" "$got"
got=$(http POST '/v1/predictions:batchGet' "[\"$k1\", \"nope\", \"$k2\"]")
echo "${got#200 }" | $PY -c "
import json, sys
d = json.load(sys.stdin)
r = d['results']
assert d['version'] == '$version', d
assert [x['key'] for x in r] == ['$k1', 'nope', '$k2'], r
assert [x['found'] for x in r] == [True, False, True], r
assert json.dumps(r[0]['value'], separators=(',', ':')) == json.dumps(json.loads('''$want1'''), separators=(',', ':'))
" 2>pyerr && [ "${got%% *}" = 200 ] && ok "http: batchGet of a list: answers in order, misses marked" \
    || not_ok "http batchGet" "$got $(cat pyerr)"
got=$(http POST '/v1/predictions:batchGet' "{\"keys\": [\"$k2\"]}")
case "$got" in "200 {\"version\": \"$version\", \"results\": [{\"key\": \"$k2\", \"found\": true, \"value\": "*) ok "http: batchGet of {\"keys\": [...]}" ;;
    *) not_ok "http batchGet object" "$got" ;; esac
got=$(http GET /healthz)
case "$got" in "200 {\"status\": \"ok\", \"version\": \"$version\", \"rows\": 500,"*) ok "http: /healthz names the version" ;;
    *) not_ok "healthz" "$got" ;; esac
# Each malformed request: its status, and a JSON error body.
while IFS='|' read -r want method path body; do
    got=$(http "$method" "$path" ${body:+"$body"})
    status=${got%% *}
    if [ "$status" = "$want" ] && echo "${got#* }" | $PY -c "import json,sys; assert 'error' in json.load(sys.stdin)" 2>/dev/null; then
        ok "http: $method $path ${body:0:24} -> $want with a JSON error"
    else
        not_ok "http malformed $method $path" "want $want, got $got"
    fi
done <<'CASES'
400|POST|/v1/predictions:batchGet|[1, 2]
400|POST|/v1/predictions:batchGet|{"keys": "a"}
400|POST|/v1/predictions:batchGet|{"nokeys": []}
400|POST|/v1/predictions:batchGet|["a",
400|POST|/v1/predictions:batchGet|["a"] trailing
400|POST|/v1/predictions:batchGet|
400|POST|/v1/predictions:batchGet|[""]
400|GET|/v1/predictions/|
404|GET|/v2/other|
405|DELETE|/v1/predictions/x|
405|GET|/v1/predictions:batchGet|
405|PUT|/healthz|
CASES
# Keys the URL carries escaped, non-UTF-8 included: still valid JSON back.
got=$(http GET '/v1/predictions/a%20b%FF%22')
echo "${got#404 }" | $PY -c "import json,sys; d=json.load(sys.stdin); assert d['key']=='a b\\\\u00ff\"'.encode().decode('unicode_escape') or d['key'].startswith('a b'), d" 2>pyerr \
    && [ "${got%% *}" = 404 ] && ok "http: an escaped non-UTF-8 key is a 404 with valid JSON" || not_ok "http non-utf8" "$got $(cat pyerr)"
# The connection survives a bad request: curl reuses it for the next one.
curl -sv "http://127.0.0.1:$HPORT/v1/predictions/" "http://127.0.0.1:$HPORT/v1/predictions/$k1" >curl.out 2>curl.err
grep -q "Re-using existing connection" curl.err && grep -q "\"key\": \"$k1\"" curl.out \
    && ok "http: the connection survives a 400 (reused for the next request)" || not_ok "http keep-alive" "$(grep -E '^[<*]' curl.err | head -20)"
got=$(curl -s "http://127.0.0.1:$HPORT/metrics")
echo "$got" | grep -q '^precast_requests_total{protocol="http"} [1-9]' \
    && echo "$got" | grep -q '^precast_misses_total{protocol="http"} [1-9]' \
    && echo "$got" | grep -q "^precast_version_info{version=\"$version\"} 1" \
    && echo "$got" | grep -q '^precast_request_duration_seconds_bucket{protocol="http",le="+Inf"} [1-9]' \
    && echo "$got" | grep -q '^precast_version_age_seconds [0-9]' \
    && ok "http: /metrics has requests, misses, latency histogram, version and its age" \
    || not_ok "metrics" "$(echo "$got" | head -30)"

# ---- Redis protocol ----
[ "$(rcli GET "$k1")" = "$want1" ] && ok "resp: redis-cli GET answers the stored value" || not_ok "resp GET" "$(rcli GET "$k1")"
got=$(rcli MGET "$k1" nope "$k2" | tr '\n' '|')
want2=$("$PRECAST" get --format raw t "$k2")
[ "$got" = "$want1||$want2|" ] && ok "resp: MGET with a miss (nil)" || not_ok "resp MGET" "$got"
[ "$(rcli EXISTS "$k1" nope "$k2")" = 2 ] && ok "resp: EXISTS counts the present keys" || not_ok "resp EXISTS" "$(rcli EXISTS "$k1" nope "$k2")"
[ "$(rcli PING)" = PONG ] && [ "$(rcli DBSIZE)" = 500 ] && rcli INFO | grep -q "table_version:$version" \
    && ok "resp: PING, DBSIZE, INFO" || not_ok "resp PING/DBSIZE/INFO" "$(rcli INFO)"
got=$(rcli SET "$k1" x 2>&1; rcli DEL "$k1" 2>&1; rcli FLUSHALL 2>&1)
[ "$(echo "$got" | grep -c '^READONLY')" = 3 ] && [ "$(rcli GET "$k1")" = "$want1" ] \
    && ok "resp: SET, DEL, FLUSHALL get READONLY errors and change nothing" || not_ok "resp writes" "$got"
got=$(rcli NOSUCHCMD a 2>&1)
case "$got" in "ERR unknown command 'NOSUCHCMD'"*) ok "resp: unknown command error" ;; *) not_ok "resp unknown" "$got" ;; esac
got=$(resp_send 'PING\r\n')
[ "$got" = "b'+PONG\\r\\n'" ] && ok "resp: inline PING" || not_ok "inline" "$got"
payload=""; for _ in $(seq 100); do payload+="*2\r\n\$3\r\nGET\r\n\$${#k1}\r\n$k1\r\n"; done
got=$(resp_send "$payload" | $PY -c "import sys, ast; b=ast.literal_eval(sys.stdin.read()); print(b.count(b'\$'))")
[ "$got" = 100 ] && ok "resp: 100 pipelined GETs in one write, 100 replies" || not_ok "pipelined" "$got"
got=$(resp_send '*2\r\n$3\r\nGET\r\n$3\r\n\xff\xfe\x00\r\n')
[ "$got" = "b'\$-1\\r\\n'" ] && ok "resp: a binary, non-UTF-8 key is a miss" || not_ok "binary key" "$got"
while IFS='|' read -r name payload; do
    got=$(resp_send "$payload")
    case "$got" in "b'-ERR Protocol error"*|'b"-ERR Protocol error'*) ok "resp: $name -> protocol error, connection closed" ;;
        *) not_ok "resp $name" "$got" ;; esac
done <<'CASES'
huge bulk length|*2\r\n$3\r\nGET\r\n$99999999999\r\n
huge multibulk count|*2147483648\r\n
negative bulk length|*2\r\n$3\r\nGET\r\n$-5\r\n
non-numeric count|*x\r\n
bulk without $|*2\r\n+GET\r\n
missing CRLF after a bulk|*2\r\n$3\r\nGETxx$1\r\na\r\n
CASES
got=$($PY - "$RPORT" "$k1" <<'PYEOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
k = sys.argv[2].encode()
cmd = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k)
for b in cmd:                      # one byte at a time
    s.sendall(bytes([b])); time.sleep(0.002)
first = s.recv(65536)
s.sendall(cmd + cmd[:7]); time.sleep(0.1); s.sendall(cmd[7:])   # a pipeline split mid-command
second = b""
while second.count(b"top") < 2:
    second += s.recv(65536)
print(first.count(b"top"), second.count(b"top"))
PYEOF
)
[ "$got" = "1 2" ] && ok "resp: a command sent byte by byte, and a pipeline split mid-command, are answered" || not_ok "trickle" "$got"
got=$(resp_send '*3\r\n$3\r\nGET\r\n$1\r\na')
[ "$got" = "b''" ] && [ "$(rcli PING)" = PONG ] && ok "resp: a truncated array gets no reply; the server lives on" || not_ok "truncated" "$got"

# ---- readers beside the server ----
"$PRECAST" get --format tsv t "$k1" >get.out 2>get.err && grep -q "^$k1	" get.out \
    && ok "precast get works while the server holds the version (no LevelDB lock)" || not_ok "get beside server" "$(cat get.err)"
n=$(cat keys.txt keys.txt keys.txt | "$PRECAST" get --format raw t - | grep -c top)
[ "$n" = 1500 ] && ok "precast get -: 1500 keys from stdin in batches, all found" || not_ok "get stdin" "$n"

# ---- hot reload under load ----
$CLIENT reload "$HPORT" "$RPORT" keys.txt 6 reload.json &
CPID=$!
sleep 1.5
write_job job.ini small_softmax.onnx a.csv t "top_k = 3"
run_np 2 run job.ini || not_ok "serve: second run" "$(cat "$TMP/err")"
wait $CPID
v2=$(cat t/CURRENT)
$PY - "$version" "$v2" <<'PYEOF' >reload.out 2>&1 && ok "reload under load: $(cat reload.out)" || not_ok "reload under load" "$(cat reload.out)"
import json, sys
s = json.load(open("reload.json"))
old, new = sys.argv[1], sys.argv[2]
assert s["batches"] > 20, s
assert not s["failures"], s["failures"][:5]
assert s["mixed"] == 0, s
assert s["versions"] == [old, new], s["versions"]
assert s["tops"] == [2, 3], s["tops"]
print("%d batches over HTTP and RESP, 0 failed, none mixed, %s -> %s" % (s["batches"], old, new))
PYEOF
grep -q "now serving version $v2" serve.log && ok "the server logs the switch to $v2" || not_ok "reload log" "$(cat serve.log)"
views=$(ls -d "${TMPDIR:-/tmp}"/precast-view-"$SPID"-* 2>/dev/null | wc -l)
[ "$views" = 2 ] && ok "after the reload the server holds one version (2 shard views), the old one closed" || not_ok "old version closed" "$views views"

# ---- SIGTERM ----
kill -TERM "$SPID"; wait "$SPID"; rc=$?
[ $rc = 0 ] && grep -q "stopped" serve.log && ! curl -s "http://127.0.0.1:$HPORT/healthz" >/dev/null \
    && ok "SIGTERM: drains, exits 0, stops listening" || not_ok "SIGTERM" "rc $rc $(tail -3 serve.log)"
views=$(ls -d "${TMPDIR:-/tmp}"/precast-view-"$SPID"-* 2>/dev/null | wc -l)
[ "$views" = 0 ] && ok "SIGTERM: the read views are removed" || not_ok "views left" "$views"

# ---- --preload: answers from memory, byte for byte LevelDB's; a reload swaps the index ----
if start_server preload.log --preload; then
    cur=$(cat t/CURRENT)
    grep -q "version $cur preloaded: 500 keys" preload.log \
        && ok "preload: the log says the version is in memory (500 keys)" || not_ok "preload log" "$(cat preload.log)"
    "$PRECAST" get --format raw t - <keys.txt >want.txt
    # shellcheck disable=SC2046
    rcli MGET $(cat keys.txt) >got.txt
    cmp -s want.txt got.txt && [ "$(grep -c top got.txt)" = 500 ] \
        && ok "preload: MGET of all 500 keys answers what precast get reads from LevelDB" \
        || not_ok "preload MGET" "$(diff want.txt got.txt | head -5)"
    n=0; for k in $(head -50 keys.txt); do [ "$(rcli GET "$k")" = "$(sed -n "$(grep -n -x "$k" keys.txt | cut -d: -f1)p" want.txt)" ] && n=$((n + 1)); done
    [ "$n" = 50 ] && ok "preload: GET of 50 keys one by one" || not_ok "preload GET" "$n of 50"
    want1=$("$PRECAST" get --format raw t "$k1")  # this version's value
    got=$(rcli MGET nope "$k1" "${k1}x" | tr '\n' '|'); e=$(rcli EXISTS "$k1" nope "$k2" "")
    [ "$got" = "|$want1||" ] && [ "$e" = 2 ] && [ "$(resp_send '*2\r\n$3\r\nGET\r\n$3\r\n\xff\xfe\x00\r\n')" = "b'\$-1\\r\\n'" ] \
        && ok "preload: misses (absent, a key extended, empty, binary) are nil; EXISTS counts" || not_ok "preload misses" "$got | $e"
    got=$(http GET "/v1/predictions/$k1")
    [ "$got" = "200 {\"key\": \"$k1\", \"version\": \"$cur\", \"value\": $want1}" ] \
        && [ "$(http GET /v1/predictions/nope | cut -c1-3)" = 404 ] \
        && ok "preload: HTTP GET answers as from LevelDB, a miss is 404" || not_ok "preload http" "$got"
    curl -s "http://127.0.0.1:$HPORT/metrics" | grep -q '^precast_memory_index_keys 500$' \
        && rcli INFO | grep -q '^memory_index_keys:500' \
        && ok "preload: /metrics and INFO show the 500 keys in memory" || not_ok "preload metrics" "$(curl -s "http://127.0.0.1:$HPORT/metrics" | grep index)"
    $CLIENT reload "$HPORT" "$RPORT" keys.txt 6 preload-reload.json &
    CPID=$!
    sleep 1.5
    write_job job.ini small_softmax.onnx a.csv t "top_k = 1"
    run_np 2 run job.ini || not_ok "serve: third run" "$(cat "$TMP/err")"
    wait $CPID
    v3=$(cat t/CURRENT)
    $PY - "$cur" "$v3" <<'PYEOF' >preload-reload.out 2>&1 && ok "preload: reload under load: $(cat preload-reload.out)" || not_ok "preload reload under load" "$(cat preload-reload.out)"
import json, sys
s = json.load(open("preload-reload.json"))
old, new = sys.argv[1], sys.argv[2]
assert s["batches"] > 20, s
assert not s["failures"], s["failures"][:5]
assert s["mixed"] == 0, s
assert s["versions"] == [old, new], s["versions"]
assert s["tops"] == [3, 1], s["tops"]
print("%d batches, 0 failed, none mixed, %s -> %s" % (s["batches"], old, new))
PYEOF
    "$PRECAST" get --format raw t - <keys.txt >want.txt
    # shellcheck disable=SC2046
    rcli MGET $(cat keys.txt) >got.txt
    grep -q "version $v3 preloaded: 500 keys" preload.log && cmp -s want.txt got.txt \
        && ok "preload: after the reload every key answers from the new version's index" \
        || not_ok "preload after reload" "$(grep precast preload.log | tail -3) $(diff want.txt got.txt | head -3)"
    kill -TERM "$SPID"; wait "$SPID"; rc=$?
    [ $rc = 0 ] && ok "preload: SIGTERM exits 0" || not_ok "preload SIGTERM" "rc $rc"
else
    not_ok "serve --preload" "$(cat preload.log)"
fi
# Over --preload-max-mb: served from LevelDB, and the log and /metrics say so.
make_csv big.csv 12000 4 5
write_job big.ini small_softmax.onnx big.csv big "top_k = 3"
run_np 2 run big.ini || not_ok "serve: big run" "$(cat "$TMP/err")"
if SERVE_TABLE=big start_server cap.log --preload --preload-max-mb 1; then
    kb=$(tail -n +2 big.csv | head -1 | cut -d, -f1)
    grep -q "not preloaded, answering from LevelDB: .*over the cap of 1.0 MiB" cap.log \
        && [ "$(rcli GET "$kb")" = "$("$PRECAST" get --format raw big "$kb")" ] \
        && curl -s "http://127.0.0.1:$HPORT/metrics" | grep -q '^precast_memory_index_keys 0$' \
        && ok "preload: a version over --preload-max-mb is answered from LevelDB, and says so" \
        || not_ok "preload cap" "$(cat cap.log)"
    kill -TERM "$SPID"; wait "$SPID"
else
    not_ok "serve --preload-max-mb" "$(cat cap.log)"
fi

# ---- limits ----
start_server limits.log --max-connections 2 --idle-timeout 1 --max-batch 3 --max-key-bytes 16 --max-body-bytes 100 \
    || { not_ok "serve with limits" "$(cat limits.log)"; exit 1; }
got=$(http POST '/v1/predictions:batchGet' '["a","b","c","d"]'); [ "${got%% *}" = 400 ] && ok "limit: batchGet over --max-batch is 400" || not_ok "max-batch http" "$got"
got=$(http POST '/v1/predictions:batchGet' "[\"$(printf 'a%.0s' $(seq 200))\"]"); [ "${got%% *}" = 413 ] && ok "limit: a body over --max-body-bytes is 413" || not_ok "max-body" "$got"
got=$(http GET "/v1/predictions/$(printf 'k%.0s' $(seq 17))"); [ "${got%% *}" = 400 ] && ok "limit: a key over --max-key-bytes is 400" || not_ok "max-key http" "$got"
got=$(rcli MGET a b c d 2>&1); case "$got" in *"Protocol error"*|*ERR*) ok "limit: MGET over --max-batch is an error" ;; *) not_ok "max-batch resp" "$got" ;; esac
got=$($PY - "$RPORT" <<'PYEOF'
import socket, sys, time
port = int(sys.argv[1])
a = socket.create_connection(("127.0.0.1", port)); b = socket.create_connection(("127.0.0.1", port))
time.sleep(0.2)
c = socket.create_connection(("127.0.0.1", port)); c.settimeout(2)
third = c.recv(100)
a.settimeout(3); t0 = time.time(); idle = a.recv(100); waited = time.time() - t0
print(third.decode().strip(), "|", repr(idle), "%.1f" % waited)
PYEOF
)
case "$got" in "-ERR max number of clients reached | b'' "*) ok "limit: a third connection over --max-connections 2 is refused; idle ones close ($got)" ;;
    *) not_ok "connection limits" "$got" ;; esac
kill -TERM "$SPID"; wait "$SPID"
# ---- a corrupt shard: 503 and a Redis error, never a wrong value ----
cp -r t c
for f in c/"$(cat c/CURRENT)"/shard-*/*.ldb; do
    $PY -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); [b.__setitem__(i, b[i]^0x5a) for i in range(0, len(b)-64)]; open(p,'wb').write(b)" "$f"
done
if SERVE_TABLE=c start_server corrupt.log; then
    got=$(http GET "/v1/predictions/$k1"); r=$(rcli GET "$k1" 2>&1)
    case "$got|$r" in "503 {\"error\": "*"Corruption"*"|ERR "*) ok "a corrupt shard: HTTP 503 and a Redis error naming the corruption" ;;
        *) not_ok "corrupt shard" "$got | $r" ;; esac
    # A batch that reaches the corrupt block fails whole: no partial answer.
    got=$(http POST '/v1/predictions:batchGet' "[\"nope\", \"$k1\", \"$k2\"]"); r=$(rcli MGET nope "$k1" "$k2" 2>&1)
    case "$got|$r" in "503 {\"error\": "*"Corruption"*"|ERR "*) ok "a corrupt shard: batchGet 503 and MGET a Redis error, never part of a batch" ;;
        *) not_ok "corrupt shard batch" "$got | $r" ;; esac
    kill -TERM "$SPID"; wait "$SPID"
else
    not_ok "serve corrupt table" "$(cat corrupt.log)"
fi
"$PRECAST" serve "$TMP/none" 2>none.err; rc=$?
[ $rc = 66 ] && grep -q "none" none.err && ok "serve: a missing table exits 66 naming it" || not_ok "missing table" "rc $rc $(cat none.err)"
"$PRECAST" serve t --http 300.1.1.1:80 2>bad.err; rc=$?
[ $rc = 64 ] && ! grep -q serving bad.err && ok "serve: a bad address is a usage error (64), before the table is opened" || not_ok "bad addr" "rc $rc $(cat bad.err)"
