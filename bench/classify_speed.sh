#!/bin/sh
# bench/classify_speed.sh: the speed of sequence classification over T = 784 steps
# (`dsf classify`, sequential Fashion-MNIST, a one-dimensional input, so that the
# recurrence is the whole cost): pixels/s of each gradient method, the dsf/bptt
# ratio, and the same model in PyTorch (bench/torch_classify_bench.py,
# torch.nn.GRU, Adam, clip 1) at its best: torch threads = THREADS, OpenBLAS
# single-threaded or on, both timed, the faster kept. Each figure is the best of
# REPS runs, the runs taking turns; a dsf run's figure is its faster of two
# windows of STEPS steps after one untimed window (the first holds the start-up).
#
#   sh bench/classify_speed.sh        REPS=3 THREADS=2 HIDDEN=128 BATCH=128 CELL=gru STEPS=5
DSF=${DSF:-build/dsf}
PY=${PY:-/usr/bin/python3}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
HIDDEN=${HIDDEN:-128}
BATCH=${BATCH:-128}
CELL=${CELL:-gru}
STEPS=${STEPS:-5}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x "$DSF" ] || { echo "classify_speed.sh: $DSF not built (make)"; exit 1; }
[ -d "$DATA" ] || { echo "classify_speed.sh: no $DATA (apt-get install dataset-fashion-mnist)"; exit 1; }

RUNS="bptt dsf:linspace dsf:uniform dsf:linspace+2 ft"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; $THREADS threads; best of $REPS"
echo "dsf: $("$DSF" version)"
echo "model: $CELL, 1 layer, hidden $HIDDEN, batch $BATCH x 784 steps, Adam, clip 1"
echo "load before: $(uptime | sed 's/.*load average: //')"
for r in $RUNS; do echo 0 >"$tmp/top_$(echo "$r" | tr ':+' '__')"; done
for rep in $(seq "$REPS"); do
    for r in $RUNS; do
        m=${r%%:*} fb=linspace
        [ "$m" = dsf ] && fb=${r#*:}
        key=$(echo "$r" | tr ':+' '__')
        "$DSF" classify --task seq --data "$DATA" --cell "$CELL" --hidden "$HIDDEN" --batch "$BATCH" \
            --method "$m" --feedback "$fb" --threads "$THREADS" --steps $((3 * STEPS)) \
            --log-every "$STEPS" --limit $((3 * STEPS * BATCH)) --no-test --log "$tmp/log.csv" \
            >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
        v=$(awk -F, '$1 == "train" { n++; if (n > 1 && $8 > best) best = $8 } END { printf "%.0f", best }' "$tmp/log.csv")
        if [ "$v" -gt "$(cat "$tmp/top_$key")" ]; then echo "$v" >"$tmp/top_$key"; fi
    done
done
printf "%-16s %12s %9s\n" run pixels/s "/ bptt"
bptt=$(cat "$tmp/top_bptt")
for r in $RUNS; do
    v=$(cat "$tmp/top_$(echo "$r" | tr ':+' '__')")
    printf "%-16s %12s %8.2fx\n" "dsf $r" "$v" "$(awk -v a="$v" -v b="$bptt" 'BEGIN { print a / b }')"
done
if "$PY" -c "import torch" 2>/dev/null; then
    top=0
    for ob in 1 "$THREADS"; do
        for rep in $(seq "$REPS"); do
            OPENBLAS_NUM_THREADS=$ob "$PY" bench/torch_classify_bench.py --cell "$CELL" --hidden "$HIDDEN" \
                --batch "$BATCH" --threads "$THREADS" --steps "$STEPS" >"$tmp/run" 2>&1 || { cat "$tmp/run"; exit 1; }
            v=$(awk '/^pixels\/s /{ printf "%.0f", $2 }' "$tmp/run")
            if [ "$v" -gt "$top" ]; then top=$v; tob=$ob; fi
        done
    done
    printf "%-16s %12s %8.2fx  (OPENBLAS_NUM_THREADS=%s, the faster of 1 and %s)\n" "torch nn.$CELL" "$top" \
        "$(awk -v a="$top" -v b="$bptt" 'BEGIN { print a / b }')" "$tob" "$THREADS"
    for r in $RUNS; do
        v=$(cat "$tmp/top_$(echo "$r" | tr ':+' '__')")
        printf "ratio: dsf %-14s / torch %.2fx\n" "$r" "$(awk -v a="$v" -v b="$top" 'BEGIN { print a / b }')"
    done
else
    echo "torch: not installed (apt-get install python3-torch python3-numpy): no ratios against it"
fi
echo "load after: $(uptime | sed 's/.*load average: //')"
