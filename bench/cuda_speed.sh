#!/bin/sh
# bench/cuda_speed.sh: the GPU comparison with cuDNN in one run: `dsf bench --device
# cuda` (bptt, ft, dsf with each scan) against PyTorch's cuDNN nn.GRU and nn.LSTM
# (bench/torch_bench.py --device cuda, BPTT) on the same shapes: H = 1024, B = 64,
# T = 256 and 2048, one layer, vocab and embedding 256. Prints tokens/s and
# ms/step of each, and each run's speed over cuDNN's BPTT for the same cell;
# bptt_graphs and dsf_graphs (blelloch) replay the recurrent loops from CUDA
# graphs (DSF_CUDA_GRAPHS=1).
#
#   make CUDA=1 && sh bench/cuda_speed.sh         DSF=build/cuda/dsf STEPS=10 TF32=0
#   SEQS="256" CELLS=gru sh bench/cuda_speed.sh   one sequence length, one cell
DSF=${DSF:-build/cuda/dsf}
PY=${PY:-python3}
STEPS=${STEPS:-10}
TF32=${TF32:-0}
SEQS=${SEQS:-"256 2048"}
CELLS=${CELLS:-"gru lstm"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x "$DSF" ] || { echo "cuda_speed.sh: $DSF not built (make CUDA=1)"; exit 1; }

# run NAME CMD...: runs CMD, keeps tokens/s and ms/step in $tmp/NAME.
run() {
    name=$1
    shift
    "$@" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
    awk '/^tokens\/s /{ t = $2 } /^ms\/step /{ m = $2 } END { print t, m }' "$tmp/out" >"$tmp/$name"
    grep -E '^step: ' "$tmp/out" | head -n 1 >"$tmp/$name.step"
    grep -E '^  [a-z]' "$tmp/out" >"$tmp/$name.phases"  # dsf's ms per phase (CUDA events)
}

for T in $SEQS; do
    shape="--vocab 256 --emb 256 --hidden 1024 --layers 1 --batch 64 --seq $T"
    echo "== $shape, $STEPS steps after 2 warm-up"
    for cell in $CELLS; do
        run torch "$PY" bench/torch_bench.py $shape --device cuda --tf32 "$TF32" --cell $cell --steps "$STEPS"
        run bptt "$DSF" bench $shape --cell $cell --device cuda --method bptt --steps "$STEPS"
        run ft "$DSF" bench $shape --cell $cell --device cuda --method ft --steps "$STEPS"
        for scan in seq blelloch fft; do
            run dsf_$scan "$DSF" bench $shape --cell $cell --device cuda --method dsf --scan $scan --steps "$STEPS"
        done
        # The recurrent loops replayed from CUDA graphs (DSF_CUDA_GRAPHS=1).
        run bptt_graphs env DSF_CUDA_GRAPHS=1 "$DSF" bench $shape --cell $cell --device cuda --method bptt --steps "$STEPS"
        run dsf_graphs env DSF_CUDA_GRAPHS=1 "$DSF" bench $shape --cell $cell --device cuda --method dsf --scan blelloch --steps "$STEPS"
        sed "s/^/$cell torch: /" "$tmp/torch.step"
        sed "s/^/$cell dsf:   /" "$tmp/bptt.step"
        read -r ref _ <"$tmp/torch"
        printf "%-22s %12s %10s %14s\n" "$cell" tokens/s ms/step "x cuDNN BPTT"
        for n in torch bptt ft dsf_seq dsf_blelloch dsf_fft bptt_graphs dsf_graphs; do
            read -r tok ms <"$tmp/$n"
            label=$n
            [ $n = torch ] && label="cuDNN nn.$(echo $cell | tr a-z A-Z)"
            printf "%-22s %12s %10s %14s\n" "$label" "$tok" "$ms" "$(awk -v a="$tok" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')"
        done
        for n in bptt dsf_blelloch bptt_graphs; do
            echo "$cell $n, ms per phase:"
            cat "$tmp/$n.phases"
        done
        echo
    done
done
