#!/bin/sh
# experiments/seqlen.sh [--quick] [--lengths "T ..."] [--tokens N] [--steps N]
#                       [--methods "bptt dsf ft"] [--feedback F] [common options]
#
# Sequence length: the PTB small model (word level, 2 x 200 GRU, seed 1) trained
# with windows of T steps for each method, by AdamW (lr 2e-3, 5% warm-up, clip
# 0.25: SGD at lr 20 diverges in its first hundred steps with two streams of
# 1024). Every run sees the same tokens per step (B x T = --tokens, so
# B = tokens / T) and takes the same number of steps: only the truncation length
# and with it the shape of the work change. Writes
#   OUT/seqlen.csv   T, B, method, steps, validation and test perplexity,
#                    training tokens/s and milliseconds per step
#   OUT/seqlen.png   perplexity and milliseconds per step against T
#
#   --quick        T = 64 256 1024, 2048 tokens per step, 100 steps (about 10 min)
#   --lengths S    default "64 128 256 512 1024"
#   --tokens N     tokens per step B x T (default 4096)
#   --steps N      steps per run (default 454: two epochs of PTB's 0.93 M tokens)
#   --methods S    default "bptt dsf ft"
#   --feedback F   dsf's feedback (default uniform:0,0.5)
# Common options (experiments/common.sh): --out DIR --threads N --data DIR --force.
# Full size on a 2-core Zen 4: about 5 min per run, 75 min in all.
set -eu
cd "$(dirname "$0")/.."
usage() { sed -n '2,23s/^# \{0,1\}//p' experiments/seqlen.sh; }
. experiments/common.sh
parse_common seqlen "$@"
LENGTHS="64 128 256 512 1024" TOKENS=4096 STEPS=454 METHODS="bptt dsf ft" FEEDBACK="uniform:0,0.5"
[ -z "$QUICK" ] || { LENGTHS="64 256 1024"; TOKENS=2048; STEPS=100; }
study_options seqlen 'lengths:LENGTHS tokens:TOKENS steps:STEPS methods:METHODS feedback:FEEDBACK'
[ -n "$DATA" ] || DATA=../shared/data/ptb
[ -d "$DATA" ] || { echo "seqlen.sh: no data directory $DATA (give --data DIR)" >&2; exit 2; }
record_machine "$@"
for T in $LENGTHS; do
    B=$((TOKENS / T))
    [ "$B" -ge 1 ] && [ $((B * T)) -eq "$TOKENS" ] ||
        { echo "seqlen.sh: --tokens $TOKENS is not a multiple of T = $T" >&2; exit 2; }
    for m in $METHODS; do
        fb=""
        [ "$m" != dsf ] || fb="--feedback $FEEDBACK"
        # shellcheck disable=SC2086
        run_train "T${T}_$m" --data "$DATA" --level word --cell gru --layers 2 --emb 200 --hidden 200 \
            --batch "$B" --seq "$T" --optim adamw --lr 2e-3 --clip 0.25 --seed 1 --threads "$THREADS" --method "$m" $fb \
            --steps "$STEPS" --log-every $((STEPS / 4))
    done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
"$PY" experiments/plot.py seqlen "$OUT"
