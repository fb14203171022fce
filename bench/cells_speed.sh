#!/bin/sh
# bench/cells_speed.sh: the LSTM and Elman cells at the character shape of
# bench/speed.sh, dsf bptt and dsf against nn.LSTM / nn.RNN (bench/torch_bench.py)
# with OPENBLAS_NUM_THREADS=1 and =2, two rounds, the runs taking turns; read the
# best of each.
#
#   sh bench/cells_speed.sh        DSF=build/dsf
DSF=${DSF:-build/dsf}
A="--vocab 256 --emb 256 --hidden 1024 --layers 1 --batch 32 --seq 128 --threads 2"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; 2 threads; best of 2, the runs taking turns"
echo "dsf: $("$DSF" version)"
echo "load before: $(uptime | sed 's/.*load average: //')"
for cell in lstm rnn; do
    echo; echo "== $cell: $A"
    for r in 1 2; do
        for m in bptt dsf; do
            echo "dsf $m: $("$DSF" bench $A --cell $cell --method $m --steps 6 --warmup 2 | grep '^tokens/s')"
        done
        for ob in 1 2; do
            echo "torch (OPENBLAS_NUM_THREADS=$ob): $(OPENBLAS_NUM_THREADS=$ob /usr/bin/python3 bench/torch_bench.py $A --cell $cell --steps 3 --warmup 1 | grep '^tokens/s')"
        done
    done
done
echo "load after: $(uptime | sed 's/.*load average: //')"
