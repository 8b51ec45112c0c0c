# Shared helpers of the integration tests: sourced, not run.
# Each test case prints "ok - NAME" or "not ok - NAME: why"; tests/run-all.sh counts them.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
PRECAST="$BUILD/bin/precast"
DUMP="$BUILD/bin/tool_dump"
FIX=${PRECAST_FIXTURES:-$BUILD/fixtures}
case "$FIX" in /*) ;; *) FIX="$ROOT/$FIX" ;; esac
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
# Quiet Open MPI's warnings about the container's network interfaces.
export OMPI_MCA_btl_base_warn_component_unused=0

TMP=$(mktemp -d /tmp/precast-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1: $2"; }

# run_np N ARGS...: runs precast under mpirun with N ranks; stdout/stderr to $TMP/out, $TMP/err.
# Under ASan, leak detection is off in MPI processes: Open MPI's dlopen'd components keep
# allocations by design and unload before LeakSanitizer can name them, so they cannot be
# suppressed; the non-MPI tests keep leak detection.
MPI_ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
run_np() {
    local np=$1; shift
    ASAN_OPTIONS=$MPI_ASAN_OPTIONS mpirun --oversubscribe -np "$np" "$PRECAST" "$@" >"$TMP/out" 2>"$TMP/err"
}

# write_job FILE MODEL INPUTS TABLE [extra lines...]: a job file with paths relative to it.
write_job() {
    local file=$1 model=$2 inputs=$3 table=$4; shift 4
    {
        echo "[model]"
        echo "path = $model"
        echo "[input]"
        echo "paths = $inputs"
        echo "id_column = id"
        echo "[output]"
        echo "table = $table"
        for l in "$@"; do echo "$l"; done
    } >"$file"
}

# make_csv FILE ROWS NFEAT SEED: id,f0..f{n-1} with ids shuffled, 4-decimal features.
make_csv() {
    "$PY" - "$@" <<'PYEOF'
import sys, random
path, rows, nfeat, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
ids = list(range(rows)); rnd.shuffle(ids)
with open(path, "w") as f:
    f.write("id," + ",".join("f%d" % i for i in range(nfeat)) + "\n")
    for i in ids:
        f.write("id%d," % i + ",".join("%.4f" % rnd.uniform(-2, 2) for _ in range(nfeat)) + "\n")
PYEOF
}

# check NAME CMD...: ok if CMD succeeds.
check() {
    local name=$1; shift
    if "$@"; then ok "$name"; else not_ok "$name" "command failed: $*"; fi
}
