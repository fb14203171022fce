#!/usr/bin/env python3
"""torch.nn.GRU against dsf_torch.GRU (bptt, dsf, ft) inside PyTorch: one forward and
backward pass of the recurrent module alone (loss = Σ out ⊙ R), at the character and
word shapes of docs/SPEED.md, float32 on the CPU, and on packed sentences.

    make && /usr/bin/python3 python/bench.py [--threads 2] [--reps 3] [--steps 5]
        [--shapes char,word,packed]

packed: a batch of 128 sentences of the lengths of PTB's first 128 training lines
(with <bos> and <eos>, cut to 64 as --recipe paper-ptb does; ../shared/data/ptb, else
lengths drawn from a fixed generator, said so) as a PackedSequence, hidden 256; nn.GRU
is timed on it packed and padded, its faster kept. tokens/s counts the real tokens.

Each measurement runs in its own process (OpenBLAS reads OPENBLAS_NUM_THREADS when
it loads) and is the best of --reps, the runs of every setting taking turns so that
a drift of the machine's speed touches them alike. nn.GRU is run at its best: torch
threads = --threads with OPENBLAS_NUM_THREADS=1 and with =--threads, the faster
kept and named. dsf_torch follows torch.get_num_threads(). Prints ms per step,
tokens/s and the ratio to nn.GRU at its best.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {  # name: (input, hidden, layers, batch, steps): bench/speed.sh's
    "char": (256, 1024, 1, 32, 128),
    "word": (650, 650, 2, 20, 35),
    "packed": (256, 256, 1, 128, 64),  # steps: the longest; lengths below
}
PTB = os.path.join(HERE, "..", "..", "shared", "data", "ptb", "ptb.train.txt")


def packed_lengths(B, T):
    """The sentence lengths of the packed shape, and where they come from."""
    if os.path.exists(PTB):
        with open(PTB) as f:
            lines = [next(f) for _ in range(B)]
        return [min(len(l.split()) + 1, T) for l in lines], "PTB's first training lines"
    import random

    g = random.Random(1)
    return [max(2, min(T, round(g.gauss(23, 11)))) for _ in range(B)], "drawn, mean 23"


def child(a):
    """Times --steps steps of one setting in this process; prints `ms X`."""
    import torch

    torch.set_num_threads(a.threads)
    I, H, L, B, T = SHAPES[a.shape]
    torch.manual_seed(1)
    if a.module == "torch":
        rnn = torch.nn.GRU(I, H, num_layers=L)
    else:
        sys.path.insert(0, HERE)
        import dsf_torch

        rnn = dsf_torch.GRU(I, H, num_layers=L, method=a.module)
    lengths = None
    if a.shape == "packed":  # padded to the longest sentence
        lengths = torch.tensor(packed_lengths(B, T)[0])
        T = int(lengths.max())
    x = torch.randn(T, B, I, requires_grad=True)
    R = torch.randn(T, B, H)
    if lengths is not None and a.padded:  # the padding's outputs carry no loss
        R = R * (torch.arange(T)[:, None] < lengths[None, :])[:, :, None]
    pack = lambda v: torch.nn.utils.rnn.pack_padded_sequence(v, lengths, enforce_sorted=False)
    best = float("inf")
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        rnn.zero_grad()
        if lengths is None or a.padded:
            out, _ = rnn(x)
            (out * R).sum().backward()
        else:
            out, _ = rnn(pack(x))
            (out.data * pack(R).data).sum().backward()
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            best = min(best, dt)
    print(f"ms {best * 1e3:.3f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--shapes", default="char,word")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--shape", default="char", help=argparse.SUPPRESS)
    p.add_argument("--module", default="torch", help=argparse.SUPPRESS)
    p.add_argument("--padded", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a)
    n = str(a.threads)
    base_settings = [("nn.GRU", "torch", "1"), ("nn.GRU", "torch", n),
                     ("dsf_torch bptt", "bptt", "1"), ("dsf_torch dsf", "dsf", "1"),
                     ("dsf_torch ft", "ft", "1")]
    if n == "1":
        base_settings.pop(1)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "unknown CPU")
    print(f"machine: {cpu}, {os.cpu_count()} cores; {a.threads} threads; best of {a.reps} "
          f"runs of {a.steps} steps after {a.warmup}")
    print(f"load before: {os.getloadavg()[0]:.2f}")
    for shape in a.shapes.split(","):
        if shape not in SHAPES:
            sys.exit(f"bench.py: no shape {shape!r} (give {', '.join(SHAPES)})")
        I, H, L, B, T = SHAPES[shape]
        settings = list(base_settings)
        tokens, what = B * T, ""
        if shape == "packed":  # nn.GRU padded too, its faster kept
            settings += [("nn.GRU padded", "torch", b) for _, m, b in base_settings if m == "torch"]
            lengths, source = packed_lengths(B, T)
            tokens, T = sum(lengths), max(lengths)
            what = f" (the longest), lengths from {min(lengths)} ({source}), {tokens} tokens"
        best = {}
        for _ in range(a.reps):
            for name, module, blas in settings:
                env = dict(os.environ, OPENBLAS_NUM_THREADS=blas)
                r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                                    "--shape", shape, "--module", module, "--threads", n,
                                    "--steps", str(a.steps), "--warmup", str(a.warmup)] +
                                   (["--padded"] if name.endswith("padded") else []),
                                   env=env, capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"bench.py: {name} failed:\n{r.stderr}")
                ms = float(r.stdout.split()[-1])
                key = (name, blas)
                best[key] = min(best.get(key, ms), ms)
        torch_key = min((k for k in best if k[0].startswith("nn.GRU")), key=lambda k: best[k])
        base = best[torch_key]
        print(f"\n== {shape}: input {I}, hidden {H}, layers {L}, batch {B}, steps {T}{what} "
              f"(forward + backward of the module)")
        print(f"{'module':<16} {'OPENBLAS':>8} {'ms/step':>9} {'tokens/s':>9} {'vs nn.GRU':>9}")
        for (name, blas), ms in best.items():
            mark = "  <- nn.GRU at its best" if (name, blas) == torch_key else ""
            print(f"{name:<16} {blas:>8} {ms:9.1f} {tokens / ms * 1e3:9.0f} {base / ms:8.2f}x{mark}")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
