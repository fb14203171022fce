#!/usr/bin/env python3
"""Compares `dsf grad` with PyTorch autograd, tensor by tensor.

    /usr/bin/python3 tests/torch_grad.py [build/dsf]

Random models (float32 weights, compared in float64) and random tokens; for each
configuration and method the C command's gradient must equal the reference:
  bptt  autograd through torch.nn.GRU (the layout users load weights from);
  ft    a per-step loop whose recurrent input is detached;
  dsf   a per-step loop whose recurrent path is replaced by a zero-valued
        surrogate  a*h - (a*h).detach(),  so that the gradient reaching h_{t-1}
        through time is a * dL/dh_t: exactly δ_t = e_t + a ⊙ δ_{t+1}.
Prints one line per comparison and ends with "torch: N passed, N failed".
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
except ImportError as e:  # the comparison needs Debian's python3-torch
    print(f"torch: 0 passed, 0 failed, 1 skipped (python3-torch not installed: {e})")
    sys.exit(0)

import st_py_check as st

TOL = 2e-4
CONFIGS = [  # (layers, batch, seq, vocab, emb, hidden)
    (1, 3, 1, 13, 8, 8),
    (1, 4, 9, 13, 8, 12),
    (2, 3, 7, 13, 6, 10),
    (3, 4, 5, 11, 9, 8),
]


def make_model(L, V, E, H, seed):
    g = torch.Generator().manual_seed(seed)
    P = {"encoder.weight": torch.rand(V, E, generator=g) - 0.5}
    for l in range(L):
        I = E if l == 0 else H
        P[f"rnn.weight_ih_l{l}"] = torch.rand(3 * H, I, generator=g) - 0.5
        P[f"rnn.weight_hh_l{l}"] = torch.rand(3 * H, H, generator=g) - 0.5
        P[f"rnn.bias_ih_l{l}"] = torch.rand(3 * H, generator=g) - 0.5
        P[f"rnn.bias_hh_l{l}"] = torch.rand(3 * H, generator=g) - 0.5
    P["decoder.weight"] = torch.rand(V, H, generator=g) - 0.5
    P["decoder.bias"] = torch.rand(V, generator=g) - 0.5
    feedback = {f"rnn.feedback_l{l}": torch.rand(H, generator=g) for l in range(L)}
    return P, feedback  # float32


def cell(P, l, x, h, H):
    gi = x @ P[f"rnn.weight_ih_l{l}"].T + P[f"rnn.bias_ih_l{l}"]
    gh = h @ P[f"rnn.weight_hh_l{l}"].T + P[f"rnn.bias_hh_l{l}"]
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


def reference(method, P32, feedback, tokens, L, H):
    """Loss and gradients in float64 for tokens (B, T+1)."""
    P = {k: v.double().requires_grad_(True) for k, v in P32.items()}
    B, T1 = tokens.shape
    T = T1 - 1
    x = torch.as_tensor(tokens[:, :T].T.copy())  # (T, B)
    y = torch.as_tensor(tokens[:, 1:].T.copy())
    emb = P["encoder.weight"][x]  # (T, B, E)
    if method == "bptt":
        gru = torch.nn.GRU(emb.shape[2], H, L).double()
        for name, _ in list(gru.named_parameters()):
            delattr(gru, name)
            setattr(gru, name, P["rnn." + name])
        gru._flat_weights = [getattr(gru, n) for n in gru._flat_weights_names]
        out, _ = gru(emb, torch.zeros(L, B, H, dtype=torch.float64))
    else:
        seq = [emb[t] for t in range(T)]
        for l in range(L):
            a = feedback[f"rnn.feedback_l{l}"].double()
            h = torch.zeros(B, H, dtype=torch.float64)
            outs = []
            for t in range(T):
                new = cell(P, l, seq[t], h.detach(), H)
                if method == "dsf":
                    new = new + (a * h - (a * h).detach())
                h = new
                outs.append(h)
            seq = outs
        out = torch.stack(seq)
    logits = out @ P["decoder.weight"].T + P["decoder.bias"]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    return float(loss), {k: v.grad.numpy() for k, v in P.items()}


def main():
    dsf = sys.argv[1] if len(sys.argv) > 1 else "build/dsf"
    passed = failed = 0

    def report(ok, desc, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   torch {desc}")
        else:
            failed += 1
            print(f"FAIL torch {desc}: {detail}")

    if not os.access(dsf, os.X_OK):
        report(False, "binary", f"{dsf} is missing (run make first)")
        print(f"torch: {passed} passed, {failed} failed")
        return 1
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for ci, (L, B, T, V, E, H) in enumerate(CONFIGS):
            P, feedback = make_model(L, V, E, H, seed=100 + ci)
            tokens = np.random.RandomState(ci).randint(0, V, size=(B, T + 1))
            init = os.path.join(tmp, "init.safetensors")
            tok = os.path.join(tmp, "tokens.txt")
            st.save(init, {**{k: v.numpy() for k, v in P.items()},
                           **{k: v.numpy() for k, v in feedback.items()}})
            np.savetxt(tok, tokens, fmt="%d")
            for method in ("bptt", "ft", "dsf"):
                desc = f"{method} L={L} B={B} T={T} V={V} E={E} H={H}"
                out = os.path.join(tmp, f"grad_{method}.safetensors")
                run = subprocess.run([dsf, "grad", "--init", init, "--tokens", tok, "--method",
                                      method, "--out", out, "--threads", "1"],
                                     capture_output=True, text=True)
                if run.returncode != 0:
                    report(False, desc, f"dsf grad failed: {run.stderr.strip()}")
                    continue
                got, _ = st.load(out)
                loss, ref = reference(method, P, feedback, tokens, L, H)
                bad, worst = [], 0.0
                for name, g in ref.items():
                    if name not in got or got[name].shape != g.shape:
                        bad.append(f"{name} missing or misshapen")
                        continue
                    err = np.abs(got[name] - g).max() / max(1.0, np.abs(g).max())
                    worst = max(worst, err)
                    if err > TOL:
                        bad.append(f"{name} error {err:.2e}")
                if abs(float(got["loss"][0]) - loss) > TOL * max(1.0, abs(loss)):
                    bad.append(f"loss {float(got['loss'][0])} vs {loss}")
                if method == "dsf":
                    for name, a in feedback.items():
                        if name not in got or not np.array_equal(got[name], a.numpy()):
                            bad.append(f"{name} not written back as given")
                report(not bad, f"{desc} (worst relative error {worst:.1e})", "; ".join(bad))
        # The methods must disagree for T > 1, or the comparisons above prove little.
        L, B, T, V, E, H = CONFIGS[1]
        grads = {}
        for method in ("bptt", "ft", "dsf"):
            out = os.path.join(tmp, f"grad_{method}.safetensors")
            P, feedback = make_model(L, V, E, H, seed=101)
            grads[method] = reference(method, P, feedback,
                                      np.random.RandomState(1).randint(0, V, size=(B, T + 1)),
                                      L, H)[1]["rnn.weight_hh_l0"]
        d1 = np.abs(grads["bptt"] - grads["ft"]).max()
        d2 = np.abs(grads["dsf"] - grads["ft"]).max()
        report(d1 > 1e-4 and d2 > 1e-4, "methods differ for T > 1",
               f"|bptt-ft| {d1:.1e}, |dsf-ft| {d2:.1e}")
    print(f"torch: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
