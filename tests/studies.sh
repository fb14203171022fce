#!/bin/sh
# tests/studies.sh DSF: the study scripts of experiments/ end to end, on a tiny
# generated corpus and a few Fashion-MNIST images.
# - experiments/paper_ptb.sh (the authors' recipe): --stop-at stops every run at a
#   step of the full run's schedule and the tables call them partial; a later call
#   without it extends them to logs equal to an uninterrupted run's, row for row; a
#   finished run is kept, not run again; DSF with feedback zero trains exactly as FT.
# - experiments/fashion.sh --quick trains and evaluates both Fashion-MNIST tasks.
DSF=${1:-build/dsf}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
export DSF
passed=0 failed=0 skipped=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -f "$tmp/err" ] && tail -n 5 "$tmp/err" | sed 's/^/     /'; }
check() {  # check NAME CONDITION...: ok when the command succeeds
    name=$1; shift
    if "$@"; then ok "$name"; else fail "$name"; fi
}
. "$(dirname "$0")/words.sh"
mkdir -p "$tmp/words"
mkcorpus "$tmp/words/train.txt" 600 1
mkcorpus "$tmp/words/valid.txt" 60 2
mkcorpus "$tmp/words/test.txt" 60 3

# 600 sentences in batches of 128: 5 steps an epoch, 10 in 2 epochs, a validation
# every 10 / 4 = 2 steps.
study() {  # study OUT CKPT ARGS...
    out=$1 ck=$2; shift 2
    sh experiments/paper_ptb.sh --configs 1x8 --epochs 2 --evals 4 --data "$tmp/words" \
        --out "$out" --ckpt-dir "$ck" --jobs 3 "$@" >"$tmp/err" 2>&1
}
rows() { grep -c "^$1," "$2"; }           # rows KIND CSV
scores() { grep -E '^(valid|test),' "$1" | cut -d, -f1,3,5; }  # kind, step, loss
A=$tmp/a/logs
study "$tmp/a" "$tmp/ck_a" --stop-at 4
runs="1x8_bptt_s1 1x8_dsf_linspace_s1 1x8_ft_s1"
good=1
for r in $runs; do
    [ "$(rows valid "$A/$r.csv")" -eq 2 ] && [ "$(rows test "$A/$r.csv")" -eq 0 ] || good=0
done
check "paper_ptb.sh --stop-at 4: two validations (steps 2, 4), no test, a run of each method" [ $good -eq 1 ]
check "paper_ptb.sh --stop-at: table.md calls the three runs partial" \
    [ "$(grep -c '| partial |' "$tmp/a/table.md")" -eq 3 ]
check "paper_ptb.sh: compare.md has the runs at the same steps" grep -q "1x8, seed 1" "$tmp/a/compare.md"

study "$tmp/a" "$tmp/ck_a"
good=1
for r in $runs; do
    [ "$(rows valid "$A/$r.csv")" -eq 5 ] && [ "$(rows test "$A/$r.csv")" -eq 1 ] || good=0
done
for r in $runs; do grep -q "^resumed .* at step 4 " "$A/$r.out" || good=0; done
check "paper_ptb.sh without --stop-at extends the runs from step 4: five validations and a test" [ $good -eq 1 ]
check "paper_ptb.sh: table.md calls the extended runs done" \
    [ "$(grep -c '| done |' "$tmp/a/table.md")" -eq 3 ]

study "$tmp/b" "$tmp/ck_b"
good=1
for r in $runs; do
    [ -n "$(scores "$A/$r.csv")" ] && [ "$(scores "$A/$r.csv")" = "$(scores "$tmp/b/logs/$r.csv")" ] || good=0
done
check "paper_ptb.sh: stopped and extended = uninterrupted (every validation and test loss)" [ $good -eq 1 ]

check "paper_ptb.sh: machine.txt keeps the command of each of the two calls" \
    [ "$(grep -c '^command: sh experiments/paper_ptb.sh' "$tmp/a/machine.txt")" -eq 2 ]

cp "$A/1x8_ft_s1.csv" "$tmp/before.csv"
study "$tmp/a" "$tmp/ck_a"
check "paper_ptb.sh: a finished run is kept, its log untouched" \
    sh -c "grep -q '1x8_ft_s1: done before, kept' '$tmp/err' && cmp -s '$tmp/before.csv' '$A/1x8_ft_s1.csv'"

study "$tmp/a" "$tmp/ck_a" --methods dsf --feedbacks zero
z=$(scores "$A/1x8_dsf_zero_s1.csv") same=0
[ -n "$z" ] && [ "$z" = "$(scores "$A/1x8_ft_s1.csv")" ] && same=1
check "paper_ptb.sh: dsf with feedback zero trains exactly as ft (every loss equal)" [ $same -eq 1 ]

F=/usr/share/datasets/fashion-mnist
if [ -f "$F/train-images-idx3-ubyte.gz" ]; then
    sh experiments/fashion.sh --quick --tasks "seq perm" --runs "bptt dsf:linspace" --jobs 2 \
        --out "$tmp/f" >"$tmp/err" 2>&1
    check "fashion.sh --quick: four runs trained and tested (seq, perm x bptt, dsf)" \
        [ "$(grep -cE '\| (seq|perm) \| (bptt|dsf_linspace) \| 2 \| 0\.[0-9]+ \| 0\.[0-9]+ \|.*\| done \|' "$tmp/f/table.md")" -eq 4 ]
elif [ "${CI:-}" = true ]; then
    fail "fashion.sh --quick: no $F under CI, which installs dataset-fashion-mnist"
else
    skipped=$((skipped + 1))
    echo "skip fashion.sh --quick (no $F: apt-get install dataset-fashion-mnist)"
fi

if [ "$skipped" -gt 0 ]; then
    echo "studies: $passed passed, $failed failed, $skipped skipped"
else
    echo "studies: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
