#!/bin/bash
# Drill 5: flip a byte at a random offset of a random file of a published version's shards.
#   usage: corruption.sh [TRIALS] [SEED]     (default 10)
# Even trials pick a random .ldb (table) file, odd ones any file of a shard (CURRENT, MANIFEST-*,
# LOG, .ldb). Each trial works on a fresh copy of one pristine table (2 shards, 3,000 rows). Outcomes:
#   detected  `precast verify` exits 74 naming the version's path;
#   harmless  verify exits 0 AND `precast get` of every key equals the pristine value (the flip
#             hit bytes no reader depends on: LevelDB's LOG, padding, an unused field);
#   failure   verify exits with anything else, or passes while a value differs.
# Then `precast serve` on the damaged copy (a fresh server each trial): either it refuses to
# start with exit 74 naming the damage, or it answers every key (RESP pipelined GETs, HTTP
# batchGet, HTTP GET; tests/drills/check_server.py) with the pristine value or an error
# (503 / -ERR) — never another value, never "not found" — and stays up, then exits 0 on SIGTERM.
DRILL=corruption
. "$(dirname "$0")/lib.sh"
N=${1:-10}
SEED=${2:-$RANDOM}
RANDOM=$SEED
cd "$TMP"
setup_data 3000
write_job job.ini small_softmax.onnx a.csv pristine "top_k = 2"
run_np 2 run job.ini || { not_ok "run" "$(cat "$TMP/err")"; exit 1; }
V=$(current_of pristine)
values pristine keys.txt >orig.tsv
detected=0 harmless=0 served_ok=0 served_unavail=0 refused=0
declare -A BYFILE
for trial in $(seq "$N"); do
    rm -rf work && cp -a pristine work
    mapfile -t files < <(find "work/$V" -path '*/shard-*' -type f -size +0 | sort)
    # Half the trials hit a table file (.ldb: where the bytes are), half any file of a shard.
    if [ $((trial % 2)) = 0 ]; then mapfile -t files < <(printf '%s\n' "${files[@]}" | grep '\.ldb$'); fi
    f=${files[$((RANDOM % ${#files[@]}))]}
    size=$(stat -c %s "$f")
    off=$(((RANDOM * 32768 + RANDOM) % size))
    mask=$((1 + RANDOM % 255))
    "$PY" -c '
import sys
p, off, mask = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ mask]))' "$f" "$off" "$mask"
    rel=${f#work/$V/}
    kind=$(basename "$rel" | sed -E 's/^[0-9]+\.//; s/-[0-9]+$//')
    what="flip 0x$(printf %02x $mask) at $off of $rel ($size bytes)"
    why=""
    "$PRECAST" verify work >verify.out 2>&1
    vrc=$?
    if [ $vrc = 74 ]; then
        detected=$((detected + 1)); outcome=detected
        BYFILE[$kind]="${BYFILE[$kind]:-0 0}"; set -- ${BYFILE[$kind]}; BYFILE[$kind]="$(($1 + 1)) $2"
    elif [ $vrc = 0 ]; then
        if values work keys.txt | cmp -s - orig.tsv; then
            harmless=$((harmless + 1)); outcome=harmless
            BYFILE[$kind]="${BYFILE[$kind]:-0 0}"; set -- ${BYFILE[$kind]}; BYFILE[$kind]="$1 $(($2 + 1))"
        else
            why="verify passes but precast get answers differently: $(values work keys.txt | diff - orig.tsv | head -3)"
        fi
    else
        why="verify exit $vrc (want 74 or 0): $(head -c 200 verify.out)"
    fi
    # The server on the damaged copy.
    if [ -z "$why" ]; then
        "$PRECAST" serve work --http 127.0.0.1:0 --resp 127.0.0.1:0 --threads 2 2>serve.log &
        spid=$!
        # Up to 30 s to listen (a loaded machine); a server that exited — also one not reaped
        # yet (a zombie still answers kill -0) — refused to start.
        state=""
        for _ in $(seq 600); do
            grep -q "resp listening" serve.log && break
            state=$(awk '/^State:/ {print $2}' /proc/$spid/status 2>/dev/null)
            [ -z "$state" ] || [ "$state" = Z ] && break
            sleep 0.05
        done
        if ! grep -q "resp listening" serve.log; then
            if [ -n "$state" ] && [ "$state" != Z ]; then kill -9 $spid; fi
            wait $spid; src=$?
            if [ $src = 74 ]; then refused=$((refused + 1))
            else why="serve exited $src at start (want 74 or serving): $(head -c 200 serve.log)"; fi
        else
            hp=$(sed -n 's/.*http listening on 127.0.0.1:\([0-9]*\).*/\1/p' serve.log)
            rp=$(sed -n 's/.*resp listening on 127.0.0.1:\([0-9]*\).*/\1/p' serve.log)
            if "$PY" "$DRILLS/check_server.py" "$hp" "$rp" orig.tsv 50 >client.json 2>&1; then
                if grep -q '"unavailable": 0,' client.json; then served_ok=$((served_ok + 1)); else served_unavail=$((served_unavail + 1)); fi
            else
                why="server: $(head -c 400 client.json)"
            fi
            if ! kill -0 $spid 2>/dev/null; then
                wait $spid; why="${why:+$why; }the server died (exit $?): $(tail -c 300 serve.log)"
            else
                kill -TERM $spid; wait $spid; src=$?
                [ $src = 0 ] || why="${why:+$why; }serve exit $src after SIGTERM"
            fi
        fi
    fi
    if [ -z "$why" ]; then trial_ok; echo "# $what: $outcome"
    else
        mkdir -p "$TMP/bad$trial" && cp -a work "$TMP/bad$trial/"
        trial_fail "$what: $why (seed $SEED)"
    fi
done
byfile=""
for k in "${!BYFILE[@]}"; do set -- ${BYFILE[$k]}; byfile="$byfile $k $1/$2;"; done
drill_end "seed $SEED: $detected detected by verify, $harmless harmless (every value equal); server: $refused refused to start (74), $served_unavail answered with 503/-ERR for some keys, $served_ok answered every key; detected/harmless by file:$byfile"
