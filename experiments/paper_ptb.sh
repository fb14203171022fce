#!/bin/sh
# experiments/paper_ptb.sh [--epochs N] [--configs "LxH ..."] [--methods "bptt dsf ft"]
#                          [--feedbacks "linspace ..."] [--seeds "1 ..."] [--jobs N]
#                          [--quick] [common options]
#
# PTB word level with the authors' recipe (`dsf train --recipe paper-ptb`: residual
# GRU stack, every sentence from a zero state and padded, Adam lr 1e-3 with L2
# 1e-4, lr x 0.1 every 10 epochs, 30 epochs, the best of 50 validations spread
# over the run; docs/RECIPES.md). One run per config,
# method, dsf feedback and seed, named CONFIG_METHOD[_FEEDBACK]_sSEED. Each run
# saves a checkpoint every epoch (and when interrupted) in OUT/logs/NAME.safetensors
# and is resumed from it, so the study can be stopped and started again at any
# time; a larger --epochs extends finished runs. Writes
#   OUT/table.md     one row per run: epochs done, best validation perplexity,
#                    test perplexity (finished runs), minutes per epoch, tokens/s
#   OUT/paper.csv    the validations of every run: name, epoch, step, ppl, seconds
#   OUT/paper.png    validation perplexity against epoch, one panel per config
#   OUT/logs/NAME.*  each run's `dsf train` log (CSV), output and checkpoints
#
#   --epochs N      epochs per run (default 30, the recipe's)
#   --configs S     layers x hidden (default "1x256 3x256")
#   --methods S     default "bptt dsf ft"
#   --feedbacks S   dsf's feedbacks, one run each (default "linspace", the authors')
#   --seeds S       default "1"
#   --jobs N        runs at once (default 3), each with --threads threads (default 1)
#   --ckpt-dir D    where the checkpoints go (default OUT/logs; they are not committed:
#                   66 MB a 1x256 run, and a clone of the project does not have them)
#   --quick         40 steps per run, 2 validations, to see that it runs (about 3 min)
# Common options (experiments/common.sh): --out DIR --threads N --data DIR --force.
# Cost on a 2-core Zen 4: about 4 min per epoch of a 1x256 run alone on 2 threads.
set -eu
cd "$(dirname "$0")/.."
usage() { sed -n '2,31s/^# \{0,1\}//p' experiments/paper_ptb.sh; }
. experiments/common.sh
THREADS=1
parse_common paper_ptb "$@"
EPOCHS=30 CONFIGS="1x256 3x256" METHODS="bptt dsf ft" FEEDBACKS=linspace SEEDS=1 JOBS=3 CKPT=""
study_options paper_ptb 'epochs:EPOCHS configs:CONFIGS methods:METHODS feedbacks:FEEDBACKS seeds:SEEDS jobs:JOBS ckpt-dir:CKPT'
[ -n "$CKPT" ] || CKPT=$OUT/logs
mkdir -p "$CKPT"
[ -n "$DATA" ] || DATA=../shared/data/ptb
[ -d "$DATA" ] || { echo "paper_ptb.sh: no data directory $DATA (give --data DIR)" >&2; exit 2; }
record_machine "$@"
if [ -n "$QUICK" ]; then
    len="--steps 40 --evals 2 --log-every 10 --no-test" tag=steps=40
else
    len="--epochs $EPOCHS --log-every 50" tag=epochs=$EPOCHS
fi

queue_start
for c in $CONFIGS; do
    L=${c%x*} H=${c#*x}
    for m in $METHODS; do
        fbs=-
        [ "$m" != dsf ] || fbs=$FEEDBACKS
        for fb in $fbs; do
            for s in $SEEDS; do
                name=${c}_$m
                [ "$fb" = - ] || name=${name}_$(echo "$fb" | tr ':,+' '__p')
                name=${name}_s$s
                fresh="--recipe paper-ptb --layers $L --hidden $H --method $m --seed $s"
                [ "$fb" = - ] || fresh="$fresh --feedback $fb"
                queue_run "$name" "$tag" "$CKPT/$name.safetensors" "train --data $DATA" "$fresh" \
                    "$len --threads $THREADS"
            done
        done
    done
done
run_queue "$JOBS"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

"$PY" experiments/plot.py paper "$OUT"
