#!/usr/bin/env python3
"""Compares `dsf grad` for LSTM and Elman (tanh RNN) language models with PyTorch
autograd in float64, tensor by tensor (the GRU's comparison is tests/torch_grad.py,
whose tolerances and safetensors helper this script shares).

    /usr/bin/python3 tests/torch_cells.py [build/dsf]

For each cell and configuration the reference is:
  bptt  autograd through torch.nn.LSTM / torch.nn.RNN itself (the layout users
        load weights from);
  ft    a per-step loop whose recurrent inputs (h, and the LSTM's c) are detached;
  dsf   the ft loop plus zero-valued surrogates  a_h*h' - (a_h*h').detach()  on h
        and, for the LSTM,  a_c*c' - (a_c*c').detach()  on c: exactly
        δh_t = e_t + a_h ⊙ δh_{t+1},  δc_t = ĉ_t + a_c ⊙ δc_{t+1}  (docs/DESIGN.md §2).
The per-step loop without detaching is first checked against the torch module.

The block architecture (--arch block) is checked under bptt against a torch
model built here from nn.LayerNorm, nn.GRU / nn.LSTM / nn.RNN, nn.Linear, the
exact GELU and the tied decoder, for every cell.
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

import torch_grad as tg  # noqa: E402  (compare, tolerances)

CONFIGS = [(1, 3, 6, 13, 8, 8), (2, 3, 7, 13, 6, 10)]  # (layers, batch, seq, vocab, emb, hidden)
GATES = {"lstm": 4, "rnn": 1}


def make_model(kind, L, V, E, H, seed):
    g = torch.Generator().manual_seed(seed)

    def u(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) - 0.5).float()

    G = GATES[kind]
    P = {"encoder.weight": u(V, E)}
    for l in range(L):
        I = E if l == 0 else H
        P[f"rnn.weight_ih_l{l}"] = u(G * H, I)
        P[f"rnn.weight_hh_l{l}"] = u(G * H, H)
        P[f"rnn.bias_ih_l{l}"] = u(G * H)
        P[f"rnn.bias_hh_l{l}"] = u(G * H)
    P["decoder.weight"] = u(V, H)
    P["decoder.bias"] = u(V)
    S = 2 if kind == "lstm" else 1
    feedback = {f"rnn.feedback_l{l}": (u(S * H).double() + 0.5).float() for l in range(L)}
    return P, feedback


def step(kind, P, l, x, h, c, H):
    """One step in torch's conventions: (h, c) (c None for the Elman cell)."""
    a = x @ P[f"rnn.weight_ih_l{l}"].T + P[f"rnn.bias_ih_l{l}"] + \
        h @ P[f"rnn.weight_hh_l{l}"].T + P[f"rnn.bias_hh_l{l}"]
    if kind == "rnn":
        return torch.tanh(a), None
    i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H])
    gg, o = torch.tanh(a[:, 2 * H:3 * H]), torch.sigmoid(a[:, 3 * H:])
    c = f * c + i * gg
    return o * torch.tanh(c), c


def reference(kind, method, P32, feedback, tokens, L, H):
    P, emb, y = tg.leaf_inputs(P32, tokens)
    T, B = y.shape
    mod = None
    if method == "bptt":
        E = emb.shape[2]
        mod = (torch.nn.LSTM(E, H, L) if kind == "lstm" else torch.nn.RNN(E, H, L)).double()
        with torch.no_grad():
            for name, prm in mod.named_parameters():
                prm.copy_(P["rnn." + name])
        z = torch.zeros(L, B, H, dtype=torch.float64)
        out, _ = mod(emb, (z, z.clone()) if kind == "lstm" else z)
    else:
        seq = [emb[t] for t in range(T)]
        for l in range(L):
            a = feedback[f"rnn.feedback_l{l}"].double() if method == "dsf" else None
            h = torch.zeros(B, H, dtype=torch.float64)
            c = torch.zeros(B, H, dtype=torch.float64) if kind == "lstm" else None
            outs = []
            for t in range(T):
                if method == "loop":
                    h, c = step(kind, P, l, seq[t], h, c, H)
                else:
                    hn, cn = step(kind, P, l, seq[t], h.detach(),
                                  c.detach() if c is not None else None, H)
                    if method == "dsf":
                        ah = a[:H]
                        if kind == "lstm":  # the surrogate on c enters h through o ⊙ tanh(c)
                            ac = a[H:]
                            i_o = step_o(P, l, seq[t], h.detach(), H)
                            cn = cn + (ac * c - (ac * c).detach())
                            hn = i_o * torch.tanh(cn)
                        hn = hn + (ah * h - (ah * h).detach())
                    h, c = hn, cn
                outs.append(h)
            seq = outs
        out = torch.stack(seq)
    logits = out @ P["decoder.weight"].T + P["decoder.bias"]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in P.items() if v.grad is not None}
    if mod is not None:
        for name, prm in mod.named_parameters():
            grads["rnn." + name] = prm.grad.numpy()
    return float(loss), grads


def step_o(P, l, x, h, H):
    """The LSTM's output gate o at one step."""
    a = x @ P[f"rnn.weight_ih_l{l}"].T + P[f"rnn.bias_ih_l{l}"] + \
        h @ P[f"rnn.weight_hh_l{l}"].T + P[f"rnn.bias_hh_l{l}"]
    return torch.sigmoid(a[:, 3 * H:])


def block_reference(kind, P32, tokens, L, H, M):
    """Loss and float64 gradients of the block architecture, autograd through torch modules."""
    P, s, y = tg.leaf_inputs(P32, tokens)  # s (T, B, H)
    F = torch.nn.functional
    mods = []
    for k in range(L):
        q = f"blocks.{k}."
        mod = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[kind](H, H).double()
        with torch.no_grad():
            for name, prm in mod.named_parameters():
                prm.copy_(P[q + "rnn." + name.replace("_l0", "")])
        mods.append(mod)
        a = F.layer_norm(s, (H,), P[q + "ln1.weight"], P[q + "ln1.bias"], 1e-5)
        r, _ = mod(a)
        s = s + r
        b = F.layer_norm(s, (H,), P[q + "ln2.weight"], P[q + "ln2.bias"], 1e-5)
        u = F.gelu(b @ P[q + "mlp.fc1.weight"].T + P[q + "mlp.fc1.bias"])
        s = s + u @ P[q + "mlp.fc2.weight"].T + P[q + "mlp.fc2.bias"]
    yf = F.layer_norm(s, (H,), P["ln_f.weight"], P["ln_f.bias"], 1e-5)
    logits = yf @ P["encoder.weight"].T + P["decoder.bias"]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in P.items() if v.grad is not None}
    for k, mod in enumerate(mods):
        for name, prm in mod.named_parameters():
            grads[f"blocks.{k}.rnn." + name.replace("_l0", "")] = prm.grad.numpy()
    return float(loss), grads


def make_block(kind, L, V, H, M, seed):
    g = torch.Generator().manual_seed(seed)

    def u(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) - 0.5).float()

    G = {"gru": 3, "lstm": 4, "rnn": 1}[kind]
    P = {"encoder.weight": u(V, H)}
    for k in range(L):
        q = f"blocks.{k}."
        P.update({q + "ln1.weight": 1 + u(H), q + "ln1.bias": u(H),
                  q + "rnn.weight_ih": u(G * H, H), q + "rnn.weight_hh": u(G * H, H),
                  q + "rnn.bias_ih": u(G * H), q + "rnn.bias_hh": u(G * H),
                  q + "ln2.weight": 1 + u(H), q + "ln2.bias": u(H),
                  q + "mlp.fc1.weight": u(M, H), q + "mlp.fc1.bias": u(M),
                  q + "mlp.fc2.weight": u(H, M), q + "mlp.fc2.bias": u(H)})
    P.update({"ln_f.weight": 1 + u(H), "ln_f.bias": u(H), "decoder.bias": u(V)})
    return P


def main():
    dsf = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "dsf")
    import st_py_check as st
    passed = failed = 0

    def report(ok, desc, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   torch {desc}")
        else:
            failed += 1
            print(f"FAIL torch {desc}: {detail}")

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        init, tok, out = (os.path.join(tmp, n) for n in ("i.safetensors", "t.txt", "g.safetensors"))
        for kind in ("lstm", "rnn"):
            # The manual loop equals the torch module (so ft and dsf stand on the same cell).
            L, B, T, V, E, H = CONFIGS[1]
            P, fb = make_model(kind, L, V, E, H, 3)
            tokens = np.random.RandomState(3).randint(0, V, size=(B, T + 1))
            _, g1 = reference(kind, "bptt", P, fb, tokens, L, H)
            _, g2 = reference(kind, "loop", P, fb, tokens, L, H)
            worst = max(float(np.abs(g1[k] - g2[k]).max()) for k in g1)
            report(worst < 1e-10, f"{kind}: the reference loop equals torch.nn.{kind.upper()}",
                   f"max difference {worst:.1e}")
            for ci, (L, B, T, V, E, H) in enumerate(CONFIGS):
                P, fb = make_model(kind, L, V, E, H, 40 + ci)
                tokens = np.random.RandomState(ci).randint(0, V, size=(B, T + 1))
                for method in tg.METHODS:
                    tensors = {k: v.numpy() for k, v in P.items()}
                    if method == "dsf":
                        tensors.update({k: v.numpy() for k, v in fb.items()})
                    st.save(init, tensors)
                    np.savetxt(tok, tokens, fmt="%d")
                    if os.path.exists(out):
                        os.remove(out)
                    r = subprocess.run([dsf, "grad", "--init", init, "--tokens", tok, "--method",
                                        method, "--out", out, "--threads", "1", "--cell", kind],
                                       capture_output=True, text=True)
                    desc = f"{kind} {method} L={L} B={B} T={T} H={H}"
                    if r.returncode != 0:
                        report(False, desc, (r.stderr or r.stdout).strip())
                        continue
                    got = st.load(out)[0]
                    loss, ref = reference(kind, method, P, fb, tokens, L, H)
                    bad, worst = tg.compare(got, ref, float(got["loss"].reshape(-1)[0]), loss)
                    report(not bad, f"{desc} (worst error/tolerance {worst:.1e})", "; ".join(bad))
        for kind in ("gru", "lstm", "rnn"):
            L, B, T, V, H, M = 2, 3, 6, 13, 8, 12
            P = make_block(kind, L, V, H, M, 60)
            tokens = np.random.RandomState(7).randint(0, V, size=(B, T + 1))
            st.save(init, {k: v.numpy() for k, v in P.items()})
            np.savetxt(tok, tokens, fmt="%d")
            if os.path.exists(out):
                os.remove(out)
            r = subprocess.run([dsf, "grad", "--init", init, "--tokens", tok, "--method", "bptt",
                                "--out", out, "--threads", "1"], capture_output=True, text=True)
            desc = f"block {kind} bptt L={L} B={B} T={T} H={H} mlp={M}"
            if r.returncode != 0:
                report(False, desc, (r.stderr or r.stdout).strip())
                continue
            got = st.load(out)[0]
            loss, ref = block_reference(kind, P, tokens, L, H, M)
            bad, worst = tg.compare(got, ref, float(got["loss"].reshape(-1)[0]), loss)
            report(not bad, f"{desc} (worst error/tolerance {worst:.1e})", "; ".join(bad))
    print(f"torch: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
