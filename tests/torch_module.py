#!/usr/bin/env python3
"""Tests python/dsf_torch, the PyTorch modules that run in libdsf.

    /usr/bin/python3 tests/torch_module.py [build/dsf]

  bptt      outputs, final states and every gradient (parameters, input, h0, c0)
            of dsf_torch.GRU / LSTM / RNN equal torch.nn.GRU / LSTM / RNN run in
            float64 on the same weights: 1, 2 and 3 layers, batch_first both
            ways, with and without an initial state, with and without biases.
            Tolerance: max |dsf - ref| <= 1e-5 * max |ref| (+1e-7).
  ft, dsf   equal a float64 PyTorch reference of the definitions, built from
            nn.GRUCell / LSTMCell / RNNCell one step at a time: the recurrent input
            detached at every step after the first, plus for dsf the zero-valued
            surrogate  a*h' - (a*h').detach()  (and a_c on the LSTM's c), which
            sends exactly a * δ_{t+1} back: δ_t = e_t + a ⊙ δ_{t+1}.
  identities  dsf with feedback zero equals ft bit for bit; linspace+K with
            K >= T-1 correction sweeps equals bptt; the blelloch and fft scans
            equal seq.
  finite differences  in float32, the bptt gradient against central differences
            of the loss along random directions.
  state dicts  nn.GRU <-> dsf_torch.GRU both ways (strict), and the same
            initialisation under the same torch seed.
  checkpoints  a `dsf train` checkpoint loads into a PyTorch model, is written
            back as a model-only file, and `dsf grad --init` on it gives the loss
            and gradients that the PyTorch model with dsf_torch.GRU gives.
  packed    PackedSequence input (lengths unsorted): bptt equals nn.GRU / LSTM /
            RNN on it; ft and dsf equal the module run on each sequence alone.
  errors    a tensor off the CPU, float64, wrong shapes, unknown method, scan or
            feedback: each a Python exception with a clear message, never a crash.
  threads   2 threads give what 1 gives; torch.get_num_threads() is left alone.
  example   examples/ptb_dsf_torch.py (the README runs it) trains on a tiny corpus.

One line per check, then "torch: N passed, N failed[, N skipped]".
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

try:
    import torch
    from torch import nn
except ImportError:
    print("torch: 0 passed, 0 failed, 1 skipped (python3-torch not installed)")
    sys.exit(0)

passed = failed = 0


def report(ok, desc, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   torch module {desc}")
    else:
        failed += 1
        print(f"FAIL torch module {desc}: {detail}")


def finish():
    print(f"torch: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


try:
    import dsf_torch
except OSError as e:  # libdsf.so not built
    report(False, "import dsf_torch", str(e))
    finish()

CELLS = {"GRU": (nn.GRU, nn.GRUCell, 3), "LSTM": (nn.LSTM, nn.LSTMCell, 4),
         "RNN": (nn.RNN, nn.RNNCell, 1)}


def rel_err(got, ref):
    """max |got - ref| / (max |ref| + 1e-7), in float64."""
    got, ref = got.double(), ref.double()
    return float((got - ref).abs().max() / (ref.abs().max() + 1e-7))


def inputs(kind, L, T, B, I, H, batch_first, with_h0, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g)
    hx = None
    if with_h0:
        h0 = torch.randn(L, B, H, generator=g) * 0.5
        hx = (h0, torch.randn(L, B, H, generator=g) * 0.5) if kind == "LSTM" else h0
    # random weights on every output, so that each gradient path is exercised
    r_out = torch.randn((B, T, H) if batch_first else (T, B, H), generator=g, dtype=torch.float64)
    r_h = torch.randn(L, B, H, generator=g, dtype=torch.float64)
    r_c = torch.randn(L, B, H, generator=g, dtype=torch.float64)
    return x, hx, (r_out, r_h, r_c)


def loss_of(kind, out, hn, R):
    r_out, r_h, r_c = R
    if kind == "LSTM":
        h, c = hn
        return (out.double() * r_out).sum() + (h.double() * r_h).sum() + (c.double() * r_c).sum()
    return (out.double() * r_out).sum() + (hn.double() * r_h).sum()


def grads_of(module, x, hx, kind, R, double=False):
    """Outputs and gradients {name: tensor} of one forward and backward pass."""
    x = x.clone().double() if double else x.clone()
    x.requires_grad_(True)
    leaves = []
    if hx is not None:
        hs = list(hx) if kind == "LSTM" else [hx]
        hs = [h.clone().double() if double else h.clone() for h in hs]
        for h in hs:
            h.requires_grad_(True)
        leaves = hs
        hx = tuple(hs) if kind == "LSTM" else hs[0]
    module.zero_grad()
    out, hn = module(x, hx)
    loss_of(kind, out, hn, R).backward()
    res = {"out": out.detach()}
    if kind == "LSTM":
        res["h_n"], res["c_n"] = hn[0].detach(), hn[1].detach()
    else:
        res["h_n"] = hn.detach()
    res["dx"] = x.grad
    for i, h in enumerate(leaves):
        res[("dh0", "dc0")[i]] = h.grad
    for n, p in module.named_parameters():
        res[n] = p.grad
    return res


def compare(got, ref, tol):
    worst, bad = 0.0, []
    for k, r in ref.items():
        if k not in got or got[k] is None:
            bad.append(f"{k} missing")
            continue
        e = rel_err(got[k], r)
        worst = max(worst, e)
        if not e <= tol:
            bad.append(f"{k} error {e:.1e}")
    return bad, worst


# ---- the reference of the definitions: one cell step at a time, in float64 ----

def reference(kind, module, x, hx, R, method, feedbacks):
    """ft / dsf (feedbacks: one tensor per layer, the module's a) / bptt by PyTorch cells."""
    nnmod, cellmod, _ = CELLS[kind]
    L, H = module.num_layers, module.hidden_size
    bf = module.batch_first
    xx = x.clone().double().requires_grad_(True)
    seq = xx.transpose(0, 1) if bf else xx
    T, B = seq.shape[0], seq.shape[1]
    leaves = []
    if hx is not None:
        hs = [h.clone().double().requires_grad_(True) for h in (hx if kind == "LSTM" else [hx])]
        leaves = hs
    cells = []
    for k in range(L):
        I = module.input_size if k == 0 else H
        c = cellmod(I, H, bias=module.bias).double()
        with torch.no_grad():
            c.weight_ih.copy_(getattr(module, f"weight_ih_l{k}"))
            c.weight_hh.copy_(getattr(module, f"weight_hh_l{k}"))
            if module.bias:
                c.bias_ih.copy_(getattr(module, f"bias_ih_l{k}"))
                c.bias_hh.copy_(getattr(module, f"bias_hh_l{k}"))
        cells.append(c)
    hn, cn = [], []
    layer_in = [seq[t] for t in range(T)]
    for k in range(L):
        h = leaves[0][k] if leaves else torch.zeros(B, H, dtype=torch.float64)
        c = (leaves[1][k] if leaves else torch.zeros(B, H, dtype=torch.float64)) \
            if kind == "LSTM" else None
        a = feedbacks[k].double() if feedbacks is not None else None
        outs = []
        for t in range(T):
            first = t == 0
            hp = h if (first or method == "bptt") else h.detach()
            cp = None
            if kind == "LSTM":
                # nn.LSTMCell's step written out, so that the surrogate on c comes
                # before h = o tanh(c) reads it (the bptt check below holds it to
                # torch.nn.LSTM)
                cp = c if (first or method == "bptt") else c.detach()
                ce = cells[k]
                z = layer_in[t] @ ce.weight_ih.t() + hp @ ce.weight_hh.t()
                if module.bias:
                    z = z + ce.bias_ih + ce.bias_hh
                gi, gf, gg, go = z.chunk(4, dim=1)
                c_new = torch.sigmoid(gf) * cp + torch.sigmoid(gi) * torch.tanh(gg)
                if method == "dsf" and not first:
                    c_new = c_new + (a[H:] * c - (a[H:] * c).detach())
                h_new = torch.sigmoid(go) * torch.tanh(c_new)
            else:
                h_new = cells[k](layer_in[t], hp)
            if method == "dsf" and not first:
                h_new = h_new + (a[:H] * h - (a[:H] * h).detach())
            h = h_new
            if kind == "LSTM":
                c = c_new
            outs.append(h)
        hn.append(h)
        cn.append(c)
        layer_in = outs
    out = torch.stack(layer_in)
    if bf:
        out = out.transpose(0, 1)
    hN = torch.stack(hn)
    hnn = (hN, torch.stack(cn)) if kind == "LSTM" else hN
    loss_of(kind, out, hnn, R).backward()
    res = {"out": out.detach()}
    if kind == "LSTM":
        res["h_n"], res["c_n"] = hnn[0].detach(), hnn[1].detach()
    else:
        res["h_n"] = hN.detach()
    res["dx"] = xx.grad
    for i, hh in enumerate(leaves):
        res[("dh0", "dc0")[i]] = hh.grad
    for k in range(L):
        res[f"weight_ih_l{k}"] = cells[k].weight_ih.grad
        res[f"weight_hh_l{k}"] = cells[k].weight_hh.grad
        if module.bias:
            res[f"bias_ih_l{k}"] = cells[k].bias_ih.grad
            res[f"bias_hh_l{k}"] = cells[k].bias_hh.grad
    return res


def make(kind, I, H, L, torch_seed, **kw):
    torch.manual_seed(torch_seed)
    return getattr(dsf_torch, kind)(I, H, num_layers=L, **kw)


def test_bptt():
    T, B, I, H = 7, 3, 5, 6
    for kind, (nnmod, _, _) in CELLS.items():
        for L in (1, 2, 3):
            for bf in (False, True):
                for with_h0 in (False, True):
                    for bias in ((True, False) if L == 2 else (True,)):
                        m = make(kind, I, H, L, 10 * L, batch_first=bf, bias=bias)
                        ref = nnmod(I, H, num_layers=L, batch_first=bf, bias=bias).double()
                        ref.load_state_dict(m.state_dict())
                        x, hx, R = inputs(kind, L, T, B, I, H, bf, with_h0, seed=L)
                        got = grads_of(m, x, hx, kind, R)
                        want = grads_of(ref, x, hx, kind, R, double=True)
                        bad, worst = compare(got, want, 1e-5)
                        report(not bad, f"bptt {kind} L={L} batch_first={bf} h0={with_h0} "
                               f"bias={bias} equals torch.nn.{kind} (worst {worst:.1e})",
                               "; ".join(bad))


def test_definitions():
    T, B, I, H = 6, 3, 4, 5
    for kind in CELLS:
        for L in (1, 2):
            for method, fb in (("ft", "linspace"), ("dsf", "linspace"), ("dsf", "uniform"),
                               ("dsf", "const:0.9")):
                for with_h0 in (False, True):
                    m = make(kind, I, H, L, 3, method=method, feedback=fb, seed=5)
                    x, hx, R = inputs(kind, L, T, B, I, H, False, with_h0, seed=9)
                    got = grads_of(m, x, hx, kind, R)
                    fbs = [getattr(m, f"feedback_l{k}") for k in range(L)]
                    want = reference(kind, m, x, hx, R, method, fbs)
                    bad, worst = compare(got, want, 1e-5)
                    what = method if method == "ft" else f"dsf feedback={fb}"
                    report(not bad, f"{what} {kind} L={L} h0={with_h0} equals the PyTorch "
                           f"definition (worst {worst:.1e})", "; ".join(bad))
    # the reference loop under bptt is nn.GRU itself: the reference is built right
    m = make("LSTM", I, H, 2, 3)
    x, hx, R = inputs("LSTM", 2, T, B, I, H, False, True, seed=9)
    bad, worst = compare(reference("LSTM", m, x, hx, R, "bptt", None),
                         grads_of(_loaded(nn.LSTM(I, H, 2), m), x, hx, "LSTM", R, double=True),
                         1e-10)
    report(not bad, f"the step-by-step reference under bptt equals torch.nn.LSTM "
           f"(worst {worst:.1e})", "; ".join(bad))


def _loaded(ref, m):
    ref = ref.double()
    ref.load_state_dict(m.state_dict())
    return ref


def test_identities():
    T, B, I, H = 6, 3, 4, 5
    for kind in CELLS:
        x, hx, R = inputs(kind, 2, T, B, I, H, False, True, seed=4)
        ft = grads_of(make(kind, I, H, 2, 1, method="ft"), x, hx, kind, R)
        z = grads_of(make(kind, I, H, 2, 1, method="dsf", feedback="zero"), x, hx, kind, R)
        same = all(torch.equal(ft[k], z[k]) for k in ft)
        report(same, f"dsf feedback=zero equals ft bit for bit ({kind})",
               "some tensor differs")
        bp = grads_of(make(kind, I, H, 2, 1), x, hx, kind, R)
        sw = grads_of(make(kind, I, H, 2, 1, method="dsf", feedback=f"linspace+{T - 1}"),
                      x, hx, kind, R)
        bad, worst = compare(sw, bp, 1e-5)
        report(not bad, f"dsf linspace+{T - 1} sweeps equals bptt ({kind}, worst {worst:.1e})",
               "; ".join(bad))
        seq = grads_of(make(kind, I, H, 2, 1, method="dsf"), x, hx, kind, R)
        for scan in ("blelloch", "fft"):
            s = grads_of(make(kind, I, H, 2, 1, method="dsf", scan=scan), x, hx, kind, R)
            bad, worst = compare(s, seq, 1e-5)
            report(not bad, f"dsf scan={scan} equals seq ({kind}, worst {worst:.1e})",
                   "; ".join(bad))


def test_finite_differences():
    T, B, I, H = 5, 2, 3, 4
    for kind in CELLS:
        m = make(kind, I, H, 2, 8)
        x, hx, R = inputs(kind, 2, T, B, I, H, False, False, seed=8)
        got = grads_of(m, x, hx, kind, R)
        g = torch.Generator().manual_seed(1)
        worst = 0.0
        for _ in range(3):
            dirs = {n: torch.randn(p.shape, generator=g) for n, p in m.named_parameters()}
            slope = sum(float((got[n].double() * d.double()).sum()) for n, d in dirs.items())
            eps = 1e-2
            vals = []
            for sgn in (1, -1):
                with torch.no_grad():
                    for n, p in m.named_parameters():
                        p.add_(sgn * eps * dirs[n])
                    out, hn = m(x)
                    vals.append(float(loss_of(kind, out, hn, R)))
                    for n, p in m.named_parameters():
                        p.sub_(sgn * eps * dirs[n])
            fd = (vals[0] - vals[1]) / (2 * eps)
            worst = max(worst, abs(fd - slope) / max(1.0, abs(slope)))
        report(worst < 5e-3, f"bptt {kind} gradient equals central differences in float32 "
               f"(worst relative {worst:.1e})", f"relative error {worst:.1e}")


def test_state_dicts():
    for kind, (nnmod, _, _) in CELLS.items():
        torch.manual_seed(3)
        a = nnmod(4, 5, num_layers=2)
        torch.manual_seed(3)
        b = getattr(dsf_torch, kind)(4, 5, num_layers=2, method="dsf")
        same = all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                      b.state_dict().values()))
        keys = list(a.state_dict()) == list(b.state_dict())
        report(same and keys, f"{kind}: the same parameters, names and initialisation as "
               f"torch.nn.{kind} under one seed", "they differ")
        try:
            c = nnmod(4, 5, num_layers=2)
            c.load_state_dict(b.state_dict())  # strict both ways
            b.load_state_dict(a.state_dict())
            ok = all(torch.equal(p, q) for p, q in zip(c.state_dict().values(),
                                                        b.state_dict().values()))
            report(ok, f"{kind}: state dicts load both ways (strict)", "values differ")
        except Exception as e:
            report(False, f"{kind}: state dicts load both ways (strict)", str(e))


def test_errors():
    m = dsf_torch.GRU(4, 5)
    cases = [
        ("float64 input", TypeError, "float32", lambda: m(torch.zeros(3, 2, 4, dtype=torch.float64))),
        ("a tensor off the CPU", ValueError, "CPU", lambda: m(torch.zeros(3, 2, 4, device="meta"))),
        ("wrong input size", ValueError, "input.size(-1) must be 4", lambda: m(torch.zeros(3, 2, 7))),
        ("1-D input", ValueError, "2-D (unbatched) or 3-D", lambda: m(torch.zeros(4))),
        ("wrong h0 shape", ValueError, "h0 must have shape (1, 2, 5)",
         lambda: m(torch.zeros(3, 2, 4), torch.zeros(2, 2, 5))),
        ("LSTM hx not a pair", TypeError, "tuple (h0, c0)",
         lambda: dsf_torch.LSTM(4, 5)(torch.zeros(3, 2, 4), torch.zeros(1, 2, 5))),
        ("unknown method", ValueError, "method must be one of",
         lambda: dsf_torch.GRU(4, 5, method="bpt")),
        ("unknown scan", ValueError, "scan must be one of",
         lambda: dsf_torch.GRU(4, 5, method="dsf", scan="fast")),
        ("unknown feedback", ValueError, "feedback", lambda: dsf_torch.GRU(4, 5, feedback="lin")),
        ("fit feedback", ValueError, "fit and lowrank", lambda: dsf_torch.GRU(4, 5, feedback="fit")),
        ("bidirectional", ValueError, "bidirectional",
         lambda: dsf_torch.GRU(4, 5, bidirectional=True)),
        ("device cuda", ValueError, "CPU", lambda: dsf_torch.GRU(4, 5, device="cuda")),
        ("dtype float64", TypeError, "float32", lambda: dsf_torch.GRU(4, 5, dtype=torch.float64)),
        ("zero hidden size", ValueError, "hidden_size must be a positive integer",
         lambda: dsf_torch.GRU(4, 0)),
        ("empty sequence", ValueError, "no steps", lambda: m(torch.zeros(0, 2, 4))),
        ("diag with fft", RuntimeError, "cannot use scan fft",
         lambda: dsf_torch.GRU(4, 5, method="dsf", feedback="diag", scan="fft")(
             torch.zeros(3, 2, 4, requires_grad=True))[0].sum().backward()),
    ]
    for desc, exc, text, fn in cases:
        try:
            fn()
            report(False, f"error: {desc}", "no exception")
        except exc as e:
            report(text in str(e), f"error: {desc} -> {exc.__name__}: {e}",
                   f"message {str(e)!r} lacks {text!r}")
        except Exception as e:
            report(False, f"error: {desc}", f"{type(e).__name__}: {e}")


def test_threads():
    T, B, I, H = 20, 8, 16, 32
    x, hx, R = inputs("GRU", 2, T, B, I, H, False, True, seed=2)
    res = []
    for n in (1, 2):
        torch.set_num_threads(n)
        res.append(grads_of(make("GRU", I, H, 2, 1, method="dsf"), x, hx, "GRU", R))
    bad, worst = compare(res[1], res[0], 1e-5)
    report(not bad, f"2 threads equal 1 (worst {worst:.1e})", "; ".join(bad))
    # The library's thread count is OpenMP's, which torch shares: building and
    # running a module must leave torch's setting as it was.
    for n in (2, 1):
        torch.set_num_threads(n)
        m = dsf_torch.LSTM(I, H, method="dsf", feedback="uniform")
        m(x)[0].sum().backward()
        report(torch.get_num_threads() == n, f"torch.get_num_threads() stays {n} after a "
               "module is built and run", f"it is {torch.get_num_threads()}")


class LM(nn.Module):
    """The model `dsf train` trains (--arch stack), under its tensor names."""

    def __init__(self, V, E, H, L, rnn):
        super().__init__()
        self.encoder = nn.Embedding(V, E)
        self.rnn = rnn
        self.decoder = nn.Linear(H, V)

    def forward(self, tokens):  # tokens (B, T+1): mean cross-entropy of the next token
        x, y = tokens[:, :-1].t(), tokens[:, 1:].t()
        out, _ = self.rnn(self.encoder(x))
        logits = self.decoder(out)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def test_checkpoints(dsf):
    if not (os.path.isfile(dsf) and os.access(dsf, os.X_OK)):
        report(False, "checkpoints", f"{dsf} is missing (run make first)")
        return
    import random
    rnd = random.Random(1)
    words = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "far", "away"]
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "data"))
        for split, n in (("train", 300), ("valid", 30), ("test", 30)):
            with open(os.path.join(tmp, "data", f"{split}.txt"), "w") as f:
                for _ in range(n):
                    f.write(" ".join(rnd.choice(words) for _ in range(rnd.randint(3, 9))) + "\n")
        ck = os.path.join(tmp, "run.safetensors")
        r = subprocess.run([dsf, "train", "--data", os.path.join(tmp, "data"), "--layers", "2",
                            "--emb", "8", "--hidden", "8", "--batch", "4", "--seq", "6",
                            "--steps", "5", "--no-test", "--threads", "1", "--method", "dsf",
                            "--feedback", "uniform", "--save", ck],
                           capture_output=True, text=True)
        if r.returncode != 0:
            report(False, "dsf train for the checkpoint test", r.stderr.strip())
            return
        state, feedback, meta = dsf_torch.load_dsf_model(ck)
        V, E = state["encoder.weight"].shape
        H = state["rnn.weight_hh_l0"].shape[1]
        ok = meta.get("dsf.method") == "dsf" and len(feedback) == 2 and \
            not any(k.startswith(("optim.", "vocab.", "state.")) for k in state)
        report(ok, "load_dsf_model: the model tensors, the feedback and the run's metadata",
               f"keys {sorted(state)}; feedback {sorted(feedback)}; method {meta.get('dsf.method')}")
        model = LM(V, E, H, 2, dsf_torch.GRU(E, H, num_layers=2, method="dsf"))
        try:
            model.load_state_dict(state)  # strict
            ref = LM(V, E, H, 2, nn.GRU(E, H, num_layers=2))
            ref.load_state_dict(state)
            report(True, "a dsf checkpoint loads into PyTorch models (dsf_torch.GRU and nn.GRU)")
        except Exception as e:
            report(False, "a dsf checkpoint loads into PyTorch models", str(e))
            return
        for k in range(2):
            model.rnn.get_buffer(f"feedback_l{k}").copy_(feedback[k])
        tokens = torch.randint(0, V, (3, 7), generator=torch.Generator().manual_seed(5))
        back = os.path.join(tmp, "back.safetensors")
        dsf_torch.save_dsf_model(back, model.state_dict(), [feedback[0], feedback[1]])
        again, fb2, _ = dsf_torch.load_dsf_model(back)
        same = all(torch.equal(again[k], v) for k, v in state.items()) and \
            all(torch.equal(fb2[k], feedback[k]) for k in feedback)
        report(same and set(again) == set(state), "save_dsf_model then load_dsf_model gives "
               "the same tensors", "they differ")
        tok = os.path.join(tmp, "tokens.txt")
        with open(tok, "w") as f:
            for row in tokens.tolist():
                f.write(" ".join(map(str, row)) + "\n")
        for method in ("bptt", "dsf"):
            model.rnn.method = method
            model.zero_grad()
            loss = model(tokens)
            loss.backward()
            out = os.path.join(tmp, f"grad_{method}.safetensors")
            r = subprocess.run([dsf, "grad", "--init", back, "--tokens", tok, "--method", method,
                                "--out", out, "--threads", "1"], capture_output=True, text=True)
            if r.returncode != 0:
                report(False, f"dsf grad --init on the written file ({method})", r.stderr.strip())
                continue
            got, _ = dsf_torch.read_safetensors(out)
            worst = abs(float(got["loss"].reshape(-1)[0]) - float(loss)) / float(loss)
            for n, p in model.named_parameters():
                worst = max(worst, rel_err(got[n], p.grad))
            report(worst < 1e-4, f"dsf grad on the written file equals the PyTorch model with "
                   f"dsf_torch.GRU(method={method!r}) (worst {worst:.1e})",
                   f"worst relative error {worst:.1e}")


def test_example():
    """examples/ptb_dsf_torch.py, which the README runs, on a tiny corpus."""
    import random
    rnd = random.Random(2)
    words = ["a", "b", "c", "d", "e", "f"]
    with tempfile.TemporaryDirectory() as tmp:
        for split, n in (("train", 300), ("valid", 40)):
            with open(os.path.join(tmp, f"ptb.{split}.txt"), "w") as f:
                for _ in range(n):
                    f.write(" ".join(rnd.choice(words) for _ in range(rnd.randint(2, 8))) + "\n")
        env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "..", "python"))
        r = subprocess.run([sys.executable, os.path.join(HERE, "..", "examples", "ptb_dsf_torch.py"),
                            "--data", tmp, "--hidden", "16", "--layers", "2", "--epochs", "2"],
                           capture_output=True, text=True, env=env)
        ppl = [float(l.split()[-1]) for l in r.stdout.splitlines() if "valid ppl" in l]
        ok = r.returncode == 0 and len(ppl) == 2 and ppl[1] < ppl[0] < 12
        report(ok, f"examples/ptb_dsf_torch.py trains (valid ppl {ppl})",
               f"exit {r.returncode}: {r.stderr.strip()[-300:]} {r.stdout.strip()[-200:]}")


def _packed_run(m, kind, x, hx, lengths, W):
    """m on x (T,B,I) packed with lengths (not sorted); loss = Σ W ⊙ out (padded) +
    Σ h_n² (+ c_n²); returns out, h_n (and c_n) and the gradients of x, hx, params."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    m.zero_grad()
    x = x.clone().requires_grad_()
    hx = tuple(h.clone().requires_grad_() for h in hx) if kind == "LSTM" else \
        hx.clone().requires_grad_()
    out, hn = m(pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
    out = pad_packed_sequence(out, total_length=x.shape[0])[0]
    states = list(hn) if kind == "LSTM" else [hn]
    loss = (out * W).sum() + sum((s ** 2).sum() for s in states)
    loss.backward()
    hs = list(hx) if kind == "LSTM" else [hx]
    return ([out.detach()] + [s.detach() for s in states],
            [x.grad] + [h.grad for h in hs] + [p.grad.clone() for p in m.parameters()])


def test_packed():
    """PackedSequence input (lengths unsorted): bptt equals nn.GRU / LSTM / RNN on
    the same packed input; ft and dsf equal the module run on each sequence alone
    (batch 1, its own length), the definition of sequences of their own lengths."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    T, B, I, H, L = 7, 4, 3, 5, 2
    lengths = torch.tensor([3, 7, 1, 5])
    g = torch.Generator().manual_seed(11)
    x = torch.randn(T, B, I, generator=g)
    W = torch.randn(T, B, H, generator=g)
    for kind, (ref_cls, _, _) in CELLS.items():
        h0 = torch.randn(L, B, H, generator=g)
        hx = (h0, torch.randn(L, B, H, generator=g)) if kind == "LSTM" else h0
        mine = getattr(dsf_torch, kind)(I, H, num_layers=L)
        ref = ref_cls(I, H, num_layers=L)
        ref.load_state_dict(mine.state_dict())
        got = _packed_run(mine, kind, x, hx, lengths, W)
        want = _packed_run(ref, kind, x, hx, lengths, W)
        worst = max(rel_err(a, b) for a, b in zip(got[0] + got[1], want[0] + want[1]))
        report(worst < 1e-5, f"packed {kind} bptt equals nn.{kind} (outputs, final states, "
               f"every gradient; worst {worst:.1e})", f"worst {worst:.2e}")
        for method, fb in (("ft", "linspace"), ("dsf", "linspace"), ("dsf", "uniform+2")):
            m = getattr(dsf_torch, kind)(I, H, num_layers=L, method=method, feedback=fb, seed=3)
            m.load_state_dict(mine.state_dict())
            got = _packed_run(m, kind, x, hx, lengths, W)
            # each sequence alone: its outputs, final states and summed gradients
            outs = torch.zeros(T, B, H)
            finals = [torch.zeros(L, B, H) for _ in got[0][1:]]
            grads = [torch.zeros_like(t) for t in got[1]]
            for b in range(B):
                n = int(lengths[b])
                m.zero_grad()
                xb = x[:n, b:b + 1].clone().requires_grad_()
                hb = tuple(h[:, b:b + 1].clone().requires_grad_() for h in hx) \
                    if kind == "LSTM" else hx[:, b:b + 1].clone().requires_grad_()
                ob, sb = m(xb, hb)
                sb = list(sb) if kind == "LSTM" else [sb]
                ((ob * W[:n, b:b + 1]).sum() + sum((s ** 2).sum() for s in sb)).backward()
                outs[:n, b:b + 1] = ob.detach()
                for f, s in zip(finals, sb):
                    f[:, b:b + 1] = s.detach()
                grads[0][:n, b:b + 1] = xb.grad
                for k, h in enumerate(hb if kind == "LSTM" else [hb]):
                    grads[1 + k][:, b:b + 1] = h.grad
                for k, p in enumerate(m.parameters()):
                    grads[len(grads) - len(list(m.parameters())) + k] += p.grad
            worst = max(rel_err(a, b) for a, b in zip(got[0] + got[1], [outs] + finals + grads))
            report(worst < 1e-5, f"packed {kind} {method} {fb} equals each sequence run alone "
                   f"(worst {worst:.1e})", f"worst {worst:.2e}")


def main():
    dsf = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "dsf")
    torch.set_num_threads(1)
    test_bptt()
    test_definitions()
    test_identities()
    test_finite_differences()
    test_state_dicts()
    test_errors()
    test_threads()
    test_packed()
    test_checkpoints(dsf)
    test_example()
    finish()


if __name__ == "__main__":
    main()
