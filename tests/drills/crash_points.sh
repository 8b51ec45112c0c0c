#!/bin/bash
# Drill 1: SIGKILL at every named point of a run (PRECAST_TEST_CRASH=POINT:RANK).
#   usage: crash_points.sh [ROUNDS]   (ROUNDS passes over every point, default 1; the killed
#          rank alternates between 0 and the last rank where a point is reached by every rank)
# Points: mid_map, after_map, mid_shuffle, mid_write, after_write (every shard written and
# scanned), before_publish (manifest in staging), before_current (version renamed into place,
# CURRENT not yet replaced), mid_retention (published; old versions moved to .trash-*, not
# yet removed).
# Each trial: the killed run exits non-zero; every version dir in the table passes
# `precast verify` (no half version visible under a version name); CURRENT still names the
# previous version and `precast get` answers with its values — except mid_retention, which is
# past the publish: there CURRENT is the new version and its checksum is the fault-free
# run's; then the next, unhurt run publishes a version whose MANIFEST checksum equals a
# fault-free run's, and leaves no staging, trash or spill files.
DRILL=crash_points
. "$(dirname "$0")/lib.sh"
ROUNDS=${1:-1}
NP=${NP:-2}
cd "$TMP"
setup_data 10
make_parts 6 1000 40
# Variant A: top_k 1; variant B: top_k 2. Fault-free references in their own tables.
declare -A REF
for v in 1 2; do
    run_np "$NP" run job.ini --set output.table=ref$v --set output.top_k=$v || { not_ok "reference run" "$(cat "$TMP/err")"; exit 1; }
    REF[$v]=$(manifest_field ref$v "$(current_of ref$v)" checksum)
done
for v in 1 2 1; do run_np "$NP" run job.ini --set output.top_k=$v || { not_ok "setup run" "$(cat "$TMP/err")"; exit 1; }; done
cur_k=1

# all_versions_verify TABLE: every v* dir passes precast verify; prints the failures.
all_versions_verify() {
    local d bad=0
    for d in "$1"/v*; do
        [ -d "$d" ] || continue
        if ! "$PRECAST" verify "$1" "$(basename "$d")" >verify.out 2>&1; then
            echo "$(basename "$d"): $(head -c 300 verify.out)"
            bad=1
        fi
    done
    return $bad
}

POINTS="mid_map after_map mid_shuffle mid_write after_write before_publish before_current mid_retention"
for round in $(seq "$ROUNDS"); do
    for point in $POINTS; do
        rank=0
        case $point in mid_map|after_map|mid_shuffle|mid_write|after_write)
            [ $((round % 2)) = 1 ] && rank=$((NP - 1)) ;; esac
        new_k=$((3 - cur_k))
        before=$(current_of t)
        values t sample.txt >before.txt
        PRECAST_TEST_CRASH=$point:$rank run_np "$NP" run job.ini --set output.top_k=$new_k
        rc=$?
        cp "$TMP/err" killed.err
        after=$(current_of t)
        why=""
        if [ $rc = 0 ]; then
            why="the run was not killed at $point:$rank"
        elif ! bad=$(all_versions_verify t); then
            why="a version dir fails verify after a kill at $point:$rank: $bad"
        elif [ "$point" = mid_retention ]; then
            if [ "$after" = "$before" ]; then why="mid_retention: CURRENT still $before, the publish was lost"
            elif [ "$(manifest_field t "$after" checksum)" != "${REF[$new_k]}" ]; then why="mid_retention: CURRENT $after checksum differs from the fault-free run's"
            elif [ ! -d "t/$before" ]; then why="mid_retention: the previous version $before was removed"
            fi
        elif [ "$after" != "$before" ]; then
            why="CURRENT changed from $before to $after after a kill at $point:$rank"
        elif ! values t sample.txt | cmp -s - before.txt; then
            why="precast get answers differently after a kill at $point:$rank"
        fi
        # The next run, unhurt.
        if [ -z "$why" ]; then
            if ! run_np "$NP" run job.ini --set output.top_k=$new_k; then
                why="the run after a kill at $point:$rank failed: $(head -c 300 "$TMP/err")"
            else
                now=$(current_of t)
                if [ "$now" = "$after" ]; then why="the run after $point:$rank did not publish"
                elif [ "$(manifest_field t "$now" checksum)" != "${REF[$new_k]}" ]; then
                    why="the run after $point:$rank published checksum $(manifest_field t "$now" checksum), the fault-free run ${REF[$new_k]}"
                elif ! "$PRECAST" verify t >verify.out 2>&1; then why="verify after $point:$rank: $(cat verify.out)"
                elif ls -d t/.staging-* t/.trash-* >/dev/null 2>&1; then why="staging or trash left after the rerun: $(ls -a t | tr '\n' ' ')"
                elif [ -n "$(ls spill)" ]; then why="spill files left after the rerun: $(ls spill | head -3)"
                fi
                cur_k=$new_k
            fi
        fi
        if [ -z "$why" ]; then
            trial_ok
            echo "# $point:$rank (exit $rc): previous version intact, rerun checksum ${REF[$new_k]}"
        else
            trial_fail "$why (reproduce: PRECAST_TEST_CRASH=$point:$rank mpirun -np $NP bin/precast run JOB)"
        fi
    done
done
drill_end "points: $(echo $POINTS | wc -w), -np $NP"
