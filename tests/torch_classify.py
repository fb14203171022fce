#!/usr/bin/env python3
"""Compares `dsf grad --floats X --labels Y` (a sequence classifier) with PyTorch.

    /usr/bin/python3 tests/torch_classify.py [build/dsf]

The model: L GRU layers over continuous inputs (I numbers a step; the first
layer's weight_ih is (3H, I)), and a linear head (decoder.weight (C,H),
decoder.bias (C)) on the top layer's state at the last step; the loss is the mean
cross-entropy of the rows' classes. Only the last step carries an error, so the
state gradient travels the whole sequence back. The reference, in float64:
  bptt  torch.nn.GRU per layer, autograd;
  ft    the per-step loop with the recurrent input detached;
  dsf   the same with the surrogate a*h_{t-1} - (a*h_{t-1}).detach()
        (delta_t = e_t + a * delta_{t+1}), for --feedback linspace and for a
        feedback read from the model file;
for 1 and 2 layers and I = 1 and 3. Tolerances as tests/torch_grad.py.
One line per comparison, then "torch: N passed, N failed".
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import numpy as np
    import torch
except ImportError:
    print("torch: 0 passed, 0 failed, 1 skipped (python3-torch not installed)")
    sys.exit(0)

from torch_grad import cell, compare

CONFIGS = [  # (layers, batch, steps, inputs, hidden, classes)
    (1, 4, 12, 1, 8, 5),
    (2, 3, 10, 3, 6, 4),
]


def make_model(L, I, H, C, seed):
    g = torch.Generator().manual_seed(seed)

    def u(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) - 0.5).float()

    P = {}
    for l in range(L):
        P[f"rnn.weight_ih_l{l}"] = u(3 * H, I if l == 0 else H)
        P[f"rnn.weight_hh_l{l}"] = u(3 * H, H)
        P[f"rnn.bias_ih_l{l}"] = u(3 * H)
        P[f"rnn.bias_hh_l{l}"] = u(3 * H)
    P["decoder.weight"] = u(C, H)
    P["decoder.bias"] = u(C)
    fb = {f"rnn.feedback_l{l}": (u(H).double() + 0.5).float() for l in range(L)}
    return P, fb


def reference(method, P32, xs, labels, L, H, feedback=None):
    """xs (B, T, I) float64, labels (B,)."""
    P = {k: v.double().requires_grad_(True) for k, v in P32.items()}
    x = torch.as_tensor(xs).transpose(0, 1)  # (T, B, I)
    T, B = x.shape[0], x.shape[1]
    mods = []
    for l in range(L):
        if method == "bptt":
            gru = torch.nn.GRU(x.shape[2], H).double()
            with torch.no_grad():
                for name, prm in gru.named_parameters():
                    prm.copy_(P["rnn." + name.replace("_l0", f"_l{l}")])
            x, _ = gru(x, torch.zeros(1, B, H, dtype=torch.float64))
            mods.append((l, gru))
        else:
            a = feedback[l] if method == "dsf" else None
            h = torch.zeros(B, H, dtype=torch.float64)
            outs = []
            for t in range(T):
                new = cell(P, l, x[t], h.detach(), H)
                if a is not None:
                    new = new + (a * h - (a * h).detach())
                h = new
                outs.append(h)
            x = torch.stack(outs)
    logits = x[-1] @ P["decoder.weight"].T + P["decoder.bias"]
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels))
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in P.items() if v.grad is not None}
    for l, gru in mods:
        for name, prm in gru.named_parameters():
            grads["rnn." + name.replace("_l0", f"_l{l}")] = prm.grad.numpy()
    return float(loss), grads


def main():
    dsf = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "dsf")
    passed = failed = 0

    def report(ok, desc, detail=""):
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print(f"ok   torch {desc}" if ok else f"FAIL torch {desc}: {detail}")

    import st_py_check as st
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        init, xf, yf, out = (os.path.join(tmp, n) for n in
                             ("init.safetensors", "x.txt", "y.txt", "g.safetensors"))
        for ci, (L, B, T, I, H, C) in enumerate(CONFIGS):
            P, fb = make_model(L, I, H, C, seed=400 + ci)
            rs = np.random.RandomState(ci)
            xs = rs.rand(B, T, I).astype(np.float32).astype(np.float64)  # as dsf reads them
            labels = rs.randint(0, C, size=B)
            np.savetxt(xf, xs.reshape(B, T * I), fmt="%.9g")
            np.savetxt(yf, labels, fmt="%d")
            lin = [torch.linspace(0, 1, H, dtype=torch.float64)] * L
            drawn = [fb[f"rnn.feedback_l{l}"].double() for l in range(L)]
            for name, method, extra, file_fb, a in (
                    ("bptt", "bptt", (), False, None), ("ft", "ft", (), False, None),
                    ("dsf linspace", "dsf", ("--feedback", "linspace"), False, lin),
                    ("dsf, the file's feedback", "dsf", (), True, drawn)):
                desc = f"classifier {name} L={L} B={B} T={T} I={I} H={H} C={C}"
                tensors = {k: v.numpy() for k, v in P.items()}
                if file_fb:
                    tensors.update({k: v.numpy() for k, v in fb.items()})
                st.save(init, tensors)
                if os.path.exists(out):
                    os.remove(out)
                r = subprocess.run([dsf, "grad", "--init", init, "--floats", xf, "--labels", yf,
                                    "--method", method, "--out", out, "--threads", "1", *extra],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    report(False, desc, (r.stderr or r.stdout).strip())
                    continue
                got = st.load(out)[0]
                loss, ref = reference(method, P, xs, labels, L, H, a)
                bad, worst = compare(got, ref, float(got["loss"].reshape(-1)[0]), loss)
                report(not bad, f"{desc} (worst error/tolerance {worst:.1e})", "; ".join(bad))
        # Only the last step's error: the methods must differ by far more than the
        # tolerance, or the comparisons could not tell them apart.
        L, B, T, I, H, C = CONFIGS[0]
        P, fb = make_model(L, I, H, C, seed=400)
        xs = np.random.RandomState(0).rand(B, T, I).astype(np.float32).astype(np.float64)
        labels = np.random.RandomState(0).randint(0, C, size=B)
        g = {m: reference(m, P, xs, labels, L, H, [torch.linspace(0, 1, H, dtype=torch.float64)])
             [1]["rnn.weight_hh_l0"] for m in ("bptt", "ft", "dsf")}
        gaps = [float(np.abs(g[p] - g[q]).max()) for p, q in (("bptt", "ft"), ("dsf", "ft"),
                                                               ("bptt", "dsf"))]
        report(min(gaps) > 1e-3, "the methods differ for a classifier",
               ", ".join(f"{x:.1e}" for x in gaps))
    print(f"torch: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
