#!/usr/bin/env python3
"""Compares `dsf grad --arch residual --ignore-index P` with PyTorch in float64.

    /usr/bin/python3 tests/torch_recipe.py [build/dsf]

The authors' PTB model (docs/RECIPES.md): an embedding of
width H, L GRU layers each with a residual connection x <- x + GRU(x), an untied
linear decoder; every row of the batch is a sentence from a zero state, padded
with P to the longest, and a target equal to P carries no loss (the loss is the
mean cross-entropy of the other targets, torch's ignore_index). The reference is
written from that description alone:
  bptt  torch.nn.GRU per layer, autograd;
  ft    a per-step loop whose recurrent input is detached (the authors' "BP no TT");
  dsf   the ft loop plus the zero-valued surrogate a*h_{t-1} - (a*h_{t-1}).detach(),
        i.e. delta_t = e_t + a * delta_{t+1}, with a = linspace(0, 1, H) in every
        layer (the authors' A = diag(torch.linspace(0, 1, H)));
for 1 and 3 layers and rows of different lengths. Tolerances as tests/torch_grad.py.

Then the authors' WikiText model (`--arch block --block-proj --untied`): per block
x <- x + Linear(GRU(LN(x))), x <- x + W2 GELU(W1 LN(x)), a final LayerNorm and an
untied head, with the same three methods (no padding: chunks of equal length).

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

from torch_grad import cell, compare  # the GRU step checked against nn.GRU there

CONFIGS = [  # (layers, batch, seq, vocab, hidden)
    (1, 4, 9, 13, 8),
    (3, 5, 7, 11, 10),
]
PAD = 0


def make_model(L, V, H, seed):
    g = torch.Generator().manual_seed(seed)

    def u(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) - 0.5).float()

    P = {"encoder.weight": u(V, H)}
    for l in range(L):
        P[f"rnn.weight_ih_l{l}"] = u(3 * H, H)
        P[f"rnn.weight_hh_l{l}"] = u(3 * H, H)
        P[f"rnn.bias_ih_l{l}"] = u(3 * H)
        P[f"rnn.bias_hh_l{l}"] = u(3 * H)
    P["decoder.weight"] = u(V, H)
    P["decoder.bias"] = u(V)
    return P


def padded_tokens(B, T, V, seed):
    """(B, T+1) rows of lengths from 2 to T+1 (one full), ids 1..V-1, then PAD."""
    rs = np.random.RandomState(seed)
    lengths = [T + 1] + [int(rs.randint(2, T + 2)) for _ in range(B - 1)]
    tok = np.full((B, T + 1), PAD, dtype=np.int64)
    for b, n in enumerate(lengths):
        tok[b, :n] = rs.randint(1, V, size=n)
    return tok, lengths


def reference(method, P32, tokens, L, H, a=None):
    P = {k: v.double().requires_grad_(True) for k, v in P32.items()}
    T = tokens.shape[1] - 1
    xi = torch.as_tensor(tokens[:, :T].T.copy())
    y = torch.as_tensor(tokens[:, 1:].T.copy())
    B = y.shape[1]
    x = P["encoder.weight"][xi]  # (T, B, H)
    mods = []
    for l in range(L):
        if method == "bptt":
            gru = torch.nn.GRU(H, H, 1).double()
            with torch.no_grad():
                for name, prm in gru.named_parameters():
                    prm.copy_(P["rnn." + name.replace("_l0", f"_l{l}")])
            out, _ = gru(x, torch.zeros(1, B, H, dtype=torch.float64))
            mods.append((l, gru))
        else:
            h = torch.zeros(B, H, dtype=torch.float64)
            outs = []
            for t in range(T):
                new = cell(P, l, x[t], h.detach(), H)
                if method == "dsf":
                    new = new + (a * h - (a * h).detach())
                h = new
                outs.append(h)
            out = torch.stack(outs)
        x = x + out  # the residual connection
    logits = x @ P["decoder.weight"].T + P["decoder.bias"]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                             ignore_index=PAD)
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in P.items() if v.grad is not None}
    for l, gru in mods:
        for name, prm in gru.named_parameters():
            grads["rnn." + name.replace("_l0", f"_l{l}")] = prm.grad.numpy()
    return float(loss), grads


def make_block(L, V, H, M, seed):
    g = torch.Generator().manual_seed(seed)

    def u(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) - 0.5).float()

    P = {"encoder.weight": u(V, H)}
    for k in range(L):
        q = f"blocks.{k}."
        P.update({q + "ln1.weight": 1 + u(H), q + "ln1.bias": u(H),
                  q + "rnn.weight_ih": u(3 * H, H), q + "rnn.weight_hh": u(3 * H, H),
                  q + "rnn.bias_ih": u(3 * H), q + "rnn.bias_hh": u(3 * H),
                  q + "proj.weight": u(H, H), q + "proj.bias": u(H),
                  q + "ln2.weight": 1 + u(H), q + "ln2.bias": u(H),
                  q + "mlp.fc1.weight": u(M, H), q + "mlp.fc1.bias": u(M),
                  q + "mlp.fc2.weight": u(H, M), q + "mlp.fc2.bias": u(H)})
    P.update({"ln_f.weight": 1 + u(H), "ln_f.bias": u(H), "decoder.weight": u(V, H),
              "decoder.bias": u(V)})
    return P


def block_reference(method, P32, tokens, L, H, a=None):
    """The transformer-like model: torch modules for bptt, the per-step loop with the
    detached (ft) or surrogate-carrying (dsf) recurrent input otherwise."""
    P = {k: v.double().requires_grad_(True) for k, v in P32.items()}
    F = torch.nn.functional
    T = tokens.shape[1] - 1
    s = P["encoder.weight"][torch.as_tensor(tokens[:, :T].T.copy())]
    y = torch.as_tensor(tokens[:, 1:].T.copy())
    B = y.shape[1]
    mods = []
    for k in range(L):
        q = f"blocks.{k}."
        x = F.layer_norm(s, (H,), P[q + "ln1.weight"], P[q + "ln1.bias"], 1e-5)
        if method == "bptt":
            gru = torch.nn.GRU(H, H).double()
            with torch.no_grad():
                for name, prm in gru.named_parameters():
                    prm.copy_(P[q + "rnn." + name.replace("_l0", "")])
            r, _ = gru(x)
            mods.append((k, gru))
        else:
            C = {f"rnn.{n}_l0": P[q + "rnn." + n] for n in
                 ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            h = torch.zeros(B, H, dtype=torch.float64)
            outs = []
            for t in range(T):
                new = cell(C, 0, x[t], h.detach(), H)
                if method == "dsf":
                    new = new + (a * h - (a * h).detach())
                h = new
                outs.append(h)
            r = torch.stack(outs)
        s = s + r @ P[q + "proj.weight"].T + P[q + "proj.bias"]
        b = F.layer_norm(s, (H,), P[q + "ln2.weight"], P[q + "ln2.bias"], 1e-5)
        u = F.gelu(b @ P[q + "mlp.fc1.weight"].T + P[q + "mlp.fc1.bias"])
        s = s + u @ P[q + "mlp.fc2.weight"].T + P[q + "mlp.fc2.bias"]
    yf = F.layer_norm(s, (H,), P["ln_f.weight"], P["ln_f.bias"], 1e-5)
    logits = yf @ P["decoder.weight"].T + P["decoder.bias"]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in P.items() if v.grad is not None}
    for k, gru in mods:
        for name, prm in gru.named_parameters():
            grads[f"blocks.{k}.rnn." + name.replace("_l0", "")] = prm.grad.numpy()
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
        init = os.path.join(tmp, "init.safetensors")
        tok = os.path.join(tmp, "tokens.txt")
        out = os.path.join(tmp, "grad.safetensors")

        def run_c(method, P, tokens, extra, arch="residual"):
            st.save(init, {k: v.numpy() for k, v in P.items()})
            np.savetxt(tok, tokens, fmt="%d")
            if os.path.exists(out):
                os.remove(out)
            cmd = [dsf, "grad", "--init", init, "--tokens", tok, "--method", method, "--out", out,
                   "--arch", arch, "--ignore-index", str(PAD), "--threads", "1", *extra]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                return None, f"exit {r.returncode}: {(r.stderr or r.stdout).strip()}"
            return st.load(out)[0], ""

        for ci, (L, B, T, V, H) in enumerate(CONFIGS):
            P = make_model(L, V, H, seed=200 + ci)
            tokens, lengths = padded_tokens(B, T, V, seed=ci)
            lin = torch.linspace(0, 1, H, dtype=torch.float64)
            cases = [("bptt", "bptt", (), None), ("ft", "ft", (), None),
                     ("dsf linspace", "dsf", ("--feedback", "linspace"), lin),
                     ("dsf zero equals ft", "dsf", ("--feedback", "zero"), None)]
            for name, method, extra, a in cases:
                desc = f"residual padded {name} L={L} B={B} T={T} rows {lengths}"
                got, err = run_c(method, P, tokens, extra)
                if got is None:
                    report(False, desc, err)
                    continue
                ref_method = "ft" if name.endswith("equals ft") else method
                loss, ref = reference(ref_method, P, tokens, L, H, a)
                bad, worst = compare(got, ref, float(got["loss"].reshape(-1)[0]), loss)
                if a is not None:
                    for l in range(L):
                        fb = got.get(f"rnn.feedback_l{l}")
                        if fb is None or np.abs(fb - a.numpy()).max() > 1e-7:
                            bad.append(f"rnn.feedback_l{l} is not linspace(0, 1, {H})")
                report(not bad, f"{desc} (worst error/tolerance {worst:.1e})", "; ".join(bad))

        # The comparisons can tell the cases apart: the residual path and the
        # padding each change the gradient by far more than the tolerance.
        L, B, T, V, H = CONFIGS[1]
        P = make_model(L, V, H, seed=201)
        tokens, _ = padded_tokens(B, T, V, seed=1)
        _, g_res = reference("bptt", P, tokens, L, H)
        got, err = run_c("bptt", P, tokens, (), arch="stack")
        gap = float(np.abs(got["rnn.weight_hh_l0"] - g_res["rnn.weight_hh_l0"]).max()) if got else 0
        report(gap > 1e-2, "the stack's gradient differs from the residual one",
               err or f"max difference {gap:.1e}")
        full = tokens.copy()
        full[full == PAD] = 1
        _, g_full = reference("bptt", P, full, L, H)
        gap = float(np.abs(g_full["decoder.bias"] - g_res["decoder.bias"]).max())
        report(gap > 1e-2, "ignoring the padded targets changes the gradient",
               f"max difference {gap:.1e}")

        # The authors' WikiText model.
        for L in (1, 2):
            B, T, V, H, M = 3, 6, 13, 8, 12
            P = make_block(L, V, H, M, seed=300 + L)
            tokens = np.random.RandomState(10 + L).randint(1, V, size=(B, T + 1))  # no PAD
            lin = torch.linspace(0, 1, H, dtype=torch.float64)
            for method, extra, a in (("bptt", (), None), ("ft", (), None),
                                     ("dsf", ("--feedback", "linspace"), lin)):
                desc = f"block with proj, untied head, {method} L={L} B={B} T={T} H={H} mlp={M}"
                got, err = run_c(method, P, tokens, extra, arch="block")
                if got is None:
                    report(False, desc, err)
                    continue
                loss, ref = block_reference(method, P, tokens, L, H, a)
                bad, worst = compare(got, ref, float(got["loss"].reshape(-1)[0]), loss)
                report(not bad, f"{desc} (worst error/tolerance {worst:.1e})", "; ".join(bad))

    print(f"torch: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
