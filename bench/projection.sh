#!/bin/sh
# bench/projection.sh: the embedding projected once (V < T*B, src/model/lm.c)
# against the first layer's input products over all T*B rows (--no-projection),
# in full training steps at the character shape of bench/speed.sh, the two taking
# turns, best of REPS, for each method.
#
#   sh bench/projection.sh      REPS=3 THREADS=2 DSF=build/dsf
DSF=${DSF:-build/dsf}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; $THREADS threads; best of $REPS"
echo "dsf: $("$DSF" version)"
echo "load before: $(uptime | sed 's/.*load average: //')"
args="--vocab 256 --emb 256 --hidden 1024 --layers 1 --batch 32 --seq 128 --threads $THREADS --steps 6 --warmup 2"
echo "dsf bench $args"
printf "%-6s %-13s %10s %14s %12s %16s\n" method embedding tokens/s "GFLOP/s model" executed "% of peak (exec)"
for m in bptt dsf ft; do
    for v in projected rows; do echo 0 >"$tmp/$v"; done
    for r in $(seq "$REPS"); do
        for v in projected rows; do
            flag=""
            [ "$v" = rows ] && flag="--no-projection"
            "$DSF" bench $args --method $m $flag >"$tmp/run" 2>&1 || { cat "$tmp/run"; exit 1; }
            t=$(awk '/^tokens\/s /{ print $2 }' "$tmp/run")
            g=$(awk '/^achieved /{ print $2 }' "$tmp/run")
            e=$(awk '/^achieved /{ if ($4 == "(executed") print $5; else print $2 }' "$tmp/run")
            p=$(awk '/^model FLOPs at /{ print $4; }' "$tmp/run")
            x=$(awk '/^model FLOPs at /{ if ($8 != "") print $8; else print $4 }' "$tmp/run")
            if awk -v a="$t" -v b="$(cut -d' ' -f1 "$tmp/$v")" 'BEGIN { exit !(a > b) }'; then
                echo "$t $g $e $p/$x" >"$tmp/$v"
            fi
        done
    done
    for v in projected rows; do
        set -- $(cat "$tmp/$v")
        printf "%-6s %-13s %10s %14s %12s %16s\n" "$m" "$v" "$1" "$2" "$3" "$4"
    done
    awk -v a="$(cut -d' ' -f1 "$tmp/projected")" -v b="$(cut -d' ' -f1 "$tmp/rows")" \
        'BEGIN { printf "%-6s projected / rows: %.3f\n", "", a / b }'
done
echo "load after: $(uptime | sed 's/.*load average: //')"
