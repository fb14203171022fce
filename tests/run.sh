#!/bin/sh
# tests/run.sh BUILD: runs every test suite (unit, command line, study scripts, PyTorch
# reference, MPI for a build with MPI=1) and ends with one summary line
# "N passed, N failed[, N skipped]".
# Each suite prints its own last line "<name>: N passed, N failed[, N skipped]".
BUILD=${1:-build}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
passed=0 failed=0 skipped=0 broken=""
out=$(mktemp)
suite() {
    name=$1
    shift
    echo "== $name"
    "$@" >"$out" 2>&1
    rc=$?
    cat "$out"
    line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "$name: no summary line (exit $rc)"
        failed=$((failed + 1))
        broken="$broken $name"
        return
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + ${s:-0}))
    # CI installs python3-torch and numpy: a skipped PyTorch comparison there is a failure
    if [ "${CI:-}" = true ] && [ "$name" = torch ] && [ "${s:-0}" -gt 0 ]; then
        echo "$name: $s skipped under CI, which installs python3-torch: counted as failed"
        failed=$((failed + s))
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$name: exit status $rc"
        failed=$((failed + 1))
    fi
}
suite unit "$BUILD/test_dsf"
suite cli sh tests/cli.sh "$BUILD/dsf"
suite studies sh tests/studies.sh "$BUILD/dsf"
suite torch "$PY" tests/torch_grad.py "$BUILD/dsf"
suite torch "$PY" tests/torch_cells.py "$BUILD/dsf"
suite torch "$PY" tests/torch_recipe.py "$BUILD/dsf"
suite torch "$PY" tests/torch_classify.py "$BUILD/dsf"
suite torch env DSF_LIB="$BUILD/libdsf.so" "$PY" tests/torch_module.py "$BUILD/dsf"
suite install sh tests/install.sh "$BUILD"
suite mpi sh tests/mpi.sh "$BUILD/dsf"
rm -f "$out"
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
