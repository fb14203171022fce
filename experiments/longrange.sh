#!/bin/sh
# experiments/longrange.sh [--quick] [--tasks "copy add recall"] [--delays "D ..."]
#                          [--steps N] [--seeds "S ..."] [--methods "bptt dsf dsf-diag ft"]
#                          [--jobs N] [common options]
#
# Long-range tasks (`dsf task`: copy, add, recall; docs/USAGE.md "Long-range tasks"):
# held-out accuracy at the answers against the delay, for each gradient method,
# which shows where truncating the gradient fails. Every run of a task, delay and
# seed has the same model (1-layer GRU, emb 32, hidden 64), initial weights,
# training sequences, steps (batch 32), AdamW lr 3e-3, clip 1 and held-out set
# (1000 sequences); only the gradient method differs:
#   bptt      exact back-propagation through the whole sequence
#   dsf       diagonal state feedback a ~ U[0,1] (the default)
#   dsf-diag  dsf with the exact Jacobian diagonal (--feedback diag)
#   ft        fully truncated: no gradient through the recurrence
# Writes
#   OUT/longrange.csv  task,delay,method,seed,steps,seconds,token_acc,seq_acc
#   OUT/longrange.png  accuracy against delay, a column per task (token accuracy
#                      above, sequence accuracy below), a line per method
#   OUT/table.md       the token accuracies as tables (printed too)
#   OUT/logs/          each run's `dsf task` output and its --log CSV
#
#   --quick        delays 1 3 10 30 100, 2000 steps, seed 1: 60 runs, about 5 min
#                  on one core of a 2-core Zen 4
#   --delays S     default "0 1 2 5 10 20 50 100 200 500"
#   --steps N      steps per run (default 5000)
#   --seeds S      default "1 2 3" (the plot shows the mean and the min-max range)
#   --tasks S      default "copy add recall"
#   --methods S    default "bptt dsf dsf-diag ft"
#   --jobs N       runs at once (default 1), each with --threads threads
# Common options (experiments/common.sh): --out DIR --threads N (default 1 here)
# --force. A finished run is kept when the study is run again.
# Full size: 360 runs, about 4 h on one core (2 h with --jobs 2 on two cores).
set -eu
cd "$(dirname "$0")/.."
usage() { sed -n '2,35s/^# \{0,1\}//p' experiments/longrange.sh; }
# This study's options first (their values hold spaces), the rest for common.sh.
ARGS_ALL="$*"
O_TASKS="" O_DELAYS="" O_STEPS="" O_SEEDS="" O_METHODS="" JOBS=1 rest=""
while [ $# -gt 0 ]; do
    case $1 in
    --tasks) O_TASKS=$2; shift ;;
    --delays) O_DELAYS=$2; shift ;;
    --steps) O_STEPS=$2; shift ;;
    --seeds) O_SEEDS=$2; shift ;;
    --methods) O_METHODS=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    *) rest="$rest $1" ;;
    esac
    shift
done
. experiments/common.sh
THREADS=1
# shellcheck disable=SC2086
parse_common longrange $rest
[ -z "$REST" ] || { echo "longrange.sh: unknown option$REST" >&2; usage >&2; exit 2; }
TASKS="copy add recall" DELAYS="0 1 2 5 10 20 50 100 200 500" STEPS=5000 SEEDS="1 2 3"
METHODS="bptt dsf dsf-diag ft"
[ -z "$QUICK" ] || { DELAYS="1 3 10 30 100"; STEPS=2000; SEEDS=1; }
TASKS=${O_TASKS:-$TASKS} DELAYS=${O_DELAYS:-$DELAYS} STEPS=${O_STEPS:-$STEPS}
SEEDS=${O_SEEDS:-$SEEDS} METHODS=${O_METHODS:-$METHODS}
ALL_ARGS=$ARGS_ALL  # what record_machine writes as the command
record_machine "$ARGS_ALL"
EVERY=$((STEPS / 10))
[ "$EVERY" -ge 1 ] || EVERY=1

# One line per run still to do, in $OUT/runs.txt: NAME and its dsf task arguments.
: >"$OUT/runs.txt"
for task in $TASKS; do
    for d in $DELAYS; do
        for m in $METHODS; do
            case $m in
            bptt | dsf | ft) flags="--method $m" ;;
            dsf-diag) flags="--method dsf --feedback diag" ;;
            *) echo "longrange.sh: unknown method $m (bptt, dsf, dsf-diag or ft)" >&2; exit 2 ;;
            esac
            for s in $SEEDS; do
                name=${task}_d${d}_${m}_s$s
                if [ -z "$FORCE" ] && grep -q " accuracy [0-9.]*$" "$OUT/logs/$name.out" 2>/dev/null; then
                    continue
                fi
                echo "$name --task $task --delay $d $flags --seed $s --cell gru --layers 1 --emb 32 --hidden 64 --batch 32 --optim adamw --lr 3e-3 --clip 1 --steps $STEPS --eval-every $EVERY --eval-size 1000 --threads $THREADS --log $OUT/logs/$name.csv" >>"$OUT/runs.txt"
            done
        done
    done
done
echo "$(wc -l <"$OUT/runs.txt") runs to do, $JOBS at a time"
# shellcheck disable=SC2016
xargs -P "$JOBS" -L 1 sh -c 'name=$1; shift; echo "   $name"; "$0" task "$@" >"'"$OUT"'/logs/$name.out" 2>&1 || echo "   $name failed: $(tail -n 1 "'"$OUT"'/logs/$name.out")"' "$DSF" <"$OUT/runs.txt"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

# The results, in the order of the sweep, from each run's last line.
echo "task,delay,method,seed,steps,seconds,token_acc,seq_acc" >"$OUT/longrange.csv"
for task in $TASKS; do
    for d in $DELAYS; do
        for m in $METHODS; do
            for s in $SEEDS; do
                tail -n 1 "$OUT/logs/${task}_d${d}_${m}_s$s.out" | awk -v t="$task" -v d="$d" -v m="$m" -v s="$s" '
                    / accuracy [0-9.]+$/ { for (i = 1; i < NF; i++) v[$i] = $(i + 1)
                        print t "," d "," m "," s "," v["steps"] "," v["seconds"] "," v["accuracy"] "," v["seq_acc"] }'
            done
        done
    done
done >>"$OUT/longrange.csv"
"$PY" experiments/plot_longrange.py "$OUT"
