#!/usr/bin/python3
"""The training step of `dsf classify` in PyTorch: a sequence of T one-dimensional
inputs (pixels) -> torch.nn.GRU (LSTM or RNN with --cell) -> a linear head on the
top layer's last state -> cross-entropy over 10 classes, forward + backward +
gradient clipping (1) + an Adam update, from a zero state, on random pixels.
Prints pixels/s and ms/step in the form bench/classify_speed.sh reads.

  /usr/bin/python3 bench/torch_classify_bench.py --hidden 128 --batch 128 --seq 784 \\
      --threads 2 --steps 5

Needs Debian's python3-torch (apt-get install python3-torch python3-numpy)."""
import os

# PyTorch at its best on a CPU (Debian's torch runs nn.GRU's products through
# OpenBLAS): OpenBLAS single-threaded unless the environment says otherwise (to
# time the other setting), set before torch loads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import time

import torch
import torch.nn as nn

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class Classifier(nn.Module):
    def __init__(self, cell, H, L, classes=10):
        super().__init__()
        self.rnn = CELLS[cell](1, H, L)
        self.head = nn.Linear(H, classes)

    def forward(self, x):  # x (T, B, 1)
        out, _ = self.rnn(x)
        return self.head(out[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in (("hidden", 128), ("layers", 1), ("batch", 128), ("seq", 784),
                          ("threads", 2), ("steps", 5), ("warmup", 1), ("seed", 1)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--cell", choices=sorted(CELLS), default="gru")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    B, T = a.batch, a.seq
    model = Classifier(a.cell, a.hidden, a.layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    batches = [(torch.rand(T, B, 1), torch.randint(0, 10, (B,))) for _ in range(2)]
    print(f"model: torch.nn.{CELLS[a.cell].__name__}, {a.layers} layer{'s' if a.layers > 1 else ''}, "
          f"input 1, hidden {a.hidden}, 10 classes, "
          f"{sum(p.numel() for p in model.parameters())} parameters")
    print(f"step: batch {B} x {T} steps = {B * T} pixels, Adam, clip 1, torch {torch.__version__}")
    print(f"threads: torch {torch.get_num_threads()}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}")
    t0 = None
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t0 = time.perf_counter()
        x, y = batches[s % len(batches)]
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    dt = time.perf_counter() - t0
    print(f"steps: {a.steps} timed after {a.warmup} warm-up, {dt:.3f} s, last loss {loss.item():.4f}")
    print(f"pixels/s {B * T * a.steps / dt:.1f}")
    print(f"ms/step {1e3 * dt / a.steps:.3f}")


if __name__ == "__main__":
    main()
