#!/bin/sh
# bench/ptb_compare.sh [-e EPOCHS] [-d DATA] [-o OUTDIR] [-t THREADS] [-m "bptt dsf ft"] [-q]
#
# The PTB small recipe (word level, 2 x 200 GRU, emb 200, SGD lr 20 divided by 4
# on a validation plateau, clip 0.25, batch 20 x seq 35, no dropout) trained with
# each dsf gradient method and with PyTorch (bench/ptb_torch.py, nn.GRU + autograd
# = BPTT), one after the other on this machine, then a table computed from the CSV
# logs: validation perplexity after each epoch, test perplexity (best validation
# model), seconds per epoch, training tokens/s, and the ratios to PyTorch.
#
#   -e EPOCHS   epochs per run (default 1)
#   -d DATA     directory with ptb.{train,valid,test}.txt (default ../shared/data/ptb)
#   -o OUTDIR   logs and outputs (default bench/out)
#   -t THREADS  threads for every run (default 2)
#   -m METHODS  dsf methods to run (default "bptt dsf ft")
#   -r          each tool draws its own initial weights (default: every run
#               starts from PyTorch's, written by ptb_torch.py --save-init, so
#               that the runs differ only in how they compute)
#   -q          quick: 50 steps per run, to check that everything works
set -eu
cd "$(dirname "$0")/.."
EPOCHS=1 DATA=../shared/data/ptb OUT=bench/out THREADS=2 METHODS="bptt dsf ft" QUICK="" OWN_INIT=""
while getopts e:d:o:t:m:qrh opt; do
    case $opt in
    e) EPOCHS=$OPTARG ;;
    d) DATA=$OPTARG ;;
    o) OUT=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    m) METHODS=$OPTARG ;;
    q) QUICK=1 ;;
    r) OWN_INIT=1 ;;
    h) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) sed -n '2,20s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
# PyTorch at its best: OpenBLAS's own pool (which Debian's torch uses for nn.GRU's
# products) single-threaded beside torch's OpenMP threads, 2.4x faster than with
# the pool on at this shape (experiments/results/speed/torch_openblas_threads.txt;
# bench/speed.sh times both settings each run). TORCH_OPENBLAS=N to run another.
TORCH_OPENBLAS=${TORCH_OPENBLAS:-1}
[ -d "$DATA" ] || { echo "ptb_compare.sh: no data directory $DATA (give -d DIR)" >&2; exit 2; }
[ -x build/dsf ] || make
mkdir -p "$OUT"

recipe="--layers 2 --emb 200 --hidden 200 --batch 20 --seq 35 --lr 20 --clip 0.25 --threads $THREADS --seed 1"
if [ -n "$QUICK" ]; then
    dsf_len="--steps 50" torch_len="--epochs 1 --max-steps 50"
else
    dsf_len="--epochs $EPOCHS" torch_len="--epochs $EPOCHS"
fi
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p'), $(nproc) cores; runs use $THREADS threads"
    echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    build/dsf version
    "$PY" -c "import torch; print('torch', torch.__version__)"
} | tee "$OUT/machine.txt"

init=""
if [ -z "$OWN_INIT" ]; then
    OPENBLAS_NUM_THREADS="$TORCH_OPENBLAS" "$PY" bench/ptb_torch.py --data "$DATA" $recipe --save-init "$OUT/init.safetensors" 2>/dev/null
    init="--init $OUT/init.safetensors"
    echo "every run starts from PyTorch's initial weights ($OUT/init.safetensors)"
fi

failed=""
for m in $METHODS; do
    echo "== dsf train --method $m ($OUT/dsf_$m.out)"
    rm -f "$OUT/dsf_$m.csv"
    # shellcheck disable=SC2086  # the option lists are meant to split
    if ! build/dsf train --data "$DATA" --level word --cell gru --optim sgd $recipe $dsf_len $init \
        --method "$m" --log "$OUT/dsf_$m.csv" >"$OUT/dsf_$m.out" 2>&1; then
        echo "   failed: $(tail -n 1 "$OUT/dsf_$m.out")"
        failed="$failed dsf_$m"
    fi
done
echo "== PyTorch ($OUT/torch.out)"
rm -f "$OUT/torch.csv"
# shellcheck disable=SC2086
if ! OPENBLAS_NUM_THREADS="$TORCH_OPENBLAS" "$PY" bench/ptb_torch.py --data "$DATA" $recipe $torch_len --log "$OUT/torch.csv" \
    >"$OUT/torch.out" 2>&1; then
    echo "   failed: $(tail -n 1 "$OUT/torch.out")"
    failed="$failed torch"
fi
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

# shellcheck disable=SC2086  # one argument per method
"$PY" - "$OUT" $METHODS <<'PY' | tee "$OUT/table.txt"
import csv, math, os, sys

out, methods = sys.argv[1], sys.argv[2:]
nan = float("nan")


def read(path):
    """valid ppl per epoch (last row of each), test ppl (last row), mean seconds per
    epoch (from elapsed_s of those valid rows), training tokens/s (window tokens over
    window time, from the train rows)."""
    if not os.path.exists(path):
        return None
    rows = list(csv.DictReader(open(path)))
    valid = {}
    for r in rows:
        if r["kind"] == "valid":
            valid[int(r["epoch"])] = r  # the last one of each epoch
    valid = [valid[e] for e in sorted(valid)]
    test = [r for r in rows if r["kind"] == "test"]
    ends = [float(r["elapsed_s"]) for r in valid]
    per_epoch = [b - a for a, b in zip([0.0] + ends, ends)]
    tok = sec = 0.0
    prev = 0
    for r in rows:
        if r["kind"] == "train":
            n = int(r["tokens"]) - prev
            prev = int(r["tokens"])
            if float(r["tokens_per_s"]) > 0:
                tok += n
                sec += n / float(r["tokens_per_s"])
    return {"valid": [float(r["ppl"]) for r in valid],
            "test": float(test[-1]["ppl"]) if test else nan,
            "s_epoch": sum(per_epoch) / len(per_epoch) if per_epoch else nan,
            "tok_s": tok / sec if sec else nan}


runs = [(f"dsf {m}", read(f"{out}/dsf_{m}.csv")) for m in methods]
runs.append(("torch bptt", read(f"{out}/torch.csv")))
ref = runs[-1][1]


def ratio(a, b):
    return a / b if a == a and b == b and b else nan


epochs = max((len(r["valid"]) for _, r in runs if r), default=0)
head = f"{'run':<11}" + "".join(f" {'valid@' + str(e + 1):>9}" for e in range(epochs))
print(head + f" {'test ppl':>9} {'s/epoch':>8} {'tokens/s':>9} {'ppl/torch':>9} {'speed/torch':>11}")
for name, r in runs:
    if r is None:
        print(f"{name:<11} (no log: the run failed, see its .out file)")
        continue
    common = min(len(r["valid"]), len(ref["valid"]) if ref else 0)  # same epoch for both
    ppl_ratio = ratio(r["valid"][common - 1], ref["valid"][common - 1]) if common else nan
    speed = ratio(r["tok_s"], ref["tok_s"] if ref else nan)
    v = [f"{x:.2f}" for x in r["valid"]] + ["-"] * (epochs - len(r["valid"]))
    print(f"{name:<11}" + "".join(f" {x:>9}" for x in v) +
          f" {r['test']:>9.2f} {r['s_epoch']:>8.1f} {r['tok_s']:>9.0f} {ppl_ratio:>9.3f}"
          f" {speed:>10.2f}x")
print("ppl/torch: validation perplexity over PyTorch's at the last epoch both reached; speed/torch: training tokens/s "
      "over PyTorch's;\ns/epoch: wall time per epoch including its validation (dsf's first "
      "epoch also includes loading the data).")
PY
[ -z "$failed" ] || { echo "failed runs:$failed" >&2; exit 1; }
