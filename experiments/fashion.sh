#!/bin/sh
# experiments/fashion.sh [--tasks "seq perm"] [--runs "bptt dsf:linspace ..."] [--epochs N]
#                        [--hidden H] [--cell gru] [--jobs N] [--ckpt-dir D] [--quick]
#                        [common options]
#
# Sequential and permuted Fashion-MNIST (`dsf classify`: 784 steps, one pixel a
# step, the class read from the last state, so every bit of credit travels the
# whole sequence back). One run per task and method, named TASK_METHOD[_FEEDBACK],
# GRU 1 x H (default 128), Adam lr 1e-3, clip 1, batch 128, seed 1; a checkpoint
# every epoch, resumed when the study runs again (a larger --epochs extends it).
# With --cell lstm or rnn the names are TASK_CELL_METHOD[_FEEDBACK].
# Writes
#   OUT/table.md     one row per run: epochs, best validation accuracy, test
#                    accuracy (finished runs), minutes per epoch, pixels/s
#   OUT/fashion.csv  every validation: run, epoch, loss, accuracy
#   OUT/fashion.png  validation accuracy against epoch, one panel per task
#   OUT/logs/NAME.*  each run's CSV log and output
#
#   --tasks S      default "seq perm"
#   --runs S       methods, dsf with its feedback after a colon (default
#                  "bptt dsf:linspace dsf:uniform dsf:linspace+2 ft")
#   --epochs N     default 10
#   --jobs N       runs at once (default 2), each with --threads threads (default 1)
#   --ckpt-dir D   where the checkpoints go (default OUT/logs; not committed)
#   --quick        1,024 images of each split, 2 epochs, hidden 32 (minutes)
# Common options (experiments/common.sh): --out DIR --threads N --data DIR --force.
set -eu
cd "$(dirname "$0")/.."
usage() { sed -n '2,26s/^# \{0,1\}//p' experiments/fashion.sh; }
. experiments/common.sh
THREADS=1
parse_common fashion "$@"
TASKS="seq perm" RUNS="bptt dsf:linspace dsf:uniform dsf:linspace+2 ft" EPOCHS=10 HIDDEN=128
CELL=gru JOBS=2 CKPT=""
study_options fashion 'tasks:TASKS runs:RUNS epochs:EPOCHS hidden:HIDDEN cell:CELL jobs:JOBS ckpt-dir:CKPT'
[ -n "$DATA" ] || DATA=/usr/share/datasets/fashion-mnist
[ -d "$DATA" ] || { echo "fashion.sh: no $DATA (apt-get install dataset-fashion-mnist)" >&2; exit 2; }
[ -n "$CKPT" ] || CKPT=$OUT/logs
mkdir -p "$CKPT"
record_machine "$@"
extra=""
if [ -n "$QUICK" ]; then EPOCHS=2 HIDDEN=32 extra="--limit 1024"; fi
tag=epochs=$EPOCHS

queue_start
for task in $TASKS; do
    for r in $RUNS; do
        m=${r%%:*} fb=""
        [ "$m" = "$r" ] || fb=${r#*:}
        name=${task}_$m
        [ "$CELL" = gru ] || name=${task}_${CELL}_$m  # GRU runs keep their old names
        [ -z "$fb" ] || name=${name}_$(echo "$fb" | tr ':,+' '__p')
        fresh="--task $task --method $m --cell $CELL --hidden $HIDDEN --seed 1 $extra"
        [ -z "$fb" ] || fresh="$fresh --feedback $fb"
        queue_run "$name" "$tag" "$CKPT/$name.safetensors" "classify --data $DATA" "$fresh" \
            "--epochs $EPOCHS --log-every 50 --threads $THREADS"
    done
done
run_queue "$JOBS"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

"$PY" experiments/plot.py fashion "$OUT"
