#!/usr/bin/env python3
"""The PTB word-level recipe of `dsf train` in PyTorch, for a side-by-side run.

    /usr/bin/python3 bench/ptb_torch.py [--data DIR] [--epochs 1] [--threads 2] [--log F.csv]

The model and loop of PyTorch's examples/word_language_model without dropout:
Embedding(V,E) -> nn.GRU(E,H,L) -> Linear(H,V); encoder and decoder weights uniform
+-0.1, decoder bias 0, the GRU at PyTorch's default initialisation. Stateful
batching (B parallel streams, T steps per update, the hidden state carried over
and detached), plain SGD p -= lr * grad after a global gradient-norm clip, the
rate divided by 4 when validation does not improve, evaluation batch 10, the test
split scored with the parameters of the best validation loss.

stdout holds only the results: one line per epoch,
    epoch E valid_ppl X time_s Y tokens_per_s Z
(time_s: the epoch's wall time including its validation; tokens_per_s: training
tokens over training time) and a final line `test_ppl X`. Progress goes to stderr.
--log writes the columns of `dsf train --log`, so bench/ptb_compare.sh reads both.
"""
import os

# PyTorch at its best on a CPU (Debian's torch runs nn.GRU's products through
# OpenBLAS): OpenBLAS single-threaded, so that its own threads do not fight the
# --threads OpenMP threads of torch. Set before numpy or torch loads OpenBLAS; an
# OPENBLAS_NUM_THREADS already in the environment wins (to time the other setting).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import math
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "ptb"))


def tokenize(path, vocab):
    """As data.Corpus.tokenize in the example: words of each line plus <eos>; the
    vocabulary grows in order of first appearance (train first, then valid and test,
    which on PTB add nothing: every split is already <unk>-mapped to the same 10k words)."""
    ids = []
    with open(path, encoding="utf8") as f:
        for line in f:
            for w in line.split() + ["<eos>"]:
                if w not in vocab:
                    vocab[w] = len(vocab)
                ids.append(vocab[w])
    return torch.tensor(ids, dtype=torch.long)


def batchify(data, B):
    n = data.size(0) // B
    return data[: n * B].view(B, n).t().contiguous()  # (n, B): column b is stream b


class Model(nn.Module):
    def __init__(self, V, E, H, L):
        super().__init__()
        self.encoder = nn.Embedding(V, E)
        self.rnn = nn.GRU(E, H, L)
        self.decoder = nn.Linear(H, V)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x, h):
        out, h = self.rnn(self.encoder(x), h)
        return self.decoder(out), h


def evaluate(model, data, T, L, H):
    """Mean cross-entropy per token over the whole split (B = data.size(1) streams)."""
    model.eval()
    h = torch.zeros(L, data.size(1), H)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, T):
            t = min(T, data.size(0) - 1 - i)
            out, h = model(data[i:i + t], h)
            total += nn.functional.cross_entropy(out.view(-1, out.size(-1)),
                                                 data[i + 1:i + 1 + t].reshape(-1)).item() * t
            count += t
    model.train()
    return total / count


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="directory with ptb.{train,valid,test}.txt")
    p.add_argument("--emb", type=int, default=200)
    p.add_argument("--hidden", type=int, default=200)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--seq", type=int, default=35)
    p.add_argument("--eval-batch", type=int, default=10)
    p.add_argument("--lr", type=float, default=20)
    p.add_argument("--clip", type=float, default=0.25)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=0,
                   help="stop each epoch after this many steps (smoke runs)")
    p.add_argument("--log-every", type=int, default=200)
    p.add_argument("--log", help="CSV log in the columns of dsf train --log")
    p.add_argument("--save-init", metavar="FILE",
                   help="write the initial weights (safetensors, the names dsf uses) and exit; "
                        "dsf train --init FILE then starts from the same point")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    print(f"threads: torch {torch.get_num_threads()}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}", file=sys.stderr)

    vocab = {}
    splits = {}
    for s in ("train", "valid", "test"):
        path = os.path.join(a.data, f"ptb.{s}.txt")
        if not os.path.exists(path):
            sys.exit(f"ptb_torch.py: {path} not found (give --data DIR)")
        splits[s] = tokenize(path, vocab)
    V = len(vocab)
    train = batchify(splits["train"], a.batch)
    valid, test = batchify(splits["valid"], a.eval_batch), batchify(splits["test"], a.eval_batch)
    model = Model(V, a.emb, a.hidden, a.layers)
    if a.save_init:
        sys.path.insert(0, os.path.join(HERE, "..", "tests"))
        import st_py_check
        st_py_check.save(a.save_init, {k: v.detach().numpy() for k, v in model.state_dict().items()})
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, vocabulary {V}, "
          f"train {splits['train'].numel()} tokens, "
          f"{sum(q.numel() for q in model.parameters())} parameters", file=sys.stderr)

    log = open(a.log, "w") if a.log else None

    def log_row(kind, epoch, step, tokens, loss, lr, gnorm, tok_s, elapsed):
        if log:
            log.write(f"{kind},{epoch},{step},{tokens},{loss:.6f},{math.exp(loss):.4f},{lr:.6g},"
                      f"{gnorm:.6g},{tok_s:.1f},{elapsed:.3f}\n")
            log.flush()

    if log:
        log.write("kind,epoch,step,tokens,loss,ppl,lr,grad_norm,tokens_per_s,elapsed_s\n")
    lr, best, best_state = a.lr, math.inf, None
    step, tokens = 0, 0
    steps_per_epoch = (train.size(0) - 1 + a.seq - 1) // a.seq
    if a.max_steps:
        steps_per_epoch = min(steps_per_epoch, a.max_steps)
    t0 = time.time()
    for epoch in range(1, a.epochs + 1):
        t_epoch = time.time()
        train_time, epoch_tokens = 0.0, 0
        h = torch.zeros(a.layers, a.batch, a.hidden)
        win_loss, win_n, win_tok, win_t = 0.0, 0, 0, time.time()
        for k in range(steps_per_epoch):
            i = k * a.seq
            t = min(a.seq, train.size(0) - 1 - i)
            x, y = train[i:i + t], train[i + 1:i + 1 + t]
            h = h.detach()
            model.zero_grad()
            out, h = model(x, h)
            loss = nn.functional.cross_entropy(out.view(-1, V), y.reshape(-1))
            loss.backward()
            gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip))
            for q in model.parameters():
                q.data.add_(q.grad, alpha=-lr)
            step += 1
            tokens += t * a.batch
            epoch_tokens += t * a.batch
            win_loss += loss.item()
            win_n += 1
            win_tok += t * a.batch
            if step % a.log_every == 0 or k + 1 == steps_per_epoch:
                now = time.time()
                train_time += now - win_t
                m = win_loss / win_n
                print(f"step {step} | epoch {epoch} {100 * (k + 1) / steps_per_epoch:3.0f}% | "
                      f"loss {m:.4f} ppl {math.exp(m):.2f} | lr {lr:g} | gnorm {gnorm:.3f} | "
                      f"{win_tok / (now - win_t):.0f} tokens/s", file=sys.stderr)
                log_row("train", epoch, step, tokens, m, lr, gnorm, win_tok / (now - win_t), now - t0)
                win_loss, win_n, win_tok, win_t = 0.0, 0, 0, now
        val = evaluate(model, valid, a.seq, a.layers, a.hidden)
        now = time.time()
        print(f"| end of epoch {epoch} | valid ppl {math.exp(val):.2f} | "
              f"{now - t_epoch:.1f}s", file=sys.stderr)
        print(f"epoch {epoch} valid_ppl {math.exp(val):.2f} time_s {now - t_epoch:.1f} "
              f"tokens_per_s {epoch_tokens / train_time:.0f}", flush=True)
        log_row("valid", epoch, step, tokens, val, lr, 0, 0, now - t0)
        if val < best:
            best = val
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            lr /= 4
            print(f"| validation did not improve: learning rate now {lr:g}", file=sys.stderr)
    if best_state is not None:
        model.load_state_dict(best_state)
    tl = evaluate(model, test, a.seq, a.layers, a.hidden)
    print(f"test_ppl {math.exp(tl):.2f}")
    log_row("test", a.epochs, step, tokens, tl, 0, 0, 0, time.time() - t0)
    if log:
        log.close()


if __name__ == "__main__":
    main()
