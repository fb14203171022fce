#!/bin/sh
# tests/cuda_host/run.sh [BUILD]: the CUDA backend's device tests without a GPU.
# src/cuda/*.cu is compiled as C++ for the host, each kernel launch rewritten to
# emu_launcher (emu.h), and linked with emu.cpp's CUDA runtime, cuBLAS and cuFFT
# in place of NVIDIA's and with the C objects and tests of a CUDA build (BUILD,
# default build/cuda: run `make CUDA=1` first), tests/cuda_emulate.cu compiled the
# same way; then `test_dsf cuda` runs every test of tests/test_cuda.c, the device
# ones included, and of tests/test_cuda_emulated.c. Fails on a failed test or
# on a barrier warning. Also links $BUILD/cuda_host/dsf, the tool on that
# backend (for tests/cli.sh). Needs g++, FFTW and the CUDA headers (nvcc's include/);
# x86-64 only.
set -eu
BUILD=${1:-build/cuda}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
# The CUDA headers: CUDA_HOME's, else where nvcc itself takes them from (nvcc may
# be a wrapper script outside the toolkit, as /usr/local/bin/nvcc often is).
CUDA_INC=
for top in ${CUDA_HOME:-} "$("$NVCC" --dryrun -x cu -c /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n 1)" \
           "$(dirname "$NVCC")/.." /usr/local/cuda; do
    if [ -n "$top" ] && [ -f "$top/include/cublas_v2.h" ]; then CUDA_INC=$top/include; break; fi
done
[ -n "$CUDA_INC" ] || { echo "cuda_host: no cublas_v2.h found (set CUDA_HOME to the CUDA toolkit)"; exit 1; }
OUT=$BUILD/cuda_host
[ -x "$BUILD/test_dsf" ] || { echo "cuda_host: $BUILD/test_dsf not built (make CUDA=1)"; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "cuda_host: skipped (x86-64 only)"; exit 0; }
mkdir -p "$OUT/tests"
rm -f "$OUT"/*.o "$OUT"/tests/*.o  # (a file since removed from src/cuda must not link)
CXX="g++ -x c++ -std=c++17 -O1 -g -I$CUDA_INC -Isrc -Isrc/cuda -Itests/cuda_host -Wno-attributes"
for f in src/cuda/*.cu; do
    n=$(basename "$f" .cu)
    if grep -q '<<<' "$f"; then  # kernel<<<grid, block, shmem, stream>>>(args) -> emu_launcher(...)(kernel, args)
        sed -e 's/\([A-Za-z_0-9]*\)<<<\(.*\)>>>(/emu_launcher(\2)(\1, /' "$f" >"$OUT/k_$n.cu"
        if grep -q '<<<' "$OUT/k_$n.cu"; then echo "cuda_host: a launch in $f not rewritten"; exit 1; fi
        $CXX -include emu.h -c "$OUT/k_$n.cu" -o "$OUT/$n.o"
    else
        $CXX -c "$f" -o "$OUT/$n.o"
    fi
done
# the test code nvcc compiled into $BUILD/tests, for the host
$CXX -c tests/cuda_emulate.cu -o "$OUT/tests/cuda_emulate.o"
tests=$(find "$BUILD/tests" -maxdepth 1 -name '*.o' ! -name cuda_emulate.o)
g++ -std=c++17 -O1 -g -I"$CUDA_INC" -Itests/cuda_host -Wno-attributes -c tests/cuda_host/emu.cpp -o "$OUT/emu.o"
objs=$(find "$BUILD/src" -name '*.o' ! -path '*/src/cuda/*' ! -path '*/src/cli/*')
libs="-lfftw3f -lm"
if pkg-config --exists openblas 2>/dev/null; then libs="$(pkg-config --libs openblas) $libs"; fi
if pkg-config --exists zlib 2>/dev/null; then libs="$libs $(pkg-config --libs zlib)"; fi
# LINK: mpicxx for a build with MPI=1
LINK=${LINK:-g++}
$LINK -fopenmp $tests "$OUT/tests/cuda_emulate.o" $objs "$BUILD/src/cli/args.o" "$OUT"/*.o $libs \
    -o "$OUT/test_dsf"
# the command-line tool on the same backend: `sh tests/cli.sh $OUT/dsf` runs its
# --device cuda checks too (slowly: minutes)
$LINK -fopenmp "$BUILD"/src/cli/*.o $objs "$OUT"/*.o $libs -o "$OUT/dsf"
"$OUT/test_dsf" cuda 2>&1 | tee "$OUT/test.log"
if grep -q "cuda_host WARNING" "$OUT/test.log"; then echo "cuda_host: barrier warnings"; exit 1; fi
tail -n 1 "$OUT/test.log" | grep -q ', 0 failed' || exit 1
