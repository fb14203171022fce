#!/bin/sh
# bench/scaling.sh: tokens/s of bptt, dsf and ft against the sequence length T
# (H = 1024) and against the hidden size H (T = 128), GRU, 1 layer, vocab 256,
# emb 256, batch 32, as markdown tables (docs/SPEED.md). A few minutes on 2 cores:
# few steps for the big shapes; REPS runs each, the best kept.
#
#   sh bench/scaling.sh               THREADS=2 REPS=1 DSF=build/dsf
DSF=${DSF:-build/dsf}
THREADS=${THREADS:-2}
REPS=${REPS:-1}
[ -x "$DSF" ] || { echo "scaling.sh: $DSF not built (make)"; exit 1; }

# tok ARGS...: the best tokens/s of REPS runs of dsf bench ARGS
tok() {
    top=0
    for r in $(seq "$REPS"); do
        v=$("$DSF" bench --threads "$THREADS" --gemm-size 256 "$@" | awk '/^tokens\/s /{ print $2 }')
        [ -n "$v" ] || { echo "scaling.sh: dsf bench $* failed" >&2; exit 1; }
        top=$(awk -v a="$v" -v b="$top" 'BEGIN { print (a > b ? a : b) }')
    done
    echo "$top"
}

# row LABEL ARGS...: one table row, the three methods and the ratios
row() {
    label=$1; shift
    b=$(tok "$@" --method bptt) || exit 1
    d=$(tok "$@" --method dsf) || exit 1
    f=$(tok "$@" --method ft) || exit 1
    awk -v l="$label" -v b="$b" -v d="$d" -v f="$f" \
        'BEGIN { printf "| %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", l, b, d, f, d / b, f / b }'
}

steps_for() {  # fewer steps as a step gets longer: $1 = relative cost
    if [ "$1" -le 1 ]; then echo "--steps 5 --warmup 1"; elif [ "$1" -le 4 ]; then echo "--steps 2 --warmup 1"; else echo "--steps 1 --warmup 1"; fi
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $THREADS threads, $("$DSF" version | sed 's/.*matrix products by //')"
echo "load before: $(uptime | sed 's/.*load average: //')"
echo
echo "tokens/s against T (H = 1024, B = 32, vocab 256, emb 256, 1 layer):"
echo
echo "| T | bptt | dsf | ft | dsf/bptt | ft/bptt |"
echo "|---|---|---|---|---|---|"
for T in 32 64 128 256 512 1024 2048; do
    row "$T" --vocab 256 --emb 256 --hidden 1024 --layers 1 --batch 32 --seq "$T" $(steps_for $((T / 128))) || exit 1
done
echo
echo "tokens/s against H (T = 128, B = 32, vocab 256, emb 256, 1 layer):"
echo
echo "| H | bptt | dsf | ft | dsf/bptt | ft/bptt |"
echo "|---|---|---|---|---|---|"
for H in 128 256 512 1024 2048; do
    row "$H" --vocab 256 --emb 256 --hidden "$H" --layers 1 --batch 32 --seq 128 $(steps_for $((H * H / 1048576))) || exit 1
done
echo
echo "load after: $(uptime | sed 's/.*load average: //')"
