#!/bin/sh
# experiments/ptb_methods.sh [--quick] [--epochs N] [--configs "LxH ..."]
#                            [--methods "bptt dsf ft"] [--feedback F] [--lr R] [common options]
#
# PTB method comparison: word-level GRU language models of several widths and
# depths (embedding = hidden) trained with each gradient method, otherwise the
# small recipe (SGD lr 20 divided by 4 on a validation plateau, clip 0.25,
# batch 20 x seq 35, no dropout, seed 1). Writes
#   OUT/ptb_methods.csv        one row per run and epoch: config, method, epoch,
#                              valid and test perplexity, seconds, tokens/s
#   OUT/ptb_methods.png        validation perplexity against epoch and against
#                              wall-clock time, one panel per configuration
#   OUT/logs/CONFIG_METHOD.*   each run's `dsf train` log (CSV) and output
#
#   --quick        200 steps per run, configs 1x256 2x256 (about 8 min on 2 idle cores)
#   --epochs N     epochs per run (default 6)
#   --configs S    layers x hidden (default "1x256 2x256 2x512 3x256")
#   --methods S    default "bptt dsf ft"
#   --feedback F   dsf's feedback (default uniform:0,0.5: the paper's U[0,1]
#                  diverges at lr 20 on this recipe, see docs/RESULTS.md)
#   --lr R         the initial learning rate (default 20)
# Common options (experiments/common.sh): --out DIR --threads N --data DIR --force.
# Cost of the full size on a 2-core Zen 4: about 3 to 9 min per epoch and run,
# some 10 h for the four configs x three methods x 6 epochs.
set -eu
cd "$(dirname "$0")/.."
usage() { sed -n '2,25s/^# \{0,1\}//p' experiments/ptb_methods.sh; }
. experiments/common.sh
parse_common ptb_methods "$@"
EPOCHS=6 CONFIGS="1x256 2x256 2x512 3x256" METHODS="bptt dsf ft" FEEDBACK="uniform:0,0.5" LR=20
[ -z "$QUICK" ] || CONFIGS="1x256 2x256"
study_options ptb_methods 'epochs:EPOCHS configs:CONFIGS methods:METHODS feedback:FEEDBACK lr:LR'
[ -n "$DATA" ] || DATA=../shared/data/ptb
[ -d "$DATA" ] || { echo "ptb_methods.sh: no data directory $DATA (give --data DIR)" >&2; exit 2; }
record_machine "$@"
if [ -n "$QUICK" ]; then len="--steps 200 --log-every 50"; else len="--epochs $EPOCHS --log-every 100"; fi
for c in $CONFIGS; do
    L=${c%x*} H=${c#*x}
    for m in $METHODS; do
        fb=""
        [ "$m" != dsf ] || fb="--feedback $FEEDBACK"
        # shellcheck disable=SC2086  # option lists split on purpose
        run_train "${c}_$m" --data "$DATA" --level word --cell gru --layers "$L" --emb "$H" --hidden "$H" \
            --batch 20 --seq 35 --lr "$LR" --clip 0.25 --seed 1 --threads "$THREADS" --method "$m" $fb $len
    done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
"$PY" experiments/plot.py ptb "$OUT"
