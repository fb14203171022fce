#!/usr/bin/python3
"""The same training step as `dsf bench`, in PyTorch: embedding -> torch.nn.GRU
(LSTM or RNN with --cell) -> linear decoder -> cross-entropy, forward + backward +
gradient clipping (0.25) + SGD update, on random tokens, the state carried (detached) from one
step to the next. Prints tokens/s, ms/step and peak resident memory in the form
`dsf bench` uses, so that bench/speed.sh can put them side by side.

  /usr/bin/python3 bench/torch_bench.py --vocab 256 --emb 256 --hidden 1024 \
      --layers 1 --batch 32 --seq 128 --threads 2 --steps 10

--device cuda runs it on the GPU (cuDNN's nn.GRU / nn.LSTM), waiting for the
device at the start and the end of the timed steps, and prints peak GPU memory
too. TF32 stays off unless --tf32 1 (cuDNN's RNNs would otherwise use it for
float32 by default), so that both sides compute in float32, as `dsf bench
--device cuda` does.

Needs Debian's python3-torch (apt-get install python3-torch python3-numpy)."""
import os

# PyTorch at its best on a CPU (Debian's torch runs nn.GRU's products through
# OpenBLAS): OpenBLAS single-threaded, so that its own threads do not fight the
# --threads OpenMP threads of torch. Set before numpy or torch loads OpenBLAS; an
# OPENBLAS_NUM_THREADS already in the environment wins (to time the other setting).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import resource
import time

import torch
import torch.nn as nn


CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class LM(nn.Module):
    def __init__(self, cell, V, E, H, L):
        super().__init__()
        self.encoder = nn.Embedding(V, E)
        self.rnn = CELLS[cell](E, H, L)
        self.decoder = nn.Linear(H, V)

    def forward(self, x, h):
        out, h = self.rnn(self.encoder(x), h)
        return self.decoder(out), h


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in (("vocab", 256), ("emb", 256), ("hidden", 1024), ("layers", 1),
                          ("batch", 32), ("seq", 128), ("threads", 2), ("steps", 10),
                          ("warmup", 2), ("seed", 1)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--cell", choices=sorted(CELLS), default="gru")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--tf32", type=int, choices=(0, 1), default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
        torch.backends.cudnn.allow_tf32 = bool(a.tf32)
    V, B, T = a.vocab, a.batch, a.seq
    model = LM(a.cell, V, a.emb, a.hidden, a.layers).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    crit = nn.CrossEntropyLoss()
    tokens = [torch.randint(0, V, (T + 1, B), device=dev) for _ in range(4)]
    h = torch.zeros(a.layers, B, a.hidden, device=dev)
    if a.cell == "lstm":
        h = (h, torch.zeros(a.layers, B, a.hidden, device=dev))
    print(f"model: torch.nn.{CELLS[a.cell].__name__}, {a.layers} layer{'s' if a.layers > 1 else ''}, vocab {V}, "
          f"emb {a.emb}, hidden {a.hidden}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")
    where = f"{torch.get_num_threads()} threads"
    if a.device == "cuda":
        where = (f"{torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}, "
                 f"tf32 {'on' if a.tf32 else 'off'}")
    print(f"step: batch {B} x seq {T} = {B * T} tokens, SGD, clip 0.25, {where}, "
          f"torch {torch.__version__}")
    print(f"threads: torch {torch.get_num_threads()}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}; "
          + "; ".join(l.strip() for l in torch.__config__.parallel_info().splitlines()
                      if "OpenMP" in l or "ATen" in l or "MKL" in l))
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    t0 = None
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            sync()
            t0 = time.perf_counter()
        tok = tokens[s % len(tokens)]
        x, y = tok[:-1], tok[1:]
        h = tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()
        opt.zero_grad()
        logits, h = model(x, h)
        loss = crit(logits.reshape(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
    sync()
    dt = time.perf_counter() - t0
    print(f"steps: {a.steps} timed after {a.warmup} warm-up, {dt:.3f} s, last loss {loss.item():.4f}")
    print(f"tokens/s {B * T * a.steps / dt:.1f}")
    print(f"ms/step {1e3 * dt / a.steps:.3f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    if a.device == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
