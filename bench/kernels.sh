#!/bin/sh
# bench/kernels.sh: each recurrent micro-kernel this CPU has (src/core/panel.c,
# forced with DSF_KERNEL), timed alone (build/panel_bench) and in full training
# steps at the character shape of bench/speed.sh (bptt and dsf), the kernels
# taking turns, best of REPS. Needs `make panel-bench`.
#
#   sh bench/kernels.sh        REPS=2 THREADS=2 DSF=build/dsf
DSF=${DSF:-build/dsf}
BUILD=$(dirname "$DSF")
REPS=${REPS:-2}
THREADS=${THREADS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x "$BUILD/panel_bench" ] || { echo "kernels.sh: $BUILD/panel_bench not built (make panel-bench)"; exit 1; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; $THREADS threads; best of $REPS"
echo "dsf: $("$DSF" version)"
echo "load before: $(uptime | sed 's/.*load average: //')"
echo
"$BUILD/panel_bench" "$THREADS"
echo
args="--vocab 256 --emb 256 --hidden 1024 --layers 1 --batch 32 --seq 128 --threads $THREADS --steps 6 --warmup 2"
kernels=""
for k in avx512 avx2 generic; do DSF_KERNEL=$k "$DSF" version >/dev/null 2>&1 && kernels="$kernels $k"; done
echo "dsf bench $args"
printf "%-8s %-6s %10s %22s\n" kernel method tokens/s "forward recurrence ms"
for m in bptt dsf; do
    for k in $kernels; do echo 0 >"$tmp/$k"; done
    for r in $(seq "$REPS"); do
        for k in $kernels; do
            DSF_KERNEL=$k "$DSF" bench $args --method $m >"$tmp/run" 2>&1 || { cat "$tmp/run"; exit 1; }
            v=$(awk '/^tokens\/s /{ print $2 }' "$tmp/run")
            f=$(awk '/forward recurrence/{ print $3 }' "$tmp/run")
            if awk -v a="$v" -v b="$(cut -d' ' -f1 "$tmp/$k")" 'BEGIN { exit !(a > b) }'; then
                echo "$v $f" >"$tmp/$k"
            fi
        done
    done
    for k in $kernels; do
        set -- $(cat "$tmp/$k")
        printf "%-8s %-6s %10s %22s\n" "$k" "$m" "$1" "$2"
    done
done
echo "load after: $(uptime | sed 's/.*load average: //')"
