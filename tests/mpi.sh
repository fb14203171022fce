#!/bin/sh
# tests/mpi.sh DSF: data-parallel training under mpirun, for a build with
# `make MPI=1` (build/mpi/dsf). Two processes, each with half of the batch
# streams, must give the losses of one process with the same global batch (to
# 1e-5 relative), for bptt and dsf, with dropout too (stack and block); rank 0 alone prints and logs; a checkpoint
# resumes exactly at the same number of processes and is refused at another.
# Skips (and says why) without mpirun or with a build without MPI.
# DSF_DEVICE=cuda runs every training on the GPU backend (a build with CUDA=1
# MPI=1, or tests/cuda_host's dsf linked with LINK=mpicxx).
DSF=${1:-build/mpi/dsf}
DEV=${DSF_DEVICE:+--device $DSF_DEVICE}
passed=0 failed=0
if ! command -v mpirun >/dev/null 2>&1; then
    echo "skipped: no mpirun (apt-get install openmpi-bin libopenmpi-dev, then make MPI=1 test)"
    echo "mpi: 0 passed, 0 failed, 1 skipped"
    exit 0
fi
# Open MPI refuses more processes than cores, and root, unless told.
MPIRUN="mpirun"
if mpirun --version 2>&1 | grep -q "Open MPI"; then
    MPIRUN="mpirun --oversubscribe --bind-to none"
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_btl_vader_single_copy_mechanism=none  # containers lack CMA permissions
fi
if ! ldd "$DSF" 2>/dev/null | grep -q libmpi; then
    echo "skipped: $DSF is built without MPI (make MPI=1 test runs these tests)"
    # ... but it must refuse to run as one of several processes
    if $MPIRUN -np 2 "$DSF" train --data builtin:recall --level char --steps 1 2>&1 | \
        grep -q "built without MPI but was started as one of 2 processes"; then
        echo "ok   a build without MPI refuses to run as one of several processes"
        echo "mpi: 1 passed, 0 failed, 1 skipped"
        exit 0
    fi
    echo "FAIL a build without MPI refuses to run as one of several processes"
    echo "mpi: 0 passed, 1 failed, 1 skipped"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -f "$tmp/err" ] && sed 's/^/     /' "$tmp/err" | tail -n 8; }

# The corpus of tests/cli.sh with a numbered word in every line: several hundred
# words, more than a step's 80 tokens, so that most rows of the encoder's gradient
# are zero, as in real data.
. "$(dirname "$0")/words.sh"
mkdir -p "$tmp/words"
mkcorpus "$tmp/words/train.txt" 300 1 400
mkcorpus "$tmp/words/valid.txt" 40 2 400
mkcorpus "$tmp/words/test.txt" 40 3 400
Wc="--data $tmp/words --layers 2 --batch 8 --seq 10 --eval-batch 4 --threads 1 --log-every 1 $DEV"
W="$Wc --emb 24 --hidden 32"
per_epoch=$("$DSF" train $W --steps 1 --no-test 2>&1 | sed -nE 's/.*\(([0-9]+) per epoch\).*/\1/p')
steps=$((per_epoch + 5))  # across an epoch end: a validation row in the middle too

# same_losses A B: the same rows (kind, step) and every loss within 1e-5 relative
same_losses() {
    [ "$(cut -d, -f1,3 "$1")" = "$(cut -d, -f1,3 "$2")" ] && [ "$(grep -c . "$1")" -gt 3 ] &&
        paste -d, "$1" "$2" | awk -F, 'NR > 1 { d = $5 - $15; if (d < 0) d = -d;
            if (d > 1e-5 * ($5 < 0 ? -$5 : $5)) { print "row " NR ": " $5 " vs " $15; bad = 1 } }
            END { exit bad }'
}

# --- one process against two, and four (oversubscribed), with the same global batch
# (dropout: each rank applies its streams' part of one process's masks)
for cfg in "bptt sgd 1 gru 0" "dsf sgd 1 gru 0" "dsf adamw 0.01 gru 0" "dsf sgd 1 lstm 0" \
    "bptt sgd 1 lstm 0.3"; do
    set -- $cfg
    m=$1 o=$2 lr=$3 c=$4 p=$5
    k=$c$m$o
    [ "$p" = 0 ] || k=$k-dropout
    "$DSF" train $W --cell $c --method $m --optim $o --lr $lr --dropout $p --steps $steps --log "$tmp/one_$k.csv" >"$tmp/out1" 2>"$tmp/err"
    $MPIRUN -np 2 "$DSF" train $W --cell $c --method $m --optim $o --lr $lr --dropout $p --steps $steps \
        --log "$tmp/two_$k.csv" --save "$tmp/two_$k.safetensors" >"$tmp/out2" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq 0 ] && same_losses "$tmp/one_$k.csv" "$tmp/two_$k.csv" >>"$tmp/err"; then
        ok "2 processes give the losses of 1 ($c, $m, $o, dropout $p, $steps steps, train, valid and test rows)"
    else
        fail "2 processes give the losses of 1 ($c, $m, $o, dropout $p, exit $rc)"
    fi
done
$MPIRUN -np 4 "$DSF" train $W --method dsf --lr 1 --steps $steps --log "$tmp/four.csv" >/dev/null 2>"$tmp/err"
if same_losses "$tmp/one_grudsfsgd.csv" "$tmp/four.csv" >>"$tmp/err"; then
    ok "4 processes (oversubscribed) give the losses of 1 (dsf)"
else
    fail "4 processes (oversubscribed) give the losses of 1 (dsf)"
fi

# --- rank 0 alone prints and logs
$MPIRUN -np 2 "$DSF" train $W --method bptt --lr 1 --steps 12 --log "$tmp/p.csv" >"$tmp/out" 2>"$tmp/err"
if [ "$(grep -c '^step ' "$tmp/err")" -eq 12 ] && [ "$(grep -c '^test ' "$tmp/out")" -eq 1 ] &&
    [ "$(grep -c '^kind,' "$tmp/p.csv")" -eq 1 ] && [ "$(grep -c '^train,' "$tmp/p.csv")" -eq 12 ]; then
    ok "rank 0 alone prints and logs"
else
    fail "rank 0 alone prints and logs"
fi
if grep -q "all-reduce [0-9.]* + wait [0-9.]* of [0-9.]* ms/step" "$tmp/err" && \
    grep -q "^data parallel: 2 processes, [0-9]* tokens/s in steps of [0-9.]* ms: all-reduce" "$tmp/err"; then
    ok "progress lines and the summary give the all-reduce time per step"
else
    fail "progress lines and the summary give the all-reduce time per step"
fi

# --- the split evaluation equals a single-process one on the saved model (printed to 4 places)
"$DSF" eval --ckpt "$tmp/two_grubpttsgd.best.safetensors" --data "$tmp/words" --split valid >"$tmp/out" 2>"$tmp/err"
got=$(sed -E 's/^loss ([0-9.]+) .*/\1/' "$tmp/out")
best=$(grep '^valid,' "$tmp/two_grubpttsgd.csv" | cut -d, -f5 | sort -g | head -n 1)
if awk -v a="$best" -v b="$got" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4) }'; then
    ok "split evaluation equals one process's ($best vs $got)"
else
    fail "split evaluation equals one process's ($best vs $got)"
fi

# --- resume: exact at the same number of processes, refused at another
for m in bptt dsf lstm; do
    c=gru
    [ $m = lstm ] && m=dsf c=lstm
    a="$tmp/a_$c$m.csv" b="$tmp/b_$c$m.csv"
    $MPIRUN -np 2 "$DSF" train $W --cell $c --method $m --lr 1 --steps $steps --log "$a" --no-test >/dev/null 2>"$tmp/err"
    $MPIRUN -np 2 "$DSF" train $W --cell $c --method $m --lr 1 --steps $steps --stop-at $((per_epoch - 3)) \
        --save "$tmp/r_$c$m.safetensors" --log "$b" >/dev/null 2>"$tmp/err"
    $MPIRUN -np 2 "$DSF" train --data "$tmp/words" --threads 1 --resume "$tmp/r_$c$m.safetensors" \
        --log "$b" --log-every 1 --no-test $DEV >/dev/null 2>"$tmp/err"
    if [ "$(grep -c '^train,' "$a")" -eq "$steps" ] && \
        [ "$(cut -d, -f1,3,5 "$a")" = "$(cut -d, -f1,3,5 "$b")" ]; then
        ok "resume with 2 processes is bit-identical ($c, $m, stopped at $((per_epoch - 3)) of $steps)"
    else
        fail "resume with 2 processes is bit-identical ($c, $m)"
    fi
done
for np in 1 4; do
    if [ $np -eq 1 ]; then
        "$DSF" train --data "$tmp/words" --resume "$tmp/r_grudsf.safetensors" >/dev/null 2>"$tmp/err"
    else
        $MPIRUN -np $np "$DSF" train --data "$tmp/words" --resume "$tmp/r_grudsf.safetensors" >/dev/null 2>"$tmp/err"
    fi
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$(grep -c '^dsf train:' "$tmp/err")" -eq 1 ] && \
        grep -q "^dsf train: .*written by 2 processes; resume it with as many (mpirun -np 2), not $np$" "$tmp/err"; then
        ok "resume with $np processes is refused in one line"
    else
        fail "resume with $np processes is refused in one line (exit $rc)"
    fi
done

# --- a batch that does not split: one clear line, whatever the number of processes
$MPIRUN -np 3 "$DSF" train $W --steps 2 >/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 0 ] && [ "$(grep -c '^dsf train:' "$tmp/err")" -eq 1 ] && \
    grep -q "^dsf train: --batch 8 does not split evenly over 3 processes" "$tmp/err"; then
    ok "a batch that does not split over the processes is one error line"
else
    fail "a batch that does not split over the processes is one error line (exit $rc)"
fi

$MPIRUN -np 4 "$DSF" train $W --cell lstm --method bptt --lr 1 --dropout 0.3 --steps $steps \
    --log "$tmp/four_dropout.csv" >/dev/null 2>"$tmp/err"
if same_losses "$tmp/one_lstmbpttsgd-dropout.csv" "$tmp/four_dropout.csv" >>"$tmp/err"; then
    ok "4 processes with dropout give the losses of 1 (the same masks)"
else
    fail "4 processes with dropout give the losses of 1 (the same masks)"
fi

# --- the block architecture with dropout (on the embedding and on both branches)
# two_like_one NAME WHAT ARGS...: `dsf train ARGS` on 2 processes gives 1's losses
two_like_one() {
    name=$1 what=$2
    shift 2
    "$DSF" train "$@" --log "$tmp/one_$name.csv" >/dev/null 2>"$tmp/err"
    $MPIRUN -np 2 "$DSF" train "$@" --log "$tmp/two_$name.csv" >/dev/null 2>"$tmp/err"
    if same_losses "$tmp/one_$name.csv" "$tmp/two_$name.csv" >>"$tmp/err"; then
        ok "2 processes give the losses of 1 ($what)"
    else
        fail "2 processes give the losses of 1 ($what)"
    fi
}
two_like_one block "--arch block, dropout 0.3" \
    $Wc --hidden 32 --arch block --mlp 40 --dropout 0.3 --steps $steps --lr 1

# --- padded sentences (the rows of a batch sorted longest first and dealt
# round robin, each rank's recurrence ragged): the mean over the counted
# targets of all ranks; with dropout each rank draws its dealt rows' masks, and
# an evaluation batch of 5 deals 3 and 2
two_like_one sent "--batching sentence" $W --batching sentence --lr 1 --steps 12
two_like_one sentdrop "--batching sentence, dropout 0.3, evaluation batch 5" \
    $(echo "$W" | sed 's/--eval-batch 4/--eval-batch 5/') --batching sentence --dropout 0.3 \
    --lr 1 --steps 12
# The closing line's tokens/s counts the targets that carry a loss (not B·T):
# one long line in eight, so that most positions of a batch are padding.
mkdir -p "$tmp/pad"
for s in train valid test; do
    awk 'BEGIN { for (i = 0; i < 160; i++) { if (i % 8 == 0) { for (j = 0; j < 30; j++)
        printf "w%d ", (i + j) % 50; print "" } else print "w" i % 50 } }' >"$tmp/pad/$s.txt"
done
$MPIRUN -np 2 "$DSF" train --data "$tmp/pad" --batching sentence --seq 40 --batch 8 --hidden 16 \
    --threads 1 --steps 40 --log-every 40 --no-test --log "$tmp/pad.csv" >/dev/null 2>"$tmp/err"
summary=$(sed -nE 's/^data parallel: 2 processes, ([0-9]+) tokens\/s in steps of ([0-9.]+) ms.*/\1 \2/p' "$tmp/err")
counted=$(awk -F, '$1 == "train" && $3 == 40 { print $4 }' "$tmp/pad.csv")
if echo "$summary $counted" | awk 'NF == 3 { r = $1 * $2 / 1000 * 40 / $3; exit !(r > 0.5 && r < 2) }
    { exit 1 }'; then
    ok "the closing tokens/s counts the targets that carry a loss"
else
    fail "the closing tokens/s counts the targets that carry a loss ($summary; $counted counted)"
fi
if grep -q "^data parallel: 2 processes .*rows dealt round robin" "$tmp/err"; then
    ok "sentence rows are dealt round robin (the header says so)"
else
    fail "sentence rows are dealt round robin (the header says so)"
fi

echo "mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
