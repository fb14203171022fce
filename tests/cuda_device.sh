#!/bin/sh
# tests/cuda_device.sh: everything about the CUDA backend that needs a GPU, in one
# run sized for a short lease of a GPU machine (a few minutes on an H100/H200):
#
#   machine    nvidia-smi and nvcc: what it ran on
#   build      make CUDA=1 (CUDA_ARCH, default 90; all cores)
#   unit       build/cuda/test_dsf cuda: loss, every gradient, state, optimizers,
#              scans (chunked and fft) against the CPU backend
#   sync       the same with DSF_CUDA_SYNC=1 (every launch checked at once)
#   sanitizer  compute-sanitizer memcheck over the same tests, where it runs
#   cli        sh tests/cli.sh build/cuda/dsf: the command line, --device cuda
#              losses against the CPU's and bit-identical resumes
#   speed      sh bench/cuda_speed.sh (STEPS, default 5): tokens/s against cuDNN
#   mpi        make CUDA=1 MPI=1, then DSF_DEVICE=cuda sh tests/mpi.sh: 2 and 4
#              processes on the GPU(s) against 1 (skipped, saying so, without mpicc)
#
#   sh tests/cuda_device.sh                       every stage, logs in $OUT or ./cuda-device
#   STAGES="build unit" sh tests/cuda_device.sh   some stages (build is needed once)
#
# Each stage writes DIR/<stage>.log and one line to DIR/summary.txt (and stdout):
# its name, ok/FAILED/timeout and seconds. A failing stage does not stop the
# others; the exit status is the number of stages that did not pass. A stage
# whose device tests skipped for want of a device (no GPU, or a driver older
# than the CUDA runtime) fails: on the machine this is for, that is an error.
#
# With the device tool (10 minutes a command, 15 a session), e.g. two calls
# back to back, the second while the machine is still warm (build/ is kept):
#   STAGES="machine build unit sync cli" sh tests/cuda_device.sh     (~6 min)
#   STAGES="speed sanitizer" sh tests/cuda_device.sh
DIR=${DIR:-${OUT:-cuda-device}}
STAGES=${STAGES:-"machine build unit sync sanitizer cli speed mpi"}
CUDA_ARCH=${CUDA_ARCH:-90}
STEPS=${STEPS:-5}
mkdir -p "$DIR"
: >"$DIR/summary.txt"
bad=0

# stage NAME SECONDS 'COMMANDS': runs COMMANDS under a time limit into DIR/NAME.log.
stage() {
    name=$1 limit=$2 cmd=$3
    t0=$(date +%s)
    timeout "$limit" sh -c "$cmd" >"$DIR/$name.log" 2>&1
    rc=$?
    case $rc in
    0) what=ok ;;
    124) what="timeout after ${limit}s" ;;
    *) what="FAILED (exit $rc)" ;;
    esac
    [ $rc -eq 0 ] || bad=$((bad + 1))
    line="$name: $what, $(($(date +%s) - t0)) s; $(tail -n 1 "$DIR/$name.log")"
    echo "$line" | tee -a "$DIR/summary.txt"
}

for s in $STAGES; do
    case $s in
    machine) stage machine 60 'nvidia-smi && nvcc --version && nproc && python3 -c "import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"cudnn\", torch.backends.cudnn.version())"' ;;
    build) stage build 240 "make CUDA=1 CUDA_ARCH='$CUDA_ARCH' -j$(nproc)" ;;
    unit) stage unit 180 "build/cuda/test_dsf cuda && ! grep -q '^skip.*no CUDA device' '$DIR/unit.log'" ;;
    sync) stage sync 180 "DSF_CUDA_SYNC=1 build/cuda/test_dsf cuda && ! grep -q '^skip.*no CUDA device' '$DIR/sync.log'" ;;
    sanitizer) stage sanitizer 420 "compute-sanitizer --tool memcheck --error-exitcode 1 build/cuda/test_dsf cuda" ;;
    cli) stage cli 420 "sh tests/cli.sh build/cuda/dsf && ! grep -q '^skip --device cuda' '$DIR/cli.log'" ;;
    speed) stage speed 420 "STEPS=$STEPS DSF=build/cuda/dsf sh bench/cuda_speed.sh" ;;
    mpi) stage mpi 300 "if ! command -v mpicc >/dev/null; then echo 'skipped: no mpicc'; exit 0; fi;
                        make CUDA=1 MPI=1 CUDA_ARCH='$CUDA_ARCH' BUILD=build/cuda-mpi -j$(nproc) &&
                        DSF_DEVICE=cuda sh tests/mpi.sh build/cuda-mpi/dsf" ;;
    *) echo "cuda_device.sh: unknown stage '$s' (machine build unit sync sanitizer cli speed mpi)"; exit 2 ;;
    esac
done
exit $bad
