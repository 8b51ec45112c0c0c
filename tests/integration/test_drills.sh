#!/bin/bash
# The reliability drills (tests/drills/, docs/RELIABILITY.md) with small trial counts, so that
# make check runs each of them (about 2 minutes); `make drills` runs the full counts.
# Under ASan (make check-asan) three drills are left to make check: powerloss and disk_full
# run precast under an LD_PRELOAD shim, which ASan's runtime refuses to follow, and abuse
# bounds the server's RSS growth, which ASan's quarantine of freed memory breaks by design.
DRILLS=$(cd "$(dirname "$0")/../drills" && pwd)
export BUILD=${BUILD:-build}
asan=0
case "$BUILD" in *asan*) asan=1 ;; esac
bash "$DRILLS/crash_points.sh" 1
bash "$DRILLS/random_kill.sh" 5
[ $asan = 1 ] || bash "$DRILLS/powerloss.sh" 1
[ $asan = 1 ] || bash "$DRILLS/disk_full.sh" 1
bash "$DRILLS/corruption.sh" 10
bash "$DRILLS/concurrency.sh" 8
[ $asan = 1 ] || bash "$DRILLS/abuse.sh" 200 1000 5
[ $asan = 0 ] || echo "# test_drills: powerloss, disk_full and abuse run under make check, not under ASan"
