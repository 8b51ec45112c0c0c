#!/bin/bash
# Drill 2: kill -9 of a random rank, or of mpirun, at a random time of a run.
#   usage: random_kill.sh [TRIALS] [SEED]     (default 5 trials; -np 2 to 4 at random)
# The delay is uniform over [0, 1.3 × a fault-free run's wall time], so kills land in MPI
# start-up, map, shuffle, write, publish and retention, and some runs finish first (counted
# as "finished"). Each trial: CURRENT names a version that passes `precast verify` (and every
# other version dir does too); if CURRENT did not move, `precast get` answers as before; if it
# moved, the new version's checksum equals the fault-free run's; no process of the run is
# left after 20 s; then an unhurt run publishes the fault-free checksum and leaves no
# staging, trash or spill files.
DRILL=random_kill
. "$(dirname "$0")/lib.sh"
N=${1:-5}
SEED=${2:-$RANDOM}
RANDOM=$SEED
cd "$TMP"
cp "$FIX/small_softmax.onnx" .
make_parts 4 10000 70
declare -A REF
for v in 1 2; do
    t0=$(date +%s%N)
    run_np 4 run job.ini --set output.table=ref$v --set output.top_k=$v || { not_ok "reference run" "$(cat "$TMP/err")"; exit 1; }
    WALL_MS=$((($(date +%s%N) - t0) / 1000000))
    REF[$v]=$(manifest_field ref$v "$(current_of ref$v)" checksum)
done
for v in 1 2; do run_np 2 run job.ini --set output.top_k=$v || { not_ok "setup" "$(cat "$TMP/err")"; exit 1; }; done
cur_k=2
echo "# seed $SEED, fault-free run (-np 4) ${WALL_MS} ms"

finished=0 rank_kills=0 mpirun_kills=0 lingered=0
for trial in $(seq "$N"); do
    np=$((2 + RANDOM % 3))
    new_k=$((3 - cur_k))
    delay_ms=$((RANDOM % (WALL_MS * 13 / 10 + 1)))
    target=$((RANDOM % (np + 1)))   # np: mpirun itself, else that rank's index among the children
    before=$(current_of t)
    values t sample.txt >before.txt
    ASAN_OPTIONS=$MPI_ASAN_OPTIONS mpirun --oversubscribe -np "$np" "$PRECAST" run job.ini --set output.top_k=$new_k \
        >run.out 2>run.err &
    mpid=$!
    sleep "$(printf '0.%03d' $((delay_ms % 1000)))"; [ $delay_ms -ge 1000 ] && sleep $((delay_ms / 1000))
    all=$(pids_under $mpid | tr '\n' ' ')
    ranks=($(pgrep -P $mpid -f "$PRECAST" 2>/dev/null))
    what="none"
    if kill -0 $mpid 2>/dev/null; then
        if [ "$target" = "$np" ] || [ ${#ranks[@]} = 0 ]; then
            kill -9 $mpid 2>/dev/null && what="mpirun" && mpirun_kills=$((mpirun_kills + 1))
        else
            victim=${ranks[$((target % ${#ranks[@]}))]}
            kill -9 "$victim" 2>/dev/null && what="rank pid $victim" && rank_kills=$((rank_kills + 1))
        fi
    fi
    wait $mpid 2>/dev/null
    rc=$?
    # Every process of this run gone within 20 s (an orphaned rank may still be finishing).
    for _ in $(seq 200); do
        alive=""
        for p in $all; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    why=""
    if [ -n "$alive" ]; then
        lingered=$((lingered + 1))
        why="processes of the killed run still alive after 20 s:$alive"
        for p in $alive; do kill -9 "$p" 2>/dev/null; done
        sleep 0.5
    fi
    [ "$what" = none ] && finished=$((finished + 1))
    after=$(current_of t)
    if [ -z "$why" ]; then
        if [ -z "$after" ] || ! "$PRECAST" verify t >verify.out 2>&1; then
            why="CURRENT ($after) does not verify: $(head -c 300 verify.out)"
        else
            for d in t/v*; do
                "$PRECAST" verify t "$(basename "$d")" >verify.out 2>&1 || { why="version dir $(basename "$d") fails verify: $(head -c 200 verify.out)"; break; }
            done
        fi
    fi
    if [ -z "$why" ]; then
        if [ "$after" = "$before" ]; then
            values t sample.txt | cmp -s - before.txt || why="CURRENT unchanged but precast get answers differently"
        elif [ "$(manifest_field t "$after" checksum)" != "${REF[$new_k]}" ]; then
            why="CURRENT moved to $after whose checksum is not the fault-free run's"
        fi
    fi
    if [ -z "$why" ]; then
        if ! run_np "$np" run job.ini --set output.top_k=$new_k; then
            why="the next run failed: $(head -c 300 "$TMP/err")"
        else
            now=$(current_of t)
            if [ "$(manifest_field t "$now" checksum)" != "${REF[$new_k]}" ]; then why="the next run's checksum differs from the fault-free run's"
            elif ! "$PRECAST" verify t >verify.out 2>&1; then why="verify after the next run: $(cat verify.out)"
            elif ls -d t/.staging-* t/.trash-* >/dev/null 2>&1; then why="staging or trash left: $(ls -a t | tr '\n' ' ')"
            elif [ -n "$(ls spill)" ]; then why="spill files left: $(ls spill | head -3)"
            fi
            cur_k=$new_k
        fi
    fi
    desc="-np $np, kill -9 $what after $delay_ms ms (run exit $rc)"
    if [ -z "$why" ]; then
        trial_ok
        echo "# trial $trial: $desc: ok${after:+, CURRENT $( [ "$after" = "$before" ] && echo unchanged || echo moved)}"
    else
        trial_fail "$desc: $why (seed $SEED)"
    fi
done
drill_end "seed $SEED: $rank_kills rank kills, $mpirun_kills mpirun kills, $finished finished before the kill, $lingered with processes left"
