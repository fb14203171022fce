#!/bin/sh
# bench/backward_cost.sh [-t THREADS] [-T "64 128 ..."] [-s STEPS]
#
# The cost of the backward pass per method against the sequence length, at
# H = 1024, B = 32 (one GRU layer, vocabulary 256): for bptt, ft and dsf (seq and
# blelloch scans) the milliseconds per step of the state-gradient recurrence,
# of the parameter gradients, and their sum (the recurrent layer's whole
# backward pass), from `dsf bench`'s phase timers. One table row per T.
set -eu
cd "$(dirname "$0")/.."
THREADS=2 TS="64 128 256 512 1024 2048" STEPS=2
while getopts t:T:s:h opt; do
    case $opt in
    t) THREADS=$OPTARG ;;
    T) TS=$OPTARG ;;
    s) STEPS=$OPTARG ;;
    *) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    esac
done
DSF=${DSF:-build/dsf}
[ -x "$DSF" ] || make
echo "# backward pass of one GRU layer, H = 1024, B = 32, $THREADS threads, ms per step (state gradient + parameter gradients = backward); load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "| T | bptt | ft | dsf seq | dsf blelloch |\n|---|---|---|---|---|\n"
for T in $TS; do
    row="| $T |"
    for run in "bptt seq" "ft seq" "dsf seq" "dsf blelloch"; do
        set -- $run
        out=$("$DSF" bench --method "$1" --scan "$2" --seq "$T" --steps "$STEPS" --warmup 1 \
              --threads "$THREADS" --gemm-size 256 2>&1)
        sg=$(echo "$out" | sed -nE 's/^ *state-gradient recurrence +([0-9.]+) ms.*/\1/p')
        pg=$(echo "$out" | sed -nE 's/^ *parameter gradients +([0-9.]+) ms.*/\1/p')
        row="$row $(awk -v a="$sg" -v b="$pg" 'BEGIN { printf "%.0f + %.0f = %.0f", a, b, a + b }') |"
    done
    echo "$row"
done
