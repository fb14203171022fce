#!/bin/sh
# tests/install.sh [BUILD]: `make install` into a temporary prefix, then the
# header's tutorial (tests/api_tutorial.c) compiled outside the tree with
# `#include <dsf.h>` and pkg-config alone, against the shared and the static
# library; each must train. Ends with "install: N passed, N failed".
BUILD=${1:-build}
passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -f "$tmp/err" ] && tail -n 5 "$tmp/err" | sed 's/^/     /'; }
if make -s install BUILD="$BUILD" PREFIX="$tmp/p" >"$tmp/err" 2>&1 &&
   [ -f "$tmp/p/include/dsf/dsf.h" ] && [ -f "$tmp/p/include/dsf/model/lm.h" ] &&
   [ -x "$tmp/p/bin/dsf" ] && [ -f "$tmp/p/lib/pkgconfig/dsf.pc" ]; then
    ok "make install PREFIX=...: the command, the libraries, the headers, dsf.pc"
else
    fail "make install PREFIX=...: the command, the libraries, the headers, dsf.pc"
fi
export PKG_CONFIG_PATH="$tmp/p/lib/pkgconfig"
cp tests/api_tutorial.c "$tmp/prog.c"  # compiled away from the source tree
cd "$tmp" || exit 1
if [ -f p/lib/libdsf.so ]; then
    if cc -std=c11 -O1 prog.c $(pkg-config --cflags --libs dsf) -Wl,-rpath,"$tmp/p/lib" -o shared 2>err &&
       ./shared >out 2>err && ldd shared | grep -q "$tmp/p/lib/libdsf.so"; then
        ok "the tutorial against libdsf.so: $(cat out)"
    else
        fail "the tutorial against libdsf.so"
    fi
else
    echo "skip the shared library (a CUDA build installs libdsf.a only)"
fi
if cc -std=c11 -O1 prog.c $(pkg-config --cflags dsf) p/lib/libdsf.a \
       $(pkg-config --static --libs dsf | sed 's/-ldsf//') -o static 2>err &&
   ./static >out 2>err && ! ldd static | grep -q libdsf; then
    ok "the tutorial against libdsf.a: $(cat out)"
else
    fail "the tutorial against libdsf.a"
fi
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
