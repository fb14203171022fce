#!/bin/sh
# experiments/wikitext.sh [--quick] [--epochs N] [--config LxH] [--cell C]
#                         [--methods "bptt dsf ft"] [--feedback F] [common options]
#
# WikiText-2 with the block architecture (--arch block: x + RNN(LN x), x + MLP(LN x),
# final LayerNorm, tied decoder; vocabulary 33,278) trained with each gradient
# method: AdamW lr 1e-3 (5% warm-up), clip 0.25, batch 16 x seq 64, seed 1. Writes
#   OUT/wikitext.csv   one row per run and evaluation (as ptb_methods.sh)
#   OUT/wikitext.png   validation and training perplexity against tokens and time
#
#   --quick        200 steps per run, 2 x 128, no test split (about 6 min on 2 cores)
#   --epochs N     epochs per run (default 4)
#   --config LxH   blocks x width (default 2x256; 2x128 with --quick)
#   --cell C       gru, lstm or rnn (default gru)
#   --methods S    default "bptt dsf ft"
#   --feedback F   dsf's feedback (default uniform:0,0.5)
# Common options (experiments/common.sh): --out DIR --threads N --data DIR --force.
# Full size on a 2-core Zen 4: about 17 min per epoch and run, some 3.5 h.
# WikiText-103's training split is not at hand here (../shared/data/README.md);
# with it, the same command with --data DIR_WITH_WIKI103 runs the larger study.
set -eu
cd "$(dirname "$0")/.."
usage() { sed -n '2,21s/^# \{0,1\}//p' experiments/wikitext.sh; }
. experiments/common.sh
parse_common wikitext "$@"
EPOCHS=4 CONFIG=2x256 CELL=gru METHODS="bptt dsf ft" FEEDBACK="uniform:0,0.5"
[ -z "$QUICK" ] || CONFIG=2x128
study_options wikitext 'epochs:EPOCHS config:CONFIG cell:CELL methods:METHODS feedback:FEEDBACK'
[ -n "$DATA" ] || DATA=../shared/data/wikitext-2
[ -d "$DATA" ] || { echo "wikitext.sh: no data directory $DATA (give --data DIR)" >&2; exit 2; }
record_machine "$@"
if [ -n "$QUICK" ]; then len="--steps 200 --log-every 50 --no-test"; else len="--epochs $EPOCHS --log-every 200"; fi
L=${CONFIG%x*} H=${CONFIG#*x}
for m in $METHODS; do
    fb=""
    [ "$m" != dsf ] || fb="--feedback $FEEDBACK"
    # shellcheck disable=SC2086
    run_train "${CELL}${CONFIG}_$m" --data "$DATA" --level word --arch block --cell "$CELL" --layers "$L" \
        --emb "$H" --hidden "$H" --batch 16 --seq 64 --optim adamw --lr 1e-3 --clip 0.25 --seed 1 \
        --threads "$THREADS" --method "$m" $fb $len
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
"$PY" experiments/plot.py wikitext "$OUT"
