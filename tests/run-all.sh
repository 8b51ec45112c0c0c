#!/bin/bash
# Runs every test suite and ends with one line for all of them: "N passed, N failed".
#   unit tests:        $BUILD/bin/test_* (Check); test_reducer also under mpirun -np 3
#   integration tests: tests/integration/test_*.sh (real mpirun jobs), each prints
#                      "ok - NAME" or "not ok - NAME" per case
# Options: --unit-only. Environment: BUILD (default build), VALGRIND=1 runs the unit tests
# and tests/integration/valgrind_*.sh under valgrind.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
export PRECAST_FIXTURES=${PRECAST_FIXTURES:-$BUILD/fixtures}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One OpenBLAS thread per rank: ranks are the parallelism.
export OPENBLAS_NUM_THREADS=1
# One machine: Open MPI's shared-memory transport (pml ob1 + btl vader). Left to choose, it
# probes UCX for network devices first, which costs 0.2 s of every start on a machine without
# any (MPI_Init + Finalize: 0.32 s against 0.12 s here). Clusters keep their own setting.
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}
unit_only=0
[ "${1:-}" = "--unit-only" ] && unit_only=1

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Adds a Check runner's counts ("NN%: Checks: X, Failures: F, Errors: E") from $log.
count_check() {
    local name=$1 rc=$2 line
    line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "not ok - $name: no Check summary (exit status $rc)"
        failed=$((failed + 1))
        return
    fi
    local checks fails errs
    checks=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    fails=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
    errs=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    passed=$((passed + checks - fails - errs))
    failed=$((failed + fails + errs))
    if [ "$rc" -ne 0 ] && [ $((fails + errs)) -eq 0 ]; then
        echo "not ok - $name: exit status $rc with no failed check (valgrind or a crash?)"
        failed=$((failed + 1))
    fi
}

run_unit() {
    local name=$1; shift
    echo "== $name"
    "$@" >"$log" 2>&1
    local rc=$?
    cat "$log"
    count_check "$name" "$rc"
}

for t in "$BUILD"/bin/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    if [ "${VALGRIND:-0}" = 1 ]; then
        run_unit "$name (valgrind)" env CK_FORK=no valgrind -q --error-exitcode=99 \
            --leak-check=full --errors-for-leak-kinds=definite \
            --suppressions=tests/valgrind.supp "$t"
    elif [ "$name" = test_reducer ]; then
        # MPI process: see tests/integration/lib.sh on ASan leak detection and Open MPI.
        run_unit "$name" env ASAN_OPTIONS=detect_leaks=0 "$t"
    else
        run_unit "$name" "$t"
    fi
    if [ "$name" = test_reducer ] && [ "${VALGRIND:-0}" != 1 ]; then
        run_unit "$name (mpirun -np 3)" env ASAN_OPTIONS=detect_leaks=0 mpirun --oversubscribe -np 3 "$t"
    fi
    # The kernels again on both libraries' AVX2 kernels, as on a CPU without AVX-512: there
    # OpenBLAS computes some places of a batch apart and the choice of library must show it.
    if [ "$name" = test_kernels ] && [ "${VALGRIND:-0}" != 1 ]; then
        run_unit "$name (AVX2 kernels)" env OPENBLAS_CORETYPE=Haswell DNNL_MAX_CPU_ISA=AVX2 "$t"
    fi
done

# The ONNX backend test cases (libonnx-testdata), when the runner is built: its last line is
# "onnx conformance: N passed, N failed, N skipped"; skips (unsupported ops) are not failures.
if [ -x "$BUILD/bin/onnx_conformance" ] && [ "${VALGRIND:-0}" != 1 ]; then
    echo "== onnx_conformance"
    OPENBLAS_NUM_THREADS=1 "$BUILD/bin/onnx_conformance" "${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}" >"$log" 2>&1
    rc=$?
    grep -v '^skip' "$log" | tail -20
    line=$(grep -E '^onnx conformance: ' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "not ok - onnx_conformance: no summary line (exit status $rc)"
        failed=$((failed + 1))
    else
        passed=$((passed + $(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')))
        failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')))
    fi
fi

if [ "$unit_only" = 0 ]; then
    # Under valgrind, the integration suites are the valgrind_*.sh smoke runs: a whole mpirun
    # suite under valgrind would take far longer than it teaches.
    pattern='tests/integration/test_*.sh'
    [ "${VALGRIND:-0}" = 1 ] && pattern='tests/integration/valgrind_*.sh'
    for t in $pattern; do
        echo "== $(basename "$t")"
        bash "$t" >"$log" 2>&1
        rc=$?
        cat "$log"
        p=$(grep -c '^ok - ' "$log")
        f=$(grep -c '^not ok - ' "$log")
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "not ok - $(basename "$t"): exit status $rc"
            failed=$((failed + 1))
        fi
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
