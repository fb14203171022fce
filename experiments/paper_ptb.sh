#!/bin/sh
# experiments/paper_ptb.sh [--recipe paper-ptb|paper-wikitext] [--epochs N]
#                          [--configs "LxH ..."] [--methods "bptt dsf ft"]
#                          [--feedbacks "linspace ..."] [--seeds "1 ..."] [--evals N]
#                          [--stop-at STEP] [--jobs N] [--quick] [common options]
#
# The paper's studies with the authors' recipes. By default PTB word level
# (`dsf train --recipe paper-ptb`: residual GRU stack, every sentence from a zero
# state and padded, Adam lr 1e-3 with L2 1e-4, lr x 0.1 every 10 epochs, 30 epochs,
# the best of 50 validations spread over the run; docs/RECIPES.md); with --recipe
# paper-wikitext (or experiments/paper_wikitext.sh) WikiText-2 with their WikiText
# recipe (block architecture, chunks of 256 tokens, cosine schedule, 5 epochs). One
# run per config, method, dsf feedback and seed, named CONFIG_METHOD[_FEEDBACK]_sSEED.
# Each run saves a checkpoint every epoch (and when interrupted) in
# CKPT/NAME.safetensors and is resumed from it, so the study can be stopped and
# started again at any time; a larger --epochs extends finished runs. Writes
#   OUT/table.md     one row per run: epochs done, best validation perplexity,
#                    test perplexity (finished runs), minutes per epoch, tokens/s
#   OUT/paper.csv    the validations of every run: name, epoch, step, ppl, seconds
#   OUT/paper.png    validation perplexity against epoch, one panel per config
#   OUT/logs/NAME.*  each run's `dsf train` log (CSV), output and checkpoints
#
#   --recipe R      paper-ptb (default) or paper-wikitext
#   --epochs N      epochs per run (default the recipe's: 30, 5)
#   --configs S     layers x hidden (default "1x256 3x256"; paper-wikitext "3x256")
#   --methods S     default "bptt dsf ft"
#   --feedbacks S   dsf's feedbacks, one run each (default "linspace", the authors')
#   --seeds S       default "1"
#   --evals N       validations over the run (default the recipe's 50; paper-wikitext
#                   10: WikiText-2's validation split is a tenth of its training
#                   split, and 50 passes over it would cost more than the training)
#   --stop-at STEP  stop each run after this step, as if interrupted, keeping the
#                   schedule and validation steps of the full --epochs run: the run is
#                   partial and extends with a later call without --stop-at. At the
#                   recipe's PTB sizes (329 steps an epoch, a validation every 197
#                   steps) 3349 is the 17th validation, epoch 10.2, the first after
#                   the learning rate's first drop
#   --jobs N        runs at once (default 3; paper-wikitext 1: a 3x256 run holds
#                   6.7 GiB), each with --threads threads (default 1; 2 for
#                   paper-wikitext)
#   --ckpt-dir D    where the checkpoints go (default OUT/logs; they are not committed:
#                   66 MB a PTB 1x256 run, and a clone of the project does not have them)
#   --quick         a few steps per run, 2 validations, to see that it runs (minutes)
# Common options (experiments/common.sh): --out DIR --threads N --data DIR --force.
# Cost on 2 cores: a PTB 1x256 epoch 3.3-4 min alone on 2 threads (docs/SPEED.md),
# 8 min with three runs side by side; a WikiText-2 3x256 epoch is about seven times
# the products of a PTB 1x256 epoch (2.1 M tokens, a head of 33,278 words).
set -eu
cd "$(dirname "$0")/.."
usage() { sed -n '2,47s/^# \{0,1\}//p' experiments/paper_ptb.sh; }
. experiments/common.sh
THREADS=""
parse_common paper_ptb "$@"
RECIPE=paper-ptb EPOCHS="" CONFIGS="" METHODS="bptt dsf ft" FEEDBACKS=linspace SEEDS=1 EVALS=""
JOBS="" CKPT="" STOP=""
study_options paper_ptb 'recipe:RECIPE epochs:EPOCHS configs:CONFIGS methods:METHODS feedbacks:FEEDBACKS seeds:SEEDS evals:EVALS jobs:JOBS ckpt-dir:CKPT stop-at:STOP'
case $RECIPE in
paper-ptb)
    : "${EPOCHS:=30}" "${CONFIGS:=1x256 3x256}" "${EVALS:=50}" "${JOBS:=3}" "${THREADS:=1}"
    : "${DATA:=../shared/data/ptb}"
    quick="--steps 40" every=50 ;;
paper-wikitext)
    : "${EPOCHS:=5}" "${CONFIGS:=3x256}" "${EVALS:=10}" "${JOBS:=1}" "${THREADS:=2}"
    : "${DATA:=../shared/data/wikitext-2}"
    quick="--steps 6 --batch 16 --eval-batch 16" every=10 ;;
*) echo "paper_ptb.sh: --recipe is paper-ptb or paper-wikitext, not $RECIPE" >&2; exit 2 ;;
esac
[ -n "$CKPT" ] || CKPT=$OUT/logs
mkdir -p "$CKPT"
[ -d "$DATA" ] || { echo "paper_ptb.sh: no data directory $DATA (give --data DIR)" >&2; exit 2; }
echo "$RECIPE" >"$OUT/recipe.txt"
record_machine "$@"
if [ -n "$QUICK" ]; then
    len="$quick --evals 2 --log-every 2 --no-test" tag=quick
else
    len="--epochs $EPOCHS --evals $EVALS --log-every $every" tag=epochs=$EPOCHS
    # A run stopped at --stop-at exits 0 like a finished one: its tag says where it
    # stopped, so that a later call without --stop-at extends it.
    [ -z "$STOP" ] || { len="$len --stop-at $STOP"; tag=$tag,stop-at=$STOP; }
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
                fresh="--recipe $RECIPE --layers $L --hidden $H --method $m --seed $s"
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
