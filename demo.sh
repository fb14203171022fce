#!/bin/sh
# demo.sh BUILD: the built-in demonstration behind `make demo`. Trains the same
# GRU on a generated character-level task with each gradient method, side by
# side, then samples from the DSF model. Needs no data and no network.
#
# The task (builtin:recall:D): every line is a key letter, '.', D random filler
# letters, '=', and the key again. Only a model that carries the key across D
# steps can predict the letter after '='; fillers are pure noise. So the best
# possible bits per character are known:
#   with memory      (3 + 3D) / (D + 5)      without memory   (6 + 3D) / (D + 5)
set -eu
BUILD=${1:-build}
DSF="$BUILD/dsf"
D=${DEMO_DELAY:-6}
STEPS=${DEMO_STEPS:-600}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common="--data builtin:recall:$D --level char --layers 1 --emb 16 --hidden 64 --batch 32 --seq 32 \
--optim adamw --lr 0.01 --steps $STEPS --log-every 200 --threads 2 --seed 1"

echo "dsf demo: a 1-layer GRU learns to recall a letter across $D random letters"
echo "(builtin:recall:$D, $STEPS AdamW steps per method; about 30 s each on 2 cores)"
echo
for m in bptt dsf ft; do
    echo "== $m"
    start=$(date +%s.%N)
    "$DSF" train $common --method $m --save "$out/$m.safetensors" --log "$out/$m.csv" >"$out/$m.out"
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "   %.1f s\n", e - s }' >"$out/$m.time"
    cat "$out/$m.out" "$out/$m.time"
done
echo
awk -v d="$D" 'BEGIN {
    printf "best possible: %.3f bpc with memory of the key, %.3f bpc without\n",
        (3 + 3 * d) / (d + 5), (6 + 3 * d) / (d + 5) }'
printf "%-6s %12s %10s\n" method "test bpc" "time"
for m in bptt dsf ft; do
    bpc=$(sed -nE 's/.* bpc ([0-9.]+).*/\1/p' "$out/$m.out" | head -n 1)
    printf "%-6s %12s %10s\n" "$m" "$bpc" "$(tr -d ' ' <"$out/$m.time")"
done
echo
echo "a sample from the dsf model (each line should end with its first letter):"
"$DSF" sample --ckpt "$out/dsf.safetensors" --tokens 120 --temperature 0.5 --seed 2
