#!/usr/bin/python3
"""The speed of the authors' PTB recipe (`dsf train --recipe paper-ptb`: residual
GRU stack, batches of 128 padded sentences, V = 10,000, Adam) for bptt, ft and dsf,
beside the same model and batches in PyTorch (bench/paper_track.py's
implementation: nn.GRU for bptt, the authors' formulations of ft and dsf), its
decoder run on the counted rows only, as dsf's is.

    /usr/bin/python3 bench/recipe_speed.py --data ../shared/data/ptb [--dsf build/dsf]
        [--layers 1] [--hidden 256] [--steps 30] [--warmup 5] [--threads 2] [--reps 2]
        [--baseline-dsf OTHER]

Tokens are the counted (non-pad) targets, as dsf's log counts them; seconds per
epoch are the epoch's steps (329 at batch 128) at the measured time per step.
dsf's figure is the best of --reps runs of --warmup + --steps steps, timed from
its log (the windows after the warm-up). dsf's recurrence skips the padding
(each batch's rows longest first, a ragged recurrence: model/lm.h); PyTorch's runs
either on every position (nn.GRU on the padded batch, as the authors' code) or
packed (torch.nn.utils.rnn.pack_padded_sequence, which skips the padding too; for
ft and dsf the no-grad pass that gives the states). Each PyTorch setting runs in
its own process (OpenBLAS reads its variable when it loads), --reps times: torch
threads = --threads, OPENBLAS_NUM_THREADS=1 and =--threads, padded and packed;
the fastest is kept and printed with its setting. --baseline-dsf times another
dsf binary (an earlier build) the same way and prints its rate and the ratio."""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_child(a):
    """Times --steps steps of one method in this process; prints `tokens/s X`."""
    sys.path.insert(0, HERE)
    import paper_track as pt  # sets OPENBLAS_NUM_THREADS=1 unless given
    import torch

    torch.set_num_threads(a.threads)
    sents, vocab = pt.load_sentences(os.path.join(a.data, "ptb.train.txt"))
    V, H, L, B, T = len(vocab), a.hidden, a.layers, 128, 64
    model = pt.Model(V, H, L, a.torch_child)
    pt.load_into(model, pt.init_weights(V, H, L, 1), L)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    crit = torch.nn.CrossEntropyLoss(ignore_index=pt.PAD, reduction="sum")
    order = pt.epoch_order(len(sents), 1, 0)
    tokens, t0 = 0, None
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            t0 = time.perf_counter()
        x, y = pt.batch(sents, order[step * B:(step + 1) * B], T)
        opt.zero_grad()
        keep = y != pt.PAD
        n = int(keep.sum())
        # The decoder on the counted rows only, as dsf does: what a careful user
        # would write (the authors' code runs it on every position).
        lengths = keep.sum(1) if a.packed else None
        h = model.embedding(x)
        for layer in model.layers:
            h = h + layer(h, lengths)
        loss = crit(model.head(h[keep]), y[keep]) / n
        loss.backward()
        opt.step()
        if step >= a.warmup:
            tokens += n
    dt = time.perf_counter() - t0
    print(f"tokens/s {tokens / dt:.1f}")
    print(f"s/step {dt / a.steps:.4f}")


def dsf_rate(a, method, tmp, dsf=None):
    log = os.path.join(tmp, "log.csv")
    cmd = [dsf or a.dsf, "train", "--recipe", "paper-ptb", "--data", a.data, "--layers", str(a.layers),
           "--hidden", str(a.hidden), "--method", method, "--steps", str(a.warmup + a.steps),
           "--evals", "0", "--log", log, "--log-every", str(a.warmup), "--no-test",
           "--threads", str(a.threads)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"dsf train failed ({r.returncode}): {r.stderr.strip()}")
    with open(log) as f:
        rows = [row for row in csv.DictReader(f) if row["kind"] == "train"]
    # windows of --warmup steps; the first is the warm-up
    toks = sum(int(b["tokens"]) - int(p["tokens"]) for p, b in zip(rows, rows[1:]))
    secs = float(rows[-1]["elapsed_s"]) - float(rows[0]["elapsed_s"])
    steps = int(rows[-1]["step"]) - int(rows[0]["step"])
    return toks / secs, secs / steps, " ".join(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--dsf", default=os.path.join(HERE, "..", "build", "dsf"))
    for name, default in (("layers", 1), ("hidden", 256), ("steps", 30), ("warmup", 5),
                          ("threads", 2), ("reps", 2)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--baseline-dsf", default=None)
    ap.add_argument("--torch-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--packed", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.steps % a.warmup:
        sys.exit("--steps must be a multiple of --warmup (dsf logs every --warmup steps)")
    if a.torch_child:
        return torch_child(a)
    per_epoch = 329  # ceil(42,068 sentences / 128)
    print(f"PTB, the authors' recipe: GRU {a.layers}x{a.hidden} residual, batch 128 padded "
          f"sentences, V 10000, Adam; {a.steps} steps timed after {a.warmup}; {a.threads} threads; "
          f"best of {a.reps}")
    print(f"dsf: {subprocess.run([a.dsf, 'version'], capture_output=True, text=True).stdout.strip()}")
    print(f"{'method':8} {'dsf tok/s':>10} {'s/epoch':>8}  {'torch tok/s':>11} {'s/epoch':>8}  "
          f"{'dsf/torch':>9}  torch's OPENBLAS_NUM_THREADS, padding")
    tmp = tempfile.mkdtemp()
    try:
        for method in ("bptt", "ft", "dsf"):
            best = max((dsf_rate(a, method, tmp) for _ in range(a.reps)), key=lambda r: r[0])
            if a.baseline_dsf:
                base = max(dsf_rate(a, method, tmp, a.baseline_dsf)[0] for _ in range(a.reps))
                print(f"{method:8} baseline {a.baseline_dsf}: {base:.0f} tokens/s; this dsf "
                      f"{best[0]:.0f}: {best[0] / base:.2f}x", flush=True)
            tt, tob, ts = 0.0, None, None
            for ob in sorted({"1", str(a.threads)}):
                for packed in (0, 1):
                    for _ in range(a.reps):
                        env = dict(os.environ, OPENBLAS_NUM_THREADS=ob)
                        r = subprocess.run([sys.executable, __file__, "--torch-child", method,
                                            "--data", a.data, "--layers", str(a.layers),
                                            "--hidden", str(a.hidden), "--steps", str(a.steps),
                                            "--warmup", str(a.warmup), "--threads",
                                            str(a.threads), "--packed", str(packed)],
                                           capture_output=True, text=True, env=env)
                        if r.returncode != 0:
                            sys.exit(f"torch {method} failed: {r.stderr.strip()}")
                        out = dict(l.split(" ", 1) for l in r.stdout.strip().splitlines())
                        if float(out["tokens/s"]) > tt:
                            tt, ts = float(out["tokens/s"]), float(out["s/step"])
                            tob = f"{ob}, {'packed' if packed else 'padded'}"
            print(f"{method:8} {best[0]:10.0f} {best[1] * per_epoch:8.0f}  {tt:11.0f} "
                  f"{ts * per_epoch:8.0f}  {best[0] / tt:8.2f}x  {tob}", flush=True)
    finally:
        shutil.rmtree(tmp)
    print("dsf: " + best[2].replace(" --method dsf", " --method M").replace(
        os.path.join(tmp, "log.csv"), "LOG").replace(a.dsf, "dsf"))


if __name__ == "__main__":
    main()
