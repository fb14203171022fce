#!/bin/sh
# bench/ab_binaries.sh OLD NEW: two builds of dsf, taking turns, best of 3, at the
# word shape and the character shape of bench/speed.sh (NEW with --no-projection
# at the second, so that only the code around the products differs).
OLD=$1; NEW=$2
echo "old: $OLD, new: $NEW"
echo "load before: $(uptime | sed 's/.*load average: //')"
for shape in word char; do
  case $shape in
    word) args="--vocab 10000 --emb 650 --hidden 650 --layers 2 --batch 20 --seq 35 --threads 2 --steps 10 --warmup 2"; np="";;
    char) args="--vocab 256 --emb 256 --hidden 1024 --layers 1 --batch 32 --seq 128 --threads 2 --steps 6 --warmup 2"; np="--no-projection";;
  esac
  echo "== $shape: dsf bench $args (new with $np)"
  for m in bptt dsf; do
    bo=0; bn=0
    for r in 1 2 3; do
      o=$($OLD bench $args --method $m 2>&1 | awk '/^tokens\/s /{print $2}')
      n=$($NEW bench $args --method $m $np 2>&1 | awk '/^tokens\/s /{print $2}')
      bo=$(awk -v a=$o -v b=$bo 'BEGIN{print (a>b)?a:b}'); bn=$(awk -v a=$n -v b=$bn 'BEGIN{print (a>b)?a:b}')
    done
    awk -v m=$m -v o=$bo -v n=$bn 'BEGIN{printf "%-5s old %8.1f  new %8.1f tokens/s  new/old %.3f\n", m, o, n, n/o}'
  done
done
echo "load after: $(uptime | sed 's/.*load average: //')"
