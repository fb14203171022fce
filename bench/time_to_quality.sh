#!/bin/sh
# bench/time_to_quality.sh [-e EPOCHS] [-r "RUNS"] [-d DATA] [-o OUTDIR] [-t THREADS] [-q]
#
# Time to quality on the PTB small recipe (word level, 2 x 200 GRU, emb 200, SGD
# lr 20 divided by 4 on a validation plateau, clip 0.25, batch 20 x seq 35): each
# dsf run and PyTorch (bench/ptb_torch.py, nn.GRU + autograd) train EPOCHS epochs
# from the same initial weights, one after the other on this machine. The table
# gives each run's validation perplexity after the last epoch, its ratio to
# PyTorch's, the wall-clock seconds of the whole run (process start to exit:
# loading, training, validation, test) and their ratio to PyTorch's, then whether
# the target holds: within 3% of PyTorch's validation perplexity in at most a
# third of its wall-clock time.
#
#   -e EPOCHS   epochs per run (default 2)
#   -r RUNS     dsf runs, each METHOD or METHOD:FEEDBACK
#               (default "dsf:uniform:0,0.5 dsf:diag bptt")
#   -d DATA     directory with ptb.{train,valid,test}.txt (default ../shared/data/ptb)
#   -o OUTDIR   logs and outputs (default bench/out/ttq)
#   -t THREADS  threads for every run (default 2)
#   -q          quick: 30 steps per run, to check that everything works
# DSF=PATH selects the dsf binary (default build/dsf).
set -eu
cd "$(dirname "$0")/.."
EPOCHS=2 RUNS="dsf:uniform:0,0.5 dsf:diag bptt" DATA=../shared/data/ptb OUT=bench/out/ttq
THREADS=2 QUICK=""
usage() { sed -n '2,22s/^# \{0,1\}//p' "$0"; }
while getopts e:r:d:o:t:qh opt; do
    case $opt in
    e) EPOCHS=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    d) DATA=$OPTARG ;;
    o) OUT=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    q) QUICK=1 ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
# PyTorch at its best: OpenBLAS's own pool (which Debian's torch uses for nn.GRU's
# products) single-threaded beside torch's OpenMP threads, 2.4x faster than with
# the pool on at this shape (experiments/results/speed/torch_openblas_threads.txt;
# bench/speed.sh times both settings each run). TORCH_OPENBLAS=N to run another.
TORCH_OPENBLAS=${TORCH_OPENBLAS:-1}
[ -d "$DATA" ] || { echo "time_to_quality.sh: no data directory $DATA (give -d DIR)" >&2; exit 2; }
DSF=${DSF:-build/dsf}  # the binary measured
[ -x "$DSF" ] || make
mkdir -p "$OUT"
now() { date +%s.%N; }  # seconds, for the wall-clock of each run

recipe="--layers 2 --emb 200 --hidden 200 --batch 20 --seq 35 --lr 20 --clip 0.25 --threads $THREADS --seed 1"
if [ -n "$QUICK" ]; then
    dsf_len="--steps 30" torch_len="--epochs 1 --max-steps 30"
else
    dsf_len="--epochs $EPOCHS" torch_len="--epochs $EPOCHS"
fi
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p'), $(nproc) cores; runs use $THREADS threads"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$DSF" version
    "$PY" -c "import torch; print('torch', torch.__version__)"
} | tee "$OUT/machine.txt"
OPENBLAS_NUM_THREADS="$TORCH_OPENBLAS" "$PY" bench/ptb_torch.py --data "$DATA" $recipe --save-init "$OUT/init.safetensors" 2>/dev/null
: >"$OUT/wall.txt"

failed=""
for run in $RUNS; do
    method=${run%%:*}
    feedback=""
    [ "$run" = "$method" ] || feedback="--feedback ${run#*:}"
    name=$(echo "$run" | tr ':,' '_-')
    echo "== dsf train --method $method $feedback ($OUT/$name.out)"
    rm -f "$OUT/$name.csv"
    t0=$(now)
    # shellcheck disable=SC2086  # the option lists are meant to split
    if "$DSF" train --data "$DATA" --level word --cell gru --optim sgd $recipe $dsf_len \
        --init "$OUT/init.safetensors" --method "$method" $feedback --log "$OUT/$name.csv" \
        >"$OUT/$name.out" 2>&1; then
        echo "$name $run $(awk "BEGIN { print $(now) - $t0 }")" >>"$OUT/wall.txt"
    else
        echo "   failed: $(tail -n 1 "$OUT/$name.out")"
        echo "$name $run nan" >>"$OUT/wall.txt"
        failed="$failed $name"
    fi
done
echo "== PyTorch ($OUT/torch.out)"
rm -f "$OUT/torch.csv"
t0=$(now)
# shellcheck disable=SC2086
if OPENBLAS_NUM_THREADS="$TORCH_OPENBLAS" "$PY" bench/ptb_torch.py --data "$DATA" $recipe $torch_len --log "$OUT/torch.csv" >"$OUT/torch.out" 2>&1; then
    echo "torch torch $(awk "BEGIN { print $(now) - $t0 }")" >>"$OUT/wall.txt"
else
    echo "   failed: $(tail -n 1 "$OUT/torch.out")"
    failed="$failed torch"
fi
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

"$PY" - "$OUT" <<'PY' | tee "$OUT/table.txt"
import csv, os, sys

out = sys.argv[1]
nan = float("nan")
runs = [line.split() for line in open(f"{out}/wall.txt")]


def last_valid(path):
    if not os.path.exists(path):
        return nan, 0
    rows = [r for r in csv.DictReader(open(path)) if r["kind"] == "valid"]
    return (float(rows[-1]["ppl"]), int(rows[-1]["epoch"])) if rows else (nan, 0)


res = [(label, *last_valid(f"{out}/{name}.csv"), float(wall)) for name, label, wall in runs]
ref = [r for r in res if r[0] == "torch"]
tv, te, tw = (ref[0][1], ref[0][2], ref[0][3]) if ref else (nan, 0, nan)
print(f"{'run':<20} {'epochs':>6} {'valid ppl':>9} {'ppl/torch':>9} {'wall s':>8} {'wall/torch':>10}  target")
for label, v, e, w in res:
    pr, wr = v / tv if tv == tv else nan, w / tw if tw == tw else nan
    ok = "" if label == "torch" else ("met" if pr <= 1.03 and wr <= 1 / 3 else "missed")
    print(f"{label:<20} {e:>6} {v:>9.2f} {pr:>9.3f} {w:>8.1f} {wr:>10.3f}  {ok}")
print("target: valid ppl within 3% of PyTorch's (ppl/torch <= 1.030) in at most a third of its "
      "wall-clock time (wall/torch <= 0.333);\nwall s: the whole run, process start to exit, "
      "test evaluation included.")
PY
[ -z "$failed" ] || { echo "failed runs:$failed" >&2; exit 1; }
