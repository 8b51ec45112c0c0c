#!/bin/bash
# Drill 3: power loss. A run (and a rollback, and a retention) executes under
# tests/drills/powerloss_shim.so, which journals every fsync of a file or directory under the
# table with a copy of what it made durable; tests/drills/powerloss_check.py then rebuilds the
# durable table as a power cut after each journaled fsync (and before the first) would leave
# it — directories as last fsynced, files as last fsynced, anything else lost — and runs
# `precast verify` on each. Every crash point counts as a trial: CURRENT must name a version
# that verifies, either the one before or the new one (whose checksum must equal a fault-free
# run's).
#   usage: powerloss.sh [RUNS]     (default 1 journaled run, plus a rollback and a --keep 0)
DRILL=powerloss
. "$(dirname "$0")/lib.sh"
RUNS=${1:-1}
SHIM="$BUILD/drills/powerloss_shim.so"
[ -f "$SHIM" ] || { not_ok "powerloss" "$SHIM missing: make $BUILD/drills/powerloss_shim.so"; exit 1; }
cd "$TMP"
setup_data 3000
write_job job.ini small_softmax.onnx a.csv t "keep_versions = 1"
declare -A REF
for v in 1 2; do
    run_np 2 run job.ini --set output.table=ref$v --set output.top_k=$v || { not_ok "reference run" "$(cat "$TMP/err")"; exit 1; }
    REF[$v]=$(manifest_field ref$v "$(current_of ref$v)" checksum)
done
mkdir -p t store work
T=$(cd t && pwd -P)
events=0 states=0

# journaled NAME REF ARGS...: runs ARGS under the shim, then checks every crash point.
journaled() {
    local name=$1 ref=$2; shift 2
    local before after
    before=$(current_of t); before=${before:-none}
    sync
    rm -rf store/* journal
    "$PY" "$DRILLS/powerloss_check.py" baseline "$T" "$TMP/store" base.json
    PL_ROOT=$T PL_JOURNAL=$TMP/journal PL_STORE=$TMP/store LD_PRELOAD=$SHIM "$@" >cmd.out 2>cmd.err \
        || { trial_fail "$name: the journaled command failed: $(head -c 300 cmd.err)"; return; }
    after=$(current_of t)
    "$PY" "$DRILLS/powerloss_check.py" check base.json journal "$PRECAST" "$TMP/work" "$before,$after" "$ref" >check.json
    local r
    r=$("$PY" -c '
import json, sys
d = json.load(open("check.json"))
print(d["points"], d["points"] - d["ok"], d["events"], d["states"], json.dumps(d["failures"])[:600], json.dumps(d["current"]))')
    set -- $r
    local points=$1 bad=$2
    events=$((events + $3)); states=$((states + $4))
    TRIALS=$((TRIALS + points - bad))
    echo "# $name: $3 durable events, $points crash points, $4 distinct states, CURRENT: ${*:6}"
    if [ "$bad" != 0 ]; then
        for _ in $(seq "$bad"); do trial_fail "$name: $5"; done
        cp journal "journal-$name"; cp -a store "store-$name"; cp base.json "base-$name.json"
    fi
}

journaled first-run "${REF[1]}" mpirun --oversubscribe -x LD_PRELOAD -x PL_ROOT -x PL_JOURNAL -x PL_STORE \
    -np 2 "$PRECAST" run job.ini --set output.top_k=1
k=1
for r in $(seq "$RUNS"); do
    k=$((3 - k))
    journaled "run-$r" "${REF[$k]}" mpirun --oversubscribe -x LD_PRELOAD -x PL_ROOT -x PL_JOURNAL -x PL_STORE \
        -np 2 "$PRECAST" run job.ini --set output.top_k=$k
done
older=$(ls -d t/v* | sort | head -1); older=$(basename "$older")
journaled rollback "" "$PRECAST" versions t --rollback "$older"
journaled keep-0 "" "$PRECAST" versions t --keep 0
# Self-test: the same run with the fsyncs of the shards' table files left out of the journal
# (as if precast did not make them) must leave crash points where CURRENT does not verify.
sync; rm -rf store/* journal
"$PY" "$DRILLS/powerloss_check.py" baseline "$T" "$TMP/store" base.json
before=$(current_of t)
k=$((3 - k))
PL_IGNORE=.ldb PL_ROOT=$T PL_JOURNAL=$TMP/journal PL_STORE=$TMP/store LD_PRELOAD=$SHIM mpirun --oversubscribe \
    -x LD_PRELOAD -x PL_ROOT -x PL_JOURNAL -x PL_STORE -x PL_IGNORE -np 2 "$PRECAST" run job.ini --set output.top_k=$k >cmd.out 2>&1
"$PY" "$DRILLS/powerloss_check.py" check base.json journal "$PRECAST" "$TMP/work" "$before,$(current_of t)" "${REF[$k]}" >check.json
grep -q '"why": "CURRENT .*verify exit 74' check.json \
    && ok "powerloss self-test: with the .ldb fsyncs left out of the journal, the checker finds crash points where CURRENT fails verify" \
    || not_ok "powerloss self-test" "the checker found nothing: $(head -c 300 check.json)"
drill_end "$((RUNS + 1)) runs, a rollback and a --keep 0 journaled: $events durable events, $states distinct durable states verified"
