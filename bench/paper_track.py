#!/usr/bin/env python3
"""dsf's `--recipe paper-ptb` against a PyTorch implementation of the same recipe,
step for step, from the same initial weights and the same batches.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/paper_track.py --data ../shared/data/ptb \
        [--dsf build/dsf] [--layers 1] [--hidden 256] [--steps 200] [--methods bptt,ft,dsf] \
        [--seed 1] [--threads 2] [--out experiments/results/paper_track]

The PyTorch side is written from the recipe's description (docs/RECIPES.md), in
the authors' own formulation of each method:
  bptt  torch.nn.GRU per layer, autograd through time;
  ft    the states computed without gradient, then every step recomputed in
        parallel from its detached previous state (their NoBpttRnn);
  dsf   the same forward, and a hook on the layer's outputs that replaces their
        gradient by the scan delta_t = e_t + A delta_{t+1}, A = diag(linspace(0, 1,
        H)) (their DfaRnn).
Model: embedding H, L residual GRU layers x <- x + GRU(x), untied decoder; the
embedding and decoder weights N(0, 0.02^2), decoder bias 0, GRU weights
U(+-1/sqrt(H)). Data: every line of ptb.train.txt is <bos> w1 .. wn <eos>, cut to
65 tokens, padded with <pad> = 0 in batches of 128; the order of each epoch is
dsf's (data/batch.h: xoshiro256** seeded with seed + 0x9E3779B97F4A7C15 (e + 1),
Fisher-Yates, then each batch's sentences longest first, ties in that order),
reproduced here. torch.optim.Adam(lr 1e-3, weight_decay 1e-4),
no clipping; the loss is the summed cross-entropy of the non-pad targets over
their count.

The initial weights are drawn here, written as safetensors and given to dsf
with --init. Both sides train `--steps` steps; the script writes losses.csv (step,
method, dsf, torch) and prints a summary per method: the loss at a few steps and
the largest relative difference over all steps.
"""
import os

# PyTorch at its best on a CPU (Debian's torch runs nn.GRU's products through
# OpenBLAS): OpenBLAS single-threaded, so that its own threads do not fight the
# --threads OpenMP threads of torch. Set before numpy or torch loads OpenBLAS; an
# OPENBLAS_NUM_THREADS already in the environment wins (to time the other setting).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import csv
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import numpy as np
import torch

import st_py_check as st

M64 = (1 << 64) - 1
PAD, BOS, EOS, UNK = 0, 1, 2, 3


class Xoshiro:
    """xoshiro256** seeded through splitmix64, as src/core/common.c."""

    def __init__(self, seed):
        s, x = [], seed & M64
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            s.append(z ^ (z >> 31))
        self.s = s

    def next(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result


def epoch_order(n, seed, epoch):
    r = Xoshiro((seed + 0x9E3779B97F4A7C15 * (epoch + 1)) & M64)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = r.next() % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def load_sentences(path):
    vocab = {"<pad>": PAD, "<bos>": BOS, "<eos>": EOS, "<unk>": UNK}
    sents = []
    with open(path, encoding="utf8") as f:
        for line in f:
            words = ["<bos>"] + line.split() + ["<eos>"]
            sents.append([vocab.setdefault(w, len(vocab)) for w in words])
    return sents, vocab


def batch(sents, idx, T):
    # longest first, ties in the epoch's order (a stable sort), as dsf's batches
    idx = sorted(idx, key=lambda i: -min(len(sents[i]), T + 1))
    cut = [sents[i][:T + 1] for i in idx]
    n = max(len(s) for s in cut)
    arr = np.full((len(cut), n), PAD, dtype=np.int64)
    for b, s in enumerate(cut):
        arr[b, :len(s)] = s
    t = torch.from_numpy(arr)
    return t[:, :-1], t[:, 1:]


class Layer(torch.nn.Module):
    def __init__(self, H, method):
        super().__init__()
        self.gru = torch.nn.GRU(H, H, batch_first=True)
        self.cell = torch.nn.GRUCell(H, H)
        self.cell.weight_ih = self.gru.weight_ih_l0  # one set of weights
        self.cell.weight_hh = self.gru.weight_hh_l0
        self.cell.bias_ih = self.gru.bias_ih_l0
        self.cell.bias_hh = self.gru.bias_hh_l0
        self.method = method
        self.register_buffer("a", torch.linspace(0, 1, H))

    def run_gru(self, x, lengths):
        """nn.GRU over x (B,T,H); with lengths (rows sorted longest first), packed:
        the padding is skipped, and its outputs are 0."""
        if lengths is None:
            return self.gru(x)[0]
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
        out = self.gru(packed)[0]
        return torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                      total_length=x.shape[1])[0]

    def forward(self, x, lengths=None):
        if self.method == "bptt":
            return self.run_gru(x, lengths)
        B, T, H = x.shape
        with torch.no_grad():
            states = self.run_gru(x, lengths)
        prev = torch.cat([torch.zeros(B, 1, H), states[:, :-1]], dim=1)
        out = self.cell(x.reshape(-1, H), prev.reshape(-1, H)).view(B, T, H)
        if self.method == "dsf" and out.requires_grad:
            a = self.a

            def hook(g):
                d = [g[:, T - 1]]
                for t in range(T - 2, -1, -1):
                    d.append(g[:, t] + a * d[-1])
                return torch.stack(d[::-1], dim=1)

            out.register_hook(hook)
        return out


class Model(torch.nn.Module):
    def __init__(self, V, H, L, method):
        super().__init__()
        self.embedding = torch.nn.Embedding(V, H)
        self.layers = torch.nn.ModuleList([Layer(H, method) for _ in range(L)])
        self.head = torch.nn.Linear(H, V)

    def forward(self, x, lengths=None):
        x = self.embedding(x)
        for layer in self.layers:
            x = x + layer(x, lengths)
        return self.head(x)


def init_weights(V, H, L, seed):
    g = torch.Generator().manual_seed(seed)
    k = 1 / H ** 0.5
    P = {"encoder.weight": torch.randn(V, H, generator=g) * 0.02}
    for l in range(L):
        for name, shape in (("weight_ih", (3 * H, H)), ("weight_hh", (3 * H, H)),
                            ("bias_ih", (3 * H,)), ("bias_hh", (3 * H,))):
            P[f"rnn.{name}_l{l}"] = (torch.rand(*shape, generator=g) * 2 - 1) * k
    P["decoder.weight"] = torch.randn(V, H, generator=g) * 0.02
    P["decoder.bias"] = torch.zeros(V)
    return P


def load_into(model, P, L):
    with torch.no_grad():
        model.embedding.weight.copy_(P["encoder.weight"])
        for l, layer in enumerate(model.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(layer.gru, f"{name}_l0").copy_(P[f"rnn.{name}_l{l}"])
        model.head.weight.copy_(P["decoder.weight"])
        model.head.bias.copy_(P["decoder.bias"])


def torch_losses(method, P, sents, V, H, L, steps, seed, T=64, B=128):
    model = Model(V, H, L, method)
    load_into(model, P, L)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           weight_decay=1e-4)
    crit = torch.nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    per_epoch = (len(sents) + B - 1) // B
    losses, epoch, order = [], -1, None
    for step in range(steps):
        e, k = divmod(step, per_epoch)
        if e != epoch:
            order, epoch = epoch_order(len(sents), seed, e), e
        x, y = batch(sents, order[k * B:(k + 1) * B], T)
        opt.zero_grad()
        logits = model(x)
        n = int((y != PAD).sum())
        loss = crit(logits.reshape(-1, V), y.reshape(-1)) / n
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


def dsf_losses(dsf, data, method, init, L, H, steps, seed, threads, tmp):
    log = os.path.join(tmp, f"dsf-{method}.csv")
    cmd = [dsf, "train", "--recipe", "paper-ptb", "--data", data, "--layers", str(L),
           "--hidden", str(H), "--method", method, "--init", init, "--steps", str(steps),
           "--evals", "0", "--log", log, "--log-every", "1", "--no-test", "--seed", str(seed),
           "--threads", str(threads)]
    if method == "dsf":
        cmd += ["--feedback", "linspace"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"dsf train failed ({r.returncode}): {r.stderr.strip()}")
    with open(log) as f:
        rows = [row for row in csv.DictReader(f) if row["kind"] == "train"]
    return [float(row["loss"]) for row in rows], " ".join(cmd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--dsf", default=os.path.join(HERE, "..", "build", "dsf"))
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--methods", default="bptt,ft,dsf")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sents, vocab = load_sentences(os.path.join(a.data, "ptb.train.txt"))
    V, H, L = len(vocab), a.hidden, a.layers
    P = init_weights(V, H, L, a.seed)
    rows, lines = [], []
    say = lambda s: (print(s, flush=True), lines.append(s))
    say(f"PTB, {len(sents)} sentences, vocabulary {V}; GRU {L}x{H} residual; {a.steps} steps; "
        f"torch {torch.__version__}, {a.threads} threads; OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    with tempfile.TemporaryDirectory() as tmp:
        init = os.path.join(tmp, "init.safetensors")
        st.save(init, {k: v.numpy() for k, v in P.items()})
        for method in a.methods.split(","):
            t0 = time.time()
            mine, cmd = dsf_losses(a.dsf, a.data, method, init, L, H, a.steps, a.seed,
                                   a.threads, tmp)
            t1 = time.time()
            ref = torch_losses(method, P, sents, V, H, L, a.steps, a.seed)
            t2 = time.time()
            if len(mine) != len(ref):
                sys.exit(f"{method}: dsf logged {len(mine)} steps, torch ran {len(ref)}")
            rel = [abs(m - r) / abs(r) for m, r in zip(mine, ref)]
            say(f"\n{method}: {cmd}")
            say(f"  wall: dsf {t1 - t0:.1f} s, torch {t2 - t1:.1f} s")
            say("  step   dsf loss   torch loss   relative difference")
            for s in sorted({1, 2, 10, 50, 100, a.steps // 2, a.steps}):
                if 1 <= s <= a.steps:
                    say(f"  {s:4d}   {mine[s - 1]:.6f}   {ref[s - 1]:.6f}   {rel[s - 1]:.2e}")
            w = min(50, a.steps)
            say(f"  mean over the last {w} steps: dsf {np.mean(mine[-w:]):.5f}, torch "
                f"{np.mean(ref[-w:]):.5f}")
            say(f"  largest relative difference over steps 1..{a.steps}: {max(rel):.2e} "
                f"(step {int(np.argmax(rel)) + 1}); steps 1..10: {max(rel[:10]):.2e}")
            rows += [(i + 1, method, m, r) for i, (m, r) in enumerate(zip(mine, ref))]
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "losses.csv"), "w") as f:
            f.write("step,method,dsf,torch\n")
            f.writelines(f"{s},{m},{x:.6f},{y:.6f}\n" for s, m, x, y in rows)
        with open(os.path.join(a.out, "track.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
