#!/bin/sh
# bench/feedback_ablation.sh [-e EPOCHS] [-d DATA] [-o OUTDIR] [-t THREADS] [-f "FEEDBACKS"] [-q]
#
# The feedback ablation on PTB: the small recipe (word level, 2 x 200 GRU, emb 200,
# SGD lr 20 divided by 4 on a validation plateau, clip 0.25, batch 20 x seq 35, no
# dropout, seed 1) trained with bptt, ft and dsf under each feedback, one run
# after the other, then `dsf gradstats` on the BPTT-trained model (20 validation
# batches) for every feedback (and uniform, identity), and one table: validation and test perplexity,
# seconds per epoch, and the gradient's cosine and norm ratio against exact BPTT.
#
#   -e EPOCHS     epochs per run (default 1)
#   -d DATA       directory with ptb.{train,valid,test}.txt (default ../shared/data/ptb)
#   -o OUTDIR     logs, checkpoints and the table (default bench/out/ablation)
#   -t THREADS    threads (default 2)
#   -f FEEDBACKS  dsf feedbacks to train with (default
#                 "fit diag lowrank:4 uniform:0,0.5 ssm identity uniform")
#   -q            quick: 30 steps per run, to check that everything works
# DSF=path/to/dsf selects the binary (default build/dsf).
set -eu
cd "$(dirname "$0")/.."
EPOCHS=1 DATA=../shared/data/ptb OUT=bench/out/ablation THREADS=2 QUICK=""
FEEDBACKS="fit diag lowrank:4 uniform:0,0.5 ssm identity uniform"
while getopts e:d:o:t:f:qh opt; do
    case $opt in
    e) EPOCHS=$OPTARG ;;
    d) DATA=$OPTARG ;;
    o) OUT=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    f) FEEDBACKS=$OPTARG ;;
    q) QUICK=1 ;;
    h) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) sed -n '2,18s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done
[ -d "$DATA" ] || { echo "feedback_ablation.sh: no data directory $DATA (give -d DIR)" >&2; exit 2; }
DSF=${DSF:-build/dsf}
[ -x "$DSF" ] || make
mkdir -p "$OUT"
LEN="--epochs $EPOCHS"
[ -n "$QUICK" ] && LEN="--steps 30"
RECIPE="--data $DATA --layers 2 --emb 200 --hidden 200 --batch 20 --seq 35 --optim sgd --lr 20
        --clip 0.25 --seed 1 --threads $THREADS $LEN"

run() {  # run NAME ARGS...: trains, keeps the log, the checkpoint and the output
    name=$1; shift
    echo "== $name" >&2
    # shellcheck disable=SC2086
    "$DSF" train $RECIPE "$@" --log "$OUT/$name.csv" --save "$OUT/$name.safetensors" \
        2>"$OUT/$name.err" || echo "   (exit $?; see $OUT/$name.err)" >&2
    tail -n 2 "$OUT/$name.err" >&2
}
run bptt --method bptt
run ft --method ft
for fb in $FEEDBACKS; do run "dsf_$fb" --method dsf --feedback "$fb"; done

list=$(echo "$FEEDBACKS uniform identity" | tr ' ' ',')
"$DSF" gradstats --ckpt "$OUT/bptt.safetensors" --data "$DATA" --batches 20 \
    --feedback "$list" --threads "$THREADS" >"$OUT/gradstats.txt"

# One row per run: the last validation perplexity, the test perplexity of the
# best model (from the run's output), seconds per epoch, and the overall cosine
# and norm ratio gradstats measured for the same method and feedback.
{
    printf "| run | valid ppl | test ppl | s/epoch | cosine vs bptt | norm vs bptt |\n"
    printf "|---|---|---|---|---|---|\n"
    for name in bptt ft $(for fb in $FEEDBACKS; do echo "dsf_$fb"; done); do
        [ -f "$OUT/$name.csv" ] || continue
        valid=$(grep '^valid,' "$OUT/$name.csv" | tail -n 1 | cut -d, -f6)
        test=$(grep '^test,' "$OUT/$name.csv" | tail -n 1 | cut -d, -f6)
        secs=$(grep '^train,' "$OUT/$name.csv" | tail -n 1 | cut -d, -f10)
        steps=$(grep '^train,' "$OUT/$name.csv" | tail -n 1 | cut -d, -f3)
        case $name in
        bptt) stats="1 1" ;;
        ft) stats=$(awk '$1 == "ft" { print $2, $3; exit }' "$OUT/gradstats.txt") ;;
        *) fb=${name#dsf_}
           stats=$(awk -v f="$fb" '$1 == "dsf" && $2 == f { print $3, $4; exit }' "$OUT/gradstats.txt") ;;
        esac
        per_epoch=$(awk -v s="$secs" -v n="$steps" -v e="$EPOCHS" 'BEGIN { printf "%.0f", s / e }')
        printf "| %s | %s | %s | %s | %s | %s |\n" "$name" "${valid:--}" "${test:--}" "$per_epoch" \
            "$(echo "$stats" | cut -d' ' -f1)" "$(echo "$stats" | cut -d' ' -f2)"
    done
} | tee "$OUT/table.md"
