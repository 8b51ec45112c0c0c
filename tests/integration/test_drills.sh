#!/bin/bash
# The reliability drills (tests/drills/, docs/RELIABILITY.md) with small trial counts, so that
# make check runs each of them (about 2 minutes); `make drills` runs the full counts.
DRILLS=$(cd "$(dirname "$0")/../drills" && pwd)
export BUILD=${BUILD:-build}
bash "$DRILLS/crash_points.sh" 1
bash "$DRILLS/random_kill.sh" 5
bash "$DRILLS/powerloss.sh" 1
bash "$DRILLS/disk_full.sh" 1
bash "$DRILLS/corruption.sh" 10
bash "$DRILLS/concurrency.sh" 8
bash "$DRILLS/abuse.sh" 200 1000 5
