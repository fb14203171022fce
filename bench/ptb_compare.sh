#!/bin/sh
# bench/ptb_compare.sh [-e EPOCHS] [-d DATA] [-o OUT] [-t THREADS] [-m "bptt dsf ft"] [-q]
#
# The PTB small recipe (2x200 GRU, SGD lr 20, clip 0.25, B = 20, T = 35, no
# dropout) trained with each dsf method and with PyTorch (bench/ptb_torch.py) on
# the same machine, one after the other, then a table of perplexities, times and
# ratios to PyTorch. Times are wall-clock from the start of training to the end of
# each epoch's validation. -q: 50 steps only, to check that everything runs.
set -eu
cd "$(dirname "$0")/.."
EPOCHS=1 DATA=../shared/data/ptb OUT=bench/out THREADS=2 METHODS="bptt dsf ft" QUICK=""
while getopts e:d:o:t:m:q opt; do
    case $opt in
    e) EPOCHS=$OPTARG ;; d) DATA=$OPTARG ;; o) OUT=$OPTARG ;; t) THREADS=$OPTARG ;;
    m) METHODS=$OPTARG ;; q) QUICK=1 ;;
    *) sed -n 2,8p "$0"; exit 2 ;;
    esac
done
mkdir -p "$OUT"
[ -x build/dsf ] || make
recipe="--layers 2 --emb 200 --hidden 200 --batch 20 --seq 35 --lr 20 --clip 0.25 --threads $THREADS --seed 1"
length="--epochs $EPOCHS" torch_extra=""
[ -n "$QUICK" ] && length="--steps 50" torch_extra="--max-steps 50"
{
    echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads $THREADS"
    build/dsf version
    /usr/bin/python3 -c "import torch; print('torch', torch.__version__)"
} | tee "$OUT/machine.txt"
for m in $METHODS; do
    echo "== dsf $m" >&2
    build/dsf train --data "$DATA" --level word --cell gru --optim sgd $recipe --method $m \
        $length --log "$OUT/dsf_$m.csv" >"$OUT/dsf_$m.out" || true
done
echo "== torch" >&2
/usr/bin/python3 bench/ptb_torch.py --data "$DATA" --layers 2 --emb 200 --hidden 200 --batch 20 \
    --seq 35 --lr 20 --clip 0.25 --epochs "$EPOCHS" --threads "$THREADS" --seed 1 \
    --log "$OUT/torch.csv" $torch_extra >"$OUT/torch.out"

/usr/bin/python3 - "$OUT" $METHODS <<'PY'
import csv, math, sys
out, methods = sys.argv[1], sys.argv[2:]
def read(path):
    rows = list(csv.DictReader(open(path)))
    valid = [r for r in rows if r["kind"] == "valid"]
    test = [r for r in rows if r["kind"] == "test"]
    steps = int(valid[-1]["step"]) if valid else 0
    t = float(valid[-1]["elapsed_s"]) if valid else float("nan")
    return {"valid": [float(r["ppl"]) for r in valid], "test": float(test[-1]["ppl"]) if test else float("nan"),
            "s_per_epoch": t / max(1, len(valid)), "tok_s": steps * 20 * 35 / t if t == t else float("nan")}
runs = {f"dsf {m}": read(f"{out}/dsf_{m}.csv") for m in methods}
runs["torch bptt"] = read(f"{out}/torch.csv")
ref = runs["torch bptt"]
print(f"{'run':<11} {'valid ppl by epoch':<28} {'test ppl':>9} {'s/epoch':>8} {'tokens/s':>9} {'ppl/torch':>9} {'speed/torch':>11}")
for name, r in runs.items():
    v = " ".join(f"{x:.2f}" for x in r["valid"])
    ratio = r["valid"][-1] / ref["valid"][-1] if r["valid"] and ref["valid"] else float("nan")
    print(f"{name:<11} {v:<28} {r['test']:>9.2f} {r['s_per_epoch']:>8.1f} {r['tok_s']:>9.0f} {ratio:>9.3f} {ref['s_per_epoch'] / r['s_per_epoch']:>10.2f}x")
PY
