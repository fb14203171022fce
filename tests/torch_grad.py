#!/usr/bin/env python3
"""Compares `dsf grad` with PyTorch autograd in float64, tensor by tensor.

    /usr/bin/python3 tests/torch_grad.py [build/dsf]

For random models (weights uniform +-0.5, rounded to float32 and written as F32) and
random tokens, the gradient of the mean cross-entropy that the C command writes must
equal an independent float64 reference:
  bptt  autograd through torch.nn.GRU itself (the layout users load weights from);
  ft    a per-step loop whose recurrent input is detached,
        h_t = cell(x_t, h_{t-1}.detach())  (the input from the layer below is not);
  dsf   the ft loop plus a zero-valued surrogate  a*h_{t-1} - (a*h_{t-1}).detach(),
        which leaves the forward value alone and sends a * dL/dh_t back to h_{t-1}:
        exactly the recurrence delta_t = e_t + a * delta_{t+1};
        with low-rank factors the surrogate is  h_{t-1} @ A - (...).detach(),
        A = diag(a) + U V^T;
  diag  the same surrogate with d_t, the diagonal of the cell's Jacobian at each
        step and row by torch.autograd.functional.jacobian (independent of the
        C code's closed form), for --scan seq and blelloch on 2 threads;
  zero+K  (dsf with K correction sweeps from a = 0) BPTT truncated to K steps back
        for every local error: autograd on windows, the output of step s
        recomputed by the cells s-K .. s from the true state before them, detached
        (one layer; K = 1, 3 and T-1, where the windows must give BPTT itself).
The per-step cell is first checked against torch.nn.GRU, so ft and dsf are built on
the same gate order (r, z, n) and "linear before reset" as bptt.

Tolerance per tensor: max |C - ref| <= 2e-4 * max(1, max |ref|) (float32 against
float64), and, since these gradients are small (~1e-2), also <= 1e-3 * max |ref| + 1e-7
so that an error of a few percent cannot hide under the absolute floor. Each line
reports the worst ratio of error to the first tolerance.

One line per comparison, "ok   torch ..." or "FAIL torch ...: details", then
"torch: N passed, N failed". Exit status 1 if any failed.
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
except ImportError:  # the comparison needs Debian's python3-torch
    print("torch: 0 passed, 0 failed, 1 skipped (python3-torch not installed)")
    sys.exit(0)

TOL = 2e-4       # error / max(1, max|ref|)
TOL_SCALE = 1e-3  # error / max|ref|, with an absolute floor of 1e-7
CONFIGS = [  # (layers, batch, seq, vocab, emb, hidden)
    (1, 3, 1, 13, 8, 8),
    (1, 4, 9, 13, 8, 12),
    (2, 3, 7, 13, 6, 10),
    (3, 4, 5, 11, 9, 8),
]
METHODS = ("bptt", "ft", "dsf")


def make_model(L, V, E, H, seed):
    """Parameters and dsf feedback, drawn in float64 and rounded to float32."""
    g = torch.Generator().manual_seed(seed)

    def u(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) - 0.5).float()

    P = {"encoder.weight": u(V, E)}
    for l in range(L):
        I = E if l == 0 else H
        P[f"rnn.weight_ih_l{l}"] = u(3 * H, I)
        P[f"rnn.weight_hh_l{l}"] = u(3 * H, H)
        P[f"rnn.bias_ih_l{l}"] = u(3 * H)
        P[f"rnn.bias_hh_l{l}"] = u(3 * H)
    P["decoder.weight"] = u(V, H)
    P["decoder.bias"] = u(V)
    feedback = {f"rnn.feedback_l{l}": (u(H).double() + 0.5).float() for l in range(L)}
    return P, feedback


def cell(P, l, x, h, H):
    """One GRU step, torch.nn.GRU conventions: gates r, z, n; r multiplies W_hn h + b_hn."""
    gi = x @ P[f"rnn.weight_ih_l{l}"].T + P[f"rnn.bias_ih_l{l}"]
    gh = h @ P[f"rnn.weight_hh_l{l}"].T + P[f"rnn.bias_hh_l{l}"]
    r = torch.sigmoid(gi[:, :H] + gh[:, :H])
    z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


def leaf_inputs(P32, tokens):
    """The parameters as float64 leaves, the embedded inputs (T, B, E) and the
    targets (T, B) of tokens (B, T+1)."""
    P = {k: v.double().requires_grad_(True) for k, v in P32.items()}
    T = tokens.shape[1] - 1
    x = torch.as_tensor(tokens[:, :T].T.copy())
    y = torch.as_tensor(tokens[:, 1:].T.copy())
    return P, P["encoder.weight"][x], y


def reference(method, P32, feedback, tokens, L, H):
    """Loss and float64 gradients for tokens (B, T+1). method: bptt (nn.GRU), ft, dsf
    (feedback a, or A = diag(a) + U Vᵀ when the feedback has rnn.feedback_u_l{k}),
    diag (the exact Jacobian diagonal of every step, by autograd), or loop (the
    per-step cell without any detaching: must equal bptt)."""
    P, emb, y = leaf_inputs(P32, tokens)
    T, B = y.shape
    grads = {}
    if method == "bptt":
        gru = torch.nn.GRU(emb.shape[2], H, L).double()
        with torch.no_grad():
            for name, prm in gru.named_parameters():
                prm.copy_(P["rnn." + name])
        out, _ = gru(emb, torch.zeros(L, B, H, dtype=torch.float64))
    else:
        seq = [emb[t] for t in range(T)]
        for l in range(L):
            a = feedback[f"rnn.feedback_l{l}"].double() if method == "dsf" else None
            A = None
            if method == "dsf" and f"rnn.feedback_u_l{l}" in feedback:
                U = feedback[f"rnn.feedback_u_l{l}"].double()
                A = torch.diag(a) + U @ feedback[f"rnn.feedback_v_l{l}"].double().T
            h = torch.zeros(B, H, dtype=torch.float64)
            outs = []
            for t in range(T):
                if method == "loop":
                    new = cell(P, l, seq[t], h, H)
                else:
                    new = cell(P, l, seq[t], h.detach(), H)
                    if method == "dsf" and A is not None:  # δ_{t-1} += A δ_t
                        new = new + (h @ A - (h @ A).detach())
                    elif method == "dsf":
                        new = new + (a * h - (a * h).detach())
                    elif method == "diag":
                        xt, hd = seq[t].detach(), h.detach()
                        J = torch.autograd.functional.jacobian(
                            lambda hh: cell({k: v.detach() for k, v in P.items()}, l, xt, hh, H), hd)
                        d = torch.stack([J[b, :, b, :].diagonal() for b in range(B)])
                        new = new + (d * h - (d * h).detach())
                h = new
                outs.append(h)
            seq = outs
        out = torch.stack(seq)
    logits = out @ P["decoder.weight"].T + P["decoder.bias"]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    for k, v in P.items():
        if v.grad is not None:  # with nn.GRU the rnn.* gradients are the module's
            grads[k] = v.grad.numpy()
    if method == "bptt":
        for name, prm in gru.named_parameters():
            grads["rnn." + name] = prm.grad.numpy()
    return float(loss), grads


def reference_truncated(P32, tokens, H, K):
    """One layer: loss and float64 gradients of BPTT truncated to K steps back for
    every local error, which is dsf's --feedback zero+K (K correction sweeps from
    a = 0). Autograd on windows: the output of step s is recomputed by the cells
    s-K .. s from the true state before them, detached."""
    P, emb, y = leaf_inputs(P32, tokens)
    T, B = y.shape
    with torch.no_grad():  # states[t]: the state before step t
        states = [torch.zeros(B, H, dtype=torch.float64)]
        for t in range(T):
            states.append(cell(P, 0, emb[t], states[-1], H))
    outs = []
    for s in range(T):
        t0 = max(0, s - K)
        h = states[t0]
        for t in range(t0, s + 1):
            h = cell(P, 0, emb[t], h, H)
        outs.append(h)
    out = torch.stack(outs)
    logits = out @ P["decoder.weight"].T + P["decoder.bias"]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    return float(loss), {k: v.grad.numpy() for k, v in P.items() if v.grad is not None}


def compare(got, ref, loss_got, loss_ref):
    """(problems, worst error / TOL-tolerance) for one output file against the reference."""
    bad, worst = [], 0.0
    for name, g in ref.items():
        c = got.get(name)
        if c is None:
            bad.append(f"{name} missing")
            continue
        if c.shape != g.shape or c.dtype != np.float32:
            bad.append(f"{name} is {c.dtype} {list(c.shape)}, expected float32 {list(g.shape)}")
            continue
        err = float(np.abs(c.astype(np.float64) - g).max())
        scale = float(np.abs(g).max())
        tol = TOL * max(1.0, scale)
        worst = max(worst, err / tol)
        if not np.isfinite(err) or err > tol or err > TOL_SCALE * scale + 1e-7:
            at = np.unravel_index(np.argmax(np.abs(c - g)), g.shape) if np.isfinite(err) else ()
            bad.append(f"{name} max error {err:.2e} at {tuple(int(i) for i in at)} "
                       f"(max |ref| {scale:.2e}, relative {err / max(scale, 1e-30):.1e})")
    if loss_got is None:
        bad.append("loss missing")
    elif not abs(loss_got - loss_ref) <= TOL * max(1.0, abs(loss_ref)):
        bad.append(f"loss {loss_got:.7g}, reference {loss_ref:.7g}")
    return bad, worst


def main():
    dsf = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "dsf")
    passed = failed = 0

    def report(ok, desc, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   torch {desc}")
        else:
            failed += 1
            print(f"FAIL torch {desc}: {detail}")

    def finish():
        print(f"torch: {passed} passed, {failed} failed")
        return 1 if failed else 0

    try:
        import st_py_check as st
    except ImportError as e:
        report(False, "safetensors helper", f"tests/st_py_check.py cannot be imported: {e}")
        return finish()
    if not (os.path.isfile(dsf) and os.access(dsf, os.X_OK)):
        report(False, "binary", f"{dsf} is missing (run make first)")
        return finish()
    torch.set_num_threads(1)

    # The reference cell is torch.nn.GRU's: the manual loop without detaching equals it.
    L, B, T, V, E, H = CONFIGS[2]
    P, feedback = make_model(L, V, E, H, seed=7)
    tokens = np.random.RandomState(7).randint(0, V, size=(B, T + 1))
    l1, g1 = reference("bptt", P, feedback, tokens, L, H)
    l2, g2 = reference("loop", P, feedback, tokens, L, H)
    d = max(float(np.abs(g1[k] - g2[k]).max()) for k in g1)
    report(d < 1e-12 and abs(l1 - l2) < 1e-12, "reference cell equals torch.nn.GRU",
           f"max gradient difference {d:.1e}")

    with tempfile.TemporaryDirectory() as tmp:
        init = os.path.join(tmp, "init.safetensors")
        tok = os.path.join(tmp, "tokens.txt")
        out = os.path.join(tmp, "grad.safetensors")

        def run_c(method, P, feedback, tokens, extra=()):
            """Writes the model and tokens, runs dsf grad: (tensors, error message)."""
            tensors = {k: v.numpy() for k, v in P.items()}
            tensors.update({k: v.numpy() for k, v in (feedback or {}).items()})
            st.save(init, tensors)
            np.savetxt(tok, tokens, fmt="%d")
            if os.path.exists(out):
                os.remove(out)
            cmd = [dsf, "grad", "--init", init, "--tokens", tok, "--method", method,
                   "--out", out, *(extra if "--threads" in extra else (*extra, "--threads", "1"))]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                return None, f"dsf grad --method {method} exit {r.returncode}: " \
                             f"{(r.stderr or r.stdout).strip()}"
            try:
                return st.load(out)[0], ""
            except Exception as e:  # a malformed file is a failure, not a crash
                return None, f"cannot read {method} output: {e}"

        def check(desc, method, P, feedback, tokens, L, H, ref_method=None, ref_feedback=None,
                  extra=()):
            got, err = run_c(method, P, feedback, tokens, extra)
            if got is None:
                report(False, desc, err)
                return None
            fb = ref_feedback if ref_feedback is not None else feedback
            loss, ref = reference(ref_method or method, P, fb, tokens, L, H)
            loss_got = float(got["loss"].reshape(-1)[0]) if "loss" in got else None
            bad, worst = compare(got, ref, loss_got, loss)
            if method == "dsf" and feedback:
                for name, a in feedback.items():
                    if name not in got or not np.array_equal(got[name], a.numpy()):
                        bad.append(f"{name} not written back as given")
            report(not bad, f"{desc} (worst error/tolerance {worst:.1e})", "; ".join(bad))
            return got

        for ci, (L, B, T, V, E, H) in enumerate(CONFIGS):
            P, feedback = make_model(L, V, E, H, seed=100 + ci)
            tokens = np.random.RandomState(ci).randint(0, V, size=(B, T + 1))
            for method in METHODS:
                check(f"{method} L={L} B={B} T={T} V={V} E={E} H={H}", method, P,
                      feedback if method == "dsf" else None, tokens, L, H)

        # dsf edge cases on the two-layer model: A = 0 is ft; A = 1 keeps the whole sum;
        # a model without feedback gets one drawn, which the output must report.
        L, B, T, V, E, H = CONFIGS[2]
        P, _ = make_model(L, V, E, H, seed=102)
        tokens = np.random.RandomState(2).randint(0, V, size=(B, T + 1))
        zero = {f"rnn.feedback_l{l}": torch.zeros(H) for l in range(L)}
        one = {f"rnn.feedback_l{l}": torch.ones(H) for l in range(L)}
        check(f"dsf a=0 equals ft L={L} T={T}", "dsf", P, zero, tokens, L, H, ref_method="ft")
        check(f"dsf a=1 L={L} T={T}", "dsf", P, one, tokens, L, H)
        # lowrank: A = diag(a) + U Vᵀ from the file; diag: the Jacobian's own diagonal.
        g = torch.Generator().manual_seed(5)
        lowrank = dict(one)
        for l in range(L):
            lowrank[f"rnn.feedback_l{l}"] = torch.rand(H, generator=g) * 0.8
            for k in "uv":
                lowrank[f"rnn.feedback_{k}_l{l}"] = (torch.rand(H, 3, generator=g) - 0.5) * 0.4
        check(f"dsf lowrank:3 L={L} T={T}", "dsf", P, lowrank, tokens, L, H)
        for scan in ("seq", "blelloch"):
            check(f"dsf diag, scan {scan} L={L} T={T}", "dsf", P, None, tokens, L, H,
                  ref_method="diag", extra=("--feedback", "diag", "--scan", scan, "--threads", "2"))
        # correction sweeps from a = 0: BPTT truncated to K steps, against autograd
        # on recomputed windows (one layer); K = T-1 must be BPTT itself.
        L1, B1, T1, V1, E1, H1 = CONFIGS[1]
        P1, _ = make_model(L1, V1, E1, H1, seed=103)
        tok1 = np.random.RandomState(3).randint(0, V1, size=(B1, T1 + 1))
        for K in (1, 3, T1 - 1):
            desc = f"dsf zero+{K} is BPTT truncated to {K} steps L={L1} T={T1}"
            got, err = run_c("dsf", P1, None, tok1, ("--feedback", f"zero+{K}"))
            if got is None:
                report(False, desc, err)
                continue
            loss, ref = reference_truncated(P1, tok1, H1, K)
            if K == T1 - 1:
                lb, gb = reference("bptt", P1, None, tok1, L1, H1)
                d = max(float(np.abs(ref[k] - gb[k]).max()) for k in gb)
                if d > 1e-12:
                    report(False, desc, f"the window reference is not BPTT at K = T-1 ({d:.1e})")
                    continue
            bad, worst = compare(got, ref, float(got["loss"].reshape(-1)[0]) if "loss" in got
                                 else None, loss)
            report(not bad, f"{desc} (worst error/tolerance {worst:.1e})", "; ".join(bad))
        got, err = run_c("dsf", P, None, tokens)
        names = [f"rnn.feedback_l{l}" for l in range(L)]
        if got is None or any(n not in got or got[n].shape != (H,) for n in names):
            report(False, f"dsf drawn feedback L={L} T={T}",
                   err or "the output lacks the feedback vectors used")
        else:
            drawn = {n: torch.from_numpy(got[n].copy()) for n in names}
            loss, ref = reference("dsf", P, drawn, tokens, L, H)
            bad, worst = compare(got, ref, float(got["loss"].reshape(-1)[0]) if "loss" in got
                                 else None, loss)
            report(not bad, f"dsf drawn feedback L={L} T={T} (worst error/tolerance "
                            f"{worst:.1e})", "; ".join(bad))

    # The methods must differ by far more than the tolerance for T > 1, or the
    # comparisons above could not tell them apart.
    L, B, T, V, E, H = CONFIGS[1]
    P, feedback = make_model(L, V, E, H, seed=101)
    tokens = np.random.RandomState(1).randint(0, V, size=(B, T + 1))
    g = {m: reference(m, P, feedback, tokens, L, H)[1]["rnn.weight_hh_l0"] for m in METHODS}
    gaps = {f"{a}-{b}": float(np.abs(g[a] - g[b]).max())
            for a, b in (("bptt", "ft"), ("dsf", "ft"), ("bptt", "dsf"))}
    need = max(10 * TOL, 20 * TOL_SCALE * float(np.abs(g["bptt"]).max()))
    report(min(gaps.values()) > need,
           "methods differ for T > 1 by far more than the tolerance",
           ", ".join(f"|{k}| {v:.1e}" for k, v in gaps.items()) + f", need > {need:.1e}")
    return finish()


if __name__ == "__main__":
    sys.exit(main())
