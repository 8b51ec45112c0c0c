#!/bin/bash
# Drill 4: the disk fills up under the table, and under the spill dir.
#   usage: disk_full.sh [STEPS]    (default 4)
# Small tmpfs mounts (root; the drill says so and stops if mount is refused). A fault-free run
# measures one version's size S. Table: the table lives on a tmpfs of sizes
# (found by bisection: the smallest size on which a second version is published, H; half the
# steps at H - 4 KiB × i, which run out of space late — the manifest, CURRENT — and half spread
# between one version's size and H, which run out in the shard writes).
# Then ENOSPC injected (LD_PRELOAD shim) into the writes of MANIFEST.json and of CURRENT.
# Spill: memory_mb = 1 with spill_dir on a tmpfs of 4 pages + i × 16 KiB.
# Each step: the run that hits ENOSPC exits 73 or 74 with a message naming a path on the full
# file system; CURRENT and the previous version's answers are unchanged and it verifies; after
# the mount is grown, the next run publishes a version equal (checksum) to the fault-free
# run's and leaves no staging dir and no spill file.
DRILL=disk_full
. "$(dirname "$0")/lib.sh"
STEPS=${1:-4}
cd "$TMP"
MNT="$TMP/mnt"
mkdir -p "$MNT/table" "$MNT/spill"
cleanup() { local m; for m in "$MNT/table" "$MNT/spill"; do while mountpoint -q "$m"; do umount "$m" || break; done; done; rm -rf "$TMP"; }
trap cleanup EXIT
if ! mount -t tmpfs -o size=1m tmpfs "$MNT/table" 2>mount.err; then
    echo "# mount -t tmpfs refused ($(cat mount.err)): the disk-full drill needs root and mount"
    drill_end "skipped: mount refused"
    exit 0
fi
umount "$MNT/table"
setup_data 20000
write_job job.ini small_softmax.onnx a.csv ref "top_k = 2" "[run]" "memory_mb = 1" "spill_dir = refspill"
mkdir -p refspill
run_np 2 run job.ini || { not_ok "reference run" "$(cat "$TMP/err")"; exit 1; }
REF=$(manifest_field ref "$(current_of ref)" checksum)
S=$(du -sk --apparent-size "ref/$(current_of ref)" | cut -f1)   # KiB
SPILL_PEAK=$(grep -o '"spilled_bytes[^,]*' ref/report-job.json | head -1)
echo "# one version: $S KiB; reference checksum $REF; $SPILL_PEAK"
full_exits=""

# one_step NAME MOUNT SIZE_KIB GROW_KIB RUN_ARGS...: the failing run, the checks, the next run.
one_step() {
    local name=$1 mnt=$2 size=$3 grow=$4; shift 4
    local why="" before after rc
    before=$(current_of t)
    [ -n "$before" ] && values t sample.txt >before.txt
    # The space a run needs varies (shard sizes follow the sampled splitters; one make check
    # saw a run fit 84 KiB under the bisected size): a run that fits is not a failure; the
    # size shrinks by 16, 32, 64 and 128 KiB and the run is repeated (5 times in all).
    local attempt shrink=16
    for attempt in 1 2 3 4 5; do
        mount -o remount,size=${size}k "$mnt" 2>/dev/null || mount -t tmpfs -o size=${size}k tmpfs "$mnt"
        run_np 2 run job.ini "$@"; rc=$?
        [ $rc != 0 ] || [ $size -le 32 ] && break
        before=$(current_of t); values t sample.txt >before.txt
        size=$((size > shrink + 32 ? size - shrink : 32))
        shrink=$((shrink * 2))
    done
    full_exits="$full_exits $rc"
    after=$(current_of t)
    if [ $rc = 0 ]; then
        why="the run succeeded on a ${size} KiB $name file system (nothing filled up)"
    elif [ $rc != 73 ] && [ $rc != 74 ]; then
        why="exit $rc (want 73 or 74): $(head -c 300 "$TMP/err")"
    elif ! grep -q "$mnt" "$TMP/err"; then
        why="exit $rc but the message names no path under $mnt: $(head -c 300 "$TMP/err")"
    elif [ -n "$before" ] && [ "$after" != "$before" ]; then
        why="CURRENT moved from $before to $after"
    elif [ -n "$before" ] && ! values t sample.txt | cmp -s - before.txt; then
        why="the previous version answers differently"
    elif [ -n "$before" ] && ! "$PRECAST" verify t >verify.out 2>&1; then
        why="the previous version fails verify: $(cat verify.out)"
    fi
    local msg; msg=$(grep -o 'precast: .*' "$TMP/err" | head -1 | cut -c1-160)
    mount -o remount,size=$((size + grow))k "$mnt"
    if [ -z "$why" ]; then
        if ! run_np 2 run job.ini "$@"; then why="the run after growing $mnt failed: $(head -c 300 "$TMP/err")"
        elif [ "$(manifest_field t "$(current_of t)" checksum)" != "$REF" ]; then why="the next run's checksum differs from the fault-free run's"
        elif ! "$PRECAST" verify t >verify.out 2>&1; then why="verify after the next run: $(cat verify.out)"
        elif ls -d t/.staging-* >/dev/null 2>&1; then why="staging left: $(ls -a t | tr '\n' ' ')"
        elif [ -n "$(ls "$MNT/spill")" ]; then why="spill files left: $(ls "$MNT/spill" | head -3)"
        fi
    fi
    if [ -z "$why" ]; then trial_ok; echo "# $name on ${size} KiB: exit $rc: $msg"
    else trial_fail "$name on a ${size} KiB tmpfs: $why"; fi
}

# Table on a small tmpfs: one version fits, the second does not.
ln -sfn "$MNT/table" t
write_job job.ini small_softmax.onnx a.csv "$MNT/table" "top_k = 2" "keep_versions = 0" "[run]" "memory_mb = 1" "spill_dir = $MNT/spill"
mount -t tmpfs -o size=$((S * 8 + 1024))k tmpfs "$MNT/table"
mount -t tmpfs -o size=64m tmpfs "$MNT/spill"
run_np 2 run job.ini || { not_ok "first run on tmpfs" "$(cat "$TMP/err")"; exit 1; }
used=$(df -k --output=used "$MNT/table" | tail -1 | tr -d " ")
# The smallest size (4 KiB steps) on which a second version is published: sizes just below it
# run out of space late (manifest, CURRENT), sizes well below it in the shard writes.
lo=$used hi=$((S * 8 + 1024))
while [ $((hi - lo)) -gt 4 ]; do
    mid=$(((lo + hi) / 8 * 4))
    mount -o remount,size=${mid}k "$MNT/table"
    if run_np 2 run job.ini; then hi=$mid; else lo=$mid; fi
    mount -o remount,size=$((S * 8 + 1024))k "$MNT/table"
    used=$(df -k --output=used "$MNT/table" | tail -1 | tr -d " ")
done
echo "# table tmpfs: $used KiB used by one version, a second is published from $hi KiB on"
for i in $(seq 1 "$STEPS"); do
    if [ $i -le $(((STEPS + 1) / 2)) ]; then size=$((hi - 4 * i)); else size=$((used + 4 + (hi - used) * (i - 1) / STEPS)); fi
    one_step table "$MNT/table" "$size" $((S * 8))
    mount -o remount,size=$((S * 8 + 1024))k "$MNT/table"
done
# The late writes a tmpfs size cannot single out: write(2) of the version's MANIFEST.json and
# of the table's CURRENT fail with ENOSPC (tests/drills/powerloss_shim.so, PL_ENOSPC).
SHIM="$BUILD/drills/powerloss_shim.so"
for target in MANIFEST.json CURRENT.tmp; do
    before=$(current_of t); values t sample.txt >before.txt
    PL_ENOSPC=$target LD_PRELOAD=$SHIM mpirun --oversubscribe -x LD_PRELOAD -x PL_ENOSPC -np 2 "$PRECAST" run job.ini \
        >"$TMP/out" 2>"$TMP/err"; rc=$?
    full_exits="$full_exits $rc"
    msg=$(grep -o 'precast: .*' "$TMP/err" | head -1 | cut -c1-160)
    why=""
    if [ $rc != 73 ] && [ $rc != 74 ]; then why="exit $rc (want 73 or 74): $(head -c 300 "$TMP/err")"
    elif ! grep -q "$MNT/table/.*$target" "$TMP/err"; then why="the message does not name $target: $msg"
    elif [ "$(current_of t)" != "$before" ] || ! values t sample.txt | cmp -s - before.txt; then why="CURRENT or its answers changed"
    elif ! "$PRECAST" verify t >verify.out 2>&1; then why="verify: $(cat verify.out)"
    elif ! run_np 2 run job.ini; then why="the next run failed: $(head -c 300 "$TMP/err")"
    elif [ "$(manifest_field t "$(current_of t)" checksum)" != "$REF" ]; then why="the next run's checksum differs"
    elif ls -d t/.staging-* t/CURRENT.tmp >/dev/null 2>&1; then why="staging or CURRENT.tmp left: $(ls -a t | tr '\n' ' ')"
    fi
    if [ -z "$why" ]; then trial_ok; echo "# ENOSPC writing $target: exit $rc: $msg"
    else trial_fail "ENOSPC writing $target (PL_ENOSPC=$target LD_PRELOAD=$SHIM): $why"; fi
done
# Spill dir on a small tmpfs.
for i in $(seq 0 $((STEPS - 1))); do
    one_step spill "$MNT/spill" $((16 + i * 16)) 65536
done
drill_end "one version $S KiB; exits of the runs that hit ENOSPC:$full_exits"
