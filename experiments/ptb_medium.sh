#!/bin/sh
# experiments/ptb_medium.sh [--epochs N] [--cells "lstm gru"] [--methods "bptt dsf"]
#                           [--feedback F] [--jobs N] [common options]
#
# PTB with the medium recipe: 2 layers, embedding = hidden = 650, dropout 0.5,
# tied decoder, SGD lr 20 divided by 4 on a validation plateau, clip 0.25,
# batch 20 x seq 35, seed 1; one run per cell and method. Each run saves a
# checkpoint every epoch (OUT/logs/NAME.safetensors) and is resumed from it, so
# an interrupted study loses at most one epoch per run, and a study run again
# with a larger --epochs goes on from where it stopped. Writes
#   OUT/ptb_medium.csv         one row per run and epoch: cell, method, epoch,
#                              validation and test perplexity, seconds
#   OUT/table.md               one row per run: best validation, test, s per epoch
#   OUT/ptb_medium.png         validation perplexity against tokens and wall-clock
#   OUT/logs/NAME.*            each run's `dsf train` log (CSV), output, checkpoint
#
#   --epochs N     epochs per run (default 39, the published recipe's length)
#   --cells S      default "lstm gru"
#   --methods S    default "bptt dsf"
#   --feedback F   dsf's feedback (default diag, the best on the small recipe:
#                  docs/RESULTS.md)
#   --jobs N       runs at once (default 2), each with --threads threads (default 1)
#   --quick        60 steps per run, to see that it runs (about 2 min)
# Common options (experiments/common.sh): --out DIR --threads N --data DIR --force.
# Cost on a 2-core Zen 4 with --jobs 2: about 20 to 30 min per epoch and run,
# some 40 h for the whole recipe of the four runs.
set -eu
cd "$(dirname "$0")/.."
usage() { sed -n '2,25s/^# \{0,1\}//p' experiments/ptb_medium.sh; }
. experiments/common.sh
THREADS=1
parse_common ptb_medium "$@"
EPOCHS=39 CELLS="lstm gru" METHODS="bptt dsf" FEEDBACK=diag JOBS=2
study_options ptb_medium 'epochs:EPOCHS cells:CELLS methods:METHODS feedback:FEEDBACK jobs:JOBS'
[ -n "$DATA" ] || DATA=../shared/data/ptb
[ -d "$DATA" ] || { echo "ptb_medium.sh: no data directory $DATA (give --data DIR)" >&2; exit 2; }
record_machine "$@"
if [ -n "$QUICK" ]; then
    len="--steps 60 --log-every 20 --no-test" tag=steps=60
else
    len="--epochs $EPOCHS --log-every 100" tag=epochs=$EPOCHS
fi

queue_start
for c in $CELLS; do
    for m in $METHODS; do
        fresh="--cell $c --method $m --layers 2 --emb 650 --hidden 650 --dropout 0.5 --tie --lr 20 --clip 0.25 --batch 20 --seq 35 --seed 1"
        [ "$m" != dsf ] || fresh="$fresh --feedback $FEEDBACK"
        queue_run "${c}_$m" "$tag" "$OUT/logs/${c}_$m.safetensors" "train --data $DATA" "$fresh" \
            "$len --threads $THREADS"
    done
done
run_queue "$JOBS"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

"$PY" experiments/plot.py medium "$OUT"
