#!/bin/sh
# bench/speed.sh: dsf bench (bptt, dsf, ft) and the same model in PyTorch
# (bench/torch_bench.py, torch.nn.GRU) side by side, on the shapes of the speed
# targets, each measurement the best of REPS runs, the three methods taking
# turns (the machine may be shared: the load is printed next to the figures). Prints tokens/s, ms/step, % of the
# GEMM peak measured in the same run, peak RSS, and the ratios.
#
#   sh bench/speed.sh                 REPS=3 THREADS=2 DSF=build/dsf
#   SHAPES=char sh bench/speed.sh     only the first shape (char or word)
DSF=${DSF:-build/dsf}
PY=${PY:-/usr/bin/python3}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
SHAPES=${SHAPES:-"char word"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x "$DSF" ] || { echo "speed.sh: $DSF not built (make)"; exit 1; }

# best CMD...: runs CMD REPS times, keeps the output with the highest tokens/s so far
# (since top was last set to 0) in $tmp/best
best() {
    for r in $(seq "$REPS"); do
        "$@" >"$tmp/run" 2>&1 || { cat "$tmp/run"; return 1; }
        v=$(awk '/^tokens\/s /{ print $2 }' "$tmp/run")
        if awk -v a="$v" -v b="$top" 'BEGIN { exit !(a > b) }'; then top=$v; cp "$tmp/run" "$tmp/best"; fi
    done
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; $THREADS threads; best of $REPS"
echo "dsf: $("$DSF" version)"
echo "load before: $(uptime | sed 's/.*load average: //')"
for shape in $SHAPES; do
    case $shape in
    char) args="--vocab 256 --emb 256 --hidden 1024 --layers 1 --batch 32 --seq 128"; steps=10; tsteps=3 ;;
    word) args="--vocab 10000 --emb 650 --hidden 650 --layers 2 --batch 20 --seq 35"; steps=20; tsteps=5 ;;
    *) echo "unknown shape $shape"; exit 1 ;;
    esac
    echo
    echo "== $shape: $args --threads $THREADS"
    # % peak: the model's FLOPs (docs/DESIGN.md §8) / the executed ones, per second,
    # against the square GEMM of the same run (they differ where a method skips a
    # product or the embedding is projected once).
    printf "%-10s %10s %9s %10s %9s  %s\n" run tokens/s ms/step "% peak" "RSS MiB" "ms: forward decoder state-grad param-grad optim"
    # The methods take turns, REPS rounds, so that each sees the same spread of load.
    for m in bptt dsf ft; do echo 0 >"$tmp/top_$m"; done
    for r in $(seq "$REPS"); do
        for m in bptt dsf ft; do
            "$DSF" bench $args --threads "$THREADS" --method "$m" --steps $steps --warmup 2 >"$tmp/run" 2>&1 ||
                { cat "$tmp/run"; exit 1; }
            v=$(awk '/^tokens\/s /{ print $2 }' "$tmp/run")
            if awk -v a="$v" -v b="$(cat "$tmp/top_$m")" 'BEGIN { exit !(a > b) }'; then
                echo "$v" >"$tmp/top_$m"
                cp "$tmp/run" "$tmp/best_$m"
            fi
        done
    done
    for m in bptt dsf ft; do
        cp "$tmp/best_$m" "$tmp/best"
        tok=$(awk '/^tokens\/s /{ print $2 }' "$tmp/best")
        eval "tok_$m=$tok"
        ms=$(awk '/^ms\/step /{ print $2 }' "$tmp/best")
        pct=$(sed -n 's/^model FLOPs at \([0-9]*\)% of peak.*/\1/p' "$tmp/best")
        exe=$(sed -n 's/^model FLOPs at .*(executed: \([0-9]*\)% of peak).*/\1/p' "$tmp/best")
        [ -n "$exe" ] || exe=$pct
        eval "pct_$m=$pct; exe_$m=$exe"
        rss=$(awk '/^peak RSS /{ print $3 }' "$tmp/best")
        phases=$(awk '/^  (forward|decoder|state-gradient|parameter|optimizer)/ { for (i = 1; i <= NF; i++) if ($i == "ms") { printf "%s ", $(i - 1); break } }' "$tmp/best")
        printf "%-10s %10s %9s %10s %9s  %s\n" "dsf $m" "$tok" "$ms" "$pct%/$exe%" "$rss" "$phases"
        [ "$m" = bptt ] && grep -E '^GEMM' "$tmp/best" | sed 's/^/           /'
    done
    if "$PY" -c "import torch" 2>/dev/null; then
        # PyTorch at its best: its OpenMP threads = THREADS, and OpenBLAS's own pool
        # (which Debian's torch uses for nn.GRU's products) single-threaded or on;
        # both are timed and the faster kept (experiments/results/speed/
        # torch_openblas_threads.txt: single-threaded is 2.4x faster on 2 cores).
        top=0
        for ob in 1 "$THREADS"; do
            best env OPENBLAS_NUM_THREADS="$ob" "$PY" bench/torch_bench.py $args --threads "$THREADS" \
                --steps $tsteps --warmup 1 || exit 1
        done
        tok_torch=$(awk '/^tokens\/s /{ print $2 }' "$tmp/best")
        ob=$(sed -n 's/.*OPENBLAS_NUM_THREADS=\([0-9]*\).*/\1/p' "$tmp/best")
        printf "%-10s %10s %9s %8s %9s  (OPENBLAS_NUM_THREADS=%s, the faster of 1 and %s)\n" torch \
            "$tok_torch" "$(awk '/^ms\/step /{ print $2 }' "$tmp/best")" "" \
            "$(awk '/^peak RSS /{ print $3 }' "$tmp/best")" "$ob" "$THREADS"
        sed -n 's/^threads: /           torch threads: /p' "$tmp/best"  # torch.__config__.parallel_info()
    else
        tok_torch=
        echo "torch: not installed (apt-get install python3-torch python3-numpy): no ratios against it"
    fi
    awk -v b="$tok_bptt" -v d="$tok_dsf" -v f="$tok_ft" -v t="$tok_torch" -v pb="$pct_bptt" -v eb="$exe_bptt" -v shape="$shape" '
    function target(what, got, want, unit) {
        printf "target: %-22s %6.2f%s against %.2f%s: %s\n", what, got, unit, want, unit, (got >= want ? "met" : "missed")
    }
    BEGIN {
        printf "ratios: dsf/bptt %.2fx, ft/bptt %.2fx; bptt at %d%% of GEMM peak (executed FLOPs: %d%%)\n", d / b, f / b, pb, eb
        if (t > 0) printf "        bptt/torch %.2fx, dsf/torch %.2fx, ft/torch %.2fx\n", b / t, d / t, f / t
        # The targets of the speed work (docs/SPEED.md), on a machine with AVX2 and no AVX-512.
        if (shape == "char") {
            target("bptt % of GEMM peak", pb, 75, "%")
            target("  the same, executed", eb, 75, "%")
            target("dsf/bptt", d / b, 1.4, "x")
            if (t > 0) { target("bptt/torch", b / t, 3, "x"); target("dsf/torch", d / t, 4, "x") }
        } else if (t > 0) {
            target("bptt/torch", b / t, 2.5, "x"); target("dsf/torch", d / t, 2.5, "x")
        } }'
done
echo
echo "load after: $(uptime | sed 's/.*load average: //')"
