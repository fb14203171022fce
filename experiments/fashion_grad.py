#!/usr/bin/env python3
"""How far each method's gradient is from BPTT's on sequential Fashion-MNIST.

    /usr/bin/python3 experiments/fashion_grad.py [--dsf build/dsf] [--batch 64]
        [--hidden 128] [--steps "98 392 784"] [--seed 1] [--runs "ft dsf:linspace ..."]
        [--out experiments/results/fashion_grad]

A GRU 1 x H classifier (PyTorch's default initialisation, U(+-1/sqrt(H)); head
N(0, 0.02)) reads the first T pixels of --batch training images, one pixel a step,
for each T of --steps, and `dsf grad --floats --labels` gives each method's gradient of the mean
cross-entropy of the class read from the last state. For each run the script
prints the gradient's norm, its norm relative to BPTT's, and its cosine with
BPTT's, over the recurrent weights (rnn.*) and over all parameters. Writes OUT/grad.md (the table) and OUT/grad.txt (the
commands). Only the last step carries an error, so this is the purest test of how
the state gradient travels 784 steps back.
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import st_py_check as st  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsf", default=os.path.join(HERE, "..", "build", "dsf"))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--steps", default="98 392 784")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", default="ft dsf:linspace dsf:linspace+1 dsf:linspace+2 "
                    "dsf:linspace+8 dsf:uniform dsf:uniform:0,0.5 dsf:uniform:0,0.5+2 dsf:diag "
                    "dsf:diag+2 dsf:zero+2")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "fashion_grad"))
    args = ap.parse_args()
    img = os.path.join(DATA, "train-images-idx3-ubyte.gz")
    if not os.path.exists(img):
        sys.exit(f"fashion_grad.py: no {img} (apt-get install dataset-fashion-mnist)")
    B, H, C = args.batch, args.hidden, 10
    x784 = idx(img)[:B].reshape(B, 784).astype(np.float64) / 255.0
    y = idx(os.path.join(DATA, "train-labels-idx1-ubyte.gz"))[:B]
    rs = np.random.RandomState(args.seed)
    k = 1 / np.sqrt(H)
    P = {"rnn.weight_ih_l0": rs.uniform(-k, k, (3 * H, 1)),
         "rnn.weight_hh_l0": rs.uniform(-k, k, (3 * H, H)),
         "rnn.bias_ih_l0": rs.uniform(-k, k, 3 * H),
         "rnn.bias_hh_l0": rs.uniform(-k, k, 3 * H),
         "decoder.weight": rs.normal(0, 0.02, (C, H)),
         "decoder.bias": np.zeros(C)}
    P = {n: v.astype(np.float32) for n, v in P.items()}
    os.makedirs(args.out, exist_ok=True)
    cmds = []
    grads = {}
    runs = ["bptt"] + args.runs.split()
    steps = [int(t) for t in args.steps.split()]
    with tempfile.TemporaryDirectory() as tmp:
        init, xf, yf = (os.path.join(tmp, n) for n in ("init.safetensors", "x.txt", "y.txt"))
        st.save(init, P)
        np.savetxt(yf, y, fmt="%d")
        for T in steps:
            np.savetxt(xf, x784[:, :T], fmt="%.9g")
            for run in runs:
                method, _, fb = run.partition(":")
                out = os.path.join(tmp, "g.safetensors")
                cmd = [args.dsf, "grad", "--init", init, "--floats", xf, "--labels", yf,
                       "--method", method, "--out", out, "--threads", "1"]
                if fb:
                    cmd += ["--feedback", fb]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"fashion_grad.py: {' '.join(cmd)}: {(r.stderr or r.stdout).strip()}")
                if T == steps[0]:
                    cmds.append(" ".join(c if c not in (init, xf, yf, out) else os.path.basename(c)
                                         for c in cmd[1:]))
                grads[T, run] = {n: v.astype(np.float64).ravel()
                                 for n, v in st.load(out)[0].items() if n in P}

    def flat(g, rnn_only):
        return np.concatenate([g[n] for n in sorted(P) if n.startswith("rnn.") or not rnn_only])

    lines = [f"GRU 1x{H} classifier, {B} Fashion-MNIST training images, the first T pixels "
             f"one a step, PyTorch's default initialisation (seed {args.seed}); gradient of "
             "the mean cross-entropy of the class read from the last state", "",
             "| T | run | norm (rnn.*) | / BPTT | cosine with BPTT (rnn.*) | norm (all) | "
             "cosine (all) |", "|---|---|---|---|---|---|---|"]
    for T in steps:
        ref_r, ref_a = flat(grads[T, "bptt"], True), flat(grads[T, "bptt"], False)
        for run in runs:
            gr, ga = flat(grads[T, run], True), flat(grads[T, run], False)
            nr = np.linalg.norm(gr)
            cos_r = gr @ ref_r / (nr * np.linalg.norm(ref_r) + 1e-300)
            cos_a = ga @ ref_a / (np.linalg.norm(ga) * np.linalg.norm(ref_a) + 1e-300)
            lines.append(f"| {T} | {run} | {nr:.4g} | {nr / np.linalg.norm(ref_r):.4g} | "
                         f"{cos_r:+.4f} | {np.linalg.norm(ga):.4g} | {cos_a:+.4f} |")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(os.path.join(args.out, "grad.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "grad.txt"), "w") as f:
        f.write("/usr/bin/python3 experiments/fashion_grad.py " + " ".join(sys.argv[1:]) + "\n")
        f.write("per T, for T in --steps:\n" + "\n".join("dsf " + c for c in cmds) + "\n")


if __name__ == "__main__":
    main()
