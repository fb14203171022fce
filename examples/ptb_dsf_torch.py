#!/usr/bin/env python3
"""The paper's PTB model in plain PyTorch, its recurrence trained by DSF through dsf_torch:
every sentence <bos> w1 .. wn <eos> from a zero state, padded, in batches of 128; an
embedding, L residual GRU layers x <- x + GRU(x), a linear decoder; Adam lr 1e-3 with
L2 1e-4, lr x 0.1 every 10 epochs (docs/RECIPES.md, the recipe `dsf train --recipe
paper-ptb` runs in C). Only the import of dsf_torch and `method=` differ from nn.GRU.

    make && PYTHONPATH=python python3 examples/ptb_dsf_torch.py --steps 100
"""
import argparse
import math

import torch
from torch import nn

import dsf_torch

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--data", default="../shared/data/ptb")
p.add_argument("--hidden", type=int, default=256)
p.add_argument("--layers", type=int, default=1)
p.add_argument("--method", default="dsf", choices=["bptt", "ft", "dsf"])
p.add_argument("--epochs", type=int, default=30)
p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: all)")
args = p.parse_args()
torch.manual_seed(1)

vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3}
def sentences(split):  # each line its own sequence, cut to 65 tokens
    lines = open(f"{args.data}/ptb.{split}.txt").read().splitlines()
    return [[1] + [vocab.setdefault(w, len(vocab)) for w in l.split()][:63] + [2] for l in lines]
train, valid = sentences("train"), sentences("valid")

def batches(data, size, shuffle):
    order = torch.randperm(len(data)).tolist() if shuffle else range(len(data))
    order = list(order)
    for i in range(0, len(order), size):
        rows = [data[j] for j in order[i:i + size]]
        t = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)  # <pad> = 0
        for r, s in enumerate(rows):
            t[r, :len(s)] = torch.tensor(s)
        yield t[:, :-1], t[:, 1:]

class Model(nn.Module):
    def __init__(self, V, H, L):
        super().__init__()
        self.emb, self.dec = nn.Embedding(V, H), nn.Linear(H, V)
        self.rnns = nn.ModuleList(dsf_torch.GRU(H, H, batch_first=True, method=args.method)
                                  for _ in range(L))  # feedback="linspace": the paper's A
        for w in (self.emb.weight, self.dec.weight):
            nn.init.normal_(w, std=0.02)
        nn.init.zeros_(self.dec.bias)
    def forward(self, x):
        x = self.emb(x)
        for rnn in self.rnns:
            x = x + rnn(x)[0]
        return self.dec(x)

model = Model(len(vocab), args.hidden, args.layers)
opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
loss_fn = nn.CrossEntropyLoss(ignore_index=0)

def evaluate():
    model.eval()
    total = count = 0
    with torch.no_grad():
        for x, y in batches(valid, 256, False):
            n = int((y != 0).sum())
            total += float(loss_fn(model(x).flatten(0, 1), y.flatten())) * n
            count += n
    model.train()
    return math.exp(total / count)

step = 0
for epoch in range(args.epochs):
    for x, y in batches(train, 128, True):
        loss = loss_fn(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            print(f"epoch {epoch + 1} step {step} train loss {loss.item():.3f}", flush=True)
        if step == args.steps:
            break
    print(f"epoch {epoch + 1} step {step} valid ppl {evaluate():.2f}", flush=True)
    if step == args.steps:
        break
    sched.step()
