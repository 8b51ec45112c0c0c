# Shared helpers of the reliability drills (tests/drills/*.sh, docs/RELIABILITY.md): sourced.
# On top of tests/integration/lib.sh (TMP, run_np, make_csv, write_job, ok / not_ok), each
# drill counts trials and failures and ends with one line
#   drill NAME: trials=T failures=F [notes]
# which is also appended to $DRILL_RESULTS when set (make drills collects them for the table).
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
DRILLS="$ROOT/tests/drills"
# A private copy of the binary: other sessions rebuilding build/bin/precast mid-drill (the
# linker rewrites it) must not show up as failed trials.
cp "$PRECAST" "$TMP/precast.bin" && PRECAST="$TMP/precast.bin"
TRIALS=0
FAILURES=0
FAIL_LOG="$TMP/failures.txt"
: >"$FAIL_LOG"

# trial_ok / trial_fail WHY: one trial's outcome; a failure prints "not ok" with its reproducer
# context, so that make check / make drills count it.
trial_ok() { TRIALS=$((TRIALS + 1)); }
trial_fail() {
    TRIALS=$((TRIALS + 1))
    FAILURES=$((FAILURES + 1))
    not_ok "$DRILL trial $TRIALS" "$1"
    echo "trial $TRIALS: $1" >>"$FAIL_LOG"
}
# drill_end [NOTES]: the summary line (and "ok" when nothing failed).
drill_end() {
    local line="drill $DRILL: trials=$TRIALS failures=$FAILURES${1:+ $1}"
    [ "$FAILURES" = 0 ] && ok "$DRILL: $TRIALS trials, 0 failures${1:+ ($1)}"
    echo "$line"
    if [ -n "${DRILL_RESULTS:-}" ]; then echo "$line" >>"$DRILL_RESULTS"; fi
    # keep the failing trials' tables for a post-mortem when asked
    if [ "$FAILURES" != 0 ] && [ -n "${DRILL_KEEP:-}" ]; then
        mkdir -p "$DRILL_KEEP" && cp -a "$TMP" "$DRILL_KEEP/$DRILL" && echo "kept in $DRILL_KEEP/$DRILL"
    fi
}

# manifest_field TABLE VERSION FIELD: a top-level field of the version's MANIFEST.json.
manifest_field() {
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]+"/"+sys.argv[2]+"/MANIFEST.json"))[sys.argv[3]])' "$1" "$2" "$3" 2>/dev/null
}
current_of() { cat "$1/CURRENT" 2>/dev/null; }

# values TABLE KEYFILE: every key's answer (precast get --format tsv), to compare versions.
values() { "$PRECAST" get --format tsv "$1" - <"$2" 2>&1; }

# setup_data ROWS: the job's model and input in $TMP (small_softmax, 4 features), keys.txt
# with every id; two variants of the job differ in top_k, so that every value says which
# version it came from ("top" holds 1 or 2 pairs).
setup_data() {
    cp "$FIX/small_softmax.onnx" "$TMP/"
    make_csv "$TMP/a.csv" "$1" 4 13
    tail -n +2 "$TMP/a.csv" | cut -d, -f1 >"$TMP/keys.txt"
    shuf -n 50 --random-source=<(yes) "$TMP/keys.txt" >"$TMP/sample.txt"
}

# pids_under PID: the process and its descendants (ours: mpirun, its ranks).
pids_under() {
    local p=$1 c
    echo "$p"
    for c in $(pgrep -P "$p" 2>/dev/null); do pids_under "$c"; done
}

# make_parts N ROWS SEED: part0..N-1.csv of ROWS rows each (seeds SEED, SEED+1, ...), ids
# unique across parts (id<k>-<part>); sample.txt with 60 of those ids; a spill dir; and
# job.ini over part*.csv into t that spills (memory_mb = 1), cuts 1 MiB segments and keeps
# one old version.  The kill drills' common input.
make_parts() {
    local n=$1 rows=$2 seed=$3 i
    for ((i = 0; i < n; i++)); do
        make_csv "part$i.csv" "$rows" 4 $((seed + i))
        sed -i "2,\$s/^id\([0-9]*\),/id\1-$i,/" "part$i.csv"
    done
    tail -q -n +2 part*.csv | cut -d, -f1 | shuf -n 60 --random-source=<(yes) >sample.txt
    mkdir -p spill
    write_job job.ini small_softmax.onnx "part*.csv" t "keep_versions = 1" "[run]" "memory_mb = 1" \
        "spill_dir = spill" "split_mb = 1"
}
