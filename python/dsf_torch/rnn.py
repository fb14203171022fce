"""GRU, LSTM and RNN modules whose forward and backward passes run in libdsf.

They take torch.nn.GRU's / LSTM's / RNN's arguments, register the same parameters
under the same names, shapes and initialisation, and have the same forward
signature, so that one line swaps them and a state dict loads both ways. Three more
arguments choose how the state gradient is carried back through time
(docs/DESIGN.md §1-§3):

    method="bptt"   exact back-propagation through time (the gradients nn.GRU gives)
    method="ft"     fully truncated: δ_t = e_t
    method="dsf"    diagonal state feedback: δ_t = e_t + a ⊙ δ_{t+1}
    feedback        dsf's a, any --feedback spelling of `dsf train` but fit and
                    lowrank: "linspace" (the paper's A = diag(linspace(0, 1, H)),
                    the default), "uniform", "zero", "const:0.9", "ssm", "diag",
                    and a "+K" suffix for K correction sweeps
    scan            how dsf's linear recurrence runs: "seq", "blelloch" or "fft"

The feedback vectors are buffers feedback_l{k} (S·H values: the LSTM's a_h then
a_c), not parameters, and not in the state dict (so that it stays nn.GRU's); a
random kind is drawn from `seed`.

A PackedSequence input runs each sequence over its own steps only (the layer
API's shape.rows), with nn.GRU's packed output and final states.

Each layer is one autograd node: its input, weights and initial state get
gradients. The gradient of an initial state h0 is the first step's exact Jacobian
applied to the method's δ_1 (for bptt, the exact gradient). Float32 on the CPU,
on torch.get_num_threads() threads.
"""
import ctypes
import math

import torch
from torch import nn

from . import _lib

_CELLS = {"GRU": (0, 3), "LSTM": (1, 4), "RNN": (2, 1)}
_METHODS = ("bptt", "ft", "dsf")
_SCANS = ("seq", "blelloch", "fft")


class _Layer(torch.autograd.Function):
    """One layer over a whole sequence: (x, h0, c0, w_ih, w_hh, b_ih, b_hh) ->
    (out, h_n, c_n), time-major, float32, contiguous."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, spec, rows):
        cell, method, feedback, scan, a = spec
        T, B, I = x.shape
        H = w_hh.shape[1]
        shape = _lib.Shape(cell, T, B, I, H)
        if rows is not None:  # int32 batch sizes, kept alive with ctx for backward
            shape.rows = ctypes.cast(rows.data_ptr(), ctypes.POINTER(ctypes.c_int))
            ctx.rows = rows
        n = _lib.lib.dsf_rnn_cache_floats(shape)
        if n == 0:
            raise RuntimeError(f"dsf: {_lib.error()}")
        cache = torch.empty(n, dtype=torch.float32)
        out = torch.empty(T, B, H, dtype=torch.float32)
        h_n = torch.empty(B, H, dtype=torch.float32)
        c_n = torch.empty(B, H, dtype=torch.float32) if cell == 1 else None
        P = _lib.ptr
        _lib.call(_lib.lib.dsf_rnn_forward, shape, P(w_ih), P(w_hh), P(b_ih), P(b_hh), P(x),
                  P(h0), P(c0), P(cache), P(out), P(h_n), P(c_n),
                  threads=torch.get_num_threads())
        ctx.save_for_backward(x, w_ih, w_hh, a)
        ctx.cache, ctx.shape, ctx.spec = cache, shape, spec
        ctx.has = (h0 is not None, c0 is not None, b_ih is not None)
        if c_n is None:  # no cell state: an empty output that carries no gradient
            c_n = torch.zeros(0)
            ctx.mark_non_differentiable(c_n)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, dout, dh_n, dc_n):
        x, w_ih, w_hh, a = ctx.saved_tensors
        cell, method, feedback, scan, _ = ctx.spec
        shape = ctx.shape
        T, B, I, H = shape.T, shape.B, shape.I, shape.H
        has_h0, has_c0, has_bias = ctx.has
        need = ctx.needs_input_grad
        G = w_hh.shape[0]
        dx = torch.empty(T, B, I, dtype=torch.float32) if need[0] else None
        dh0 = torch.empty(B, H, dtype=torch.float32) if has_h0 and need[1] else None
        dc0 = torch.empty(B, H, dtype=torch.float32) if has_c0 and need[2] else None
        gw_ih = torch.empty(G, I, dtype=torch.float32)
        gw_hh = torch.empty(G, H, dtype=torch.float32)
        gb_ih = torch.empty(G, dtype=torch.float32) if has_bias else None
        gb_hh = torch.empty(G, dtype=torch.float32) if has_bias else None
        dout = dout.contiguous() if dout is not None else torch.zeros(T, B, H)
        dh_n = dh_n.contiguous() if dh_n is not None else None
        dc_n = dc_n.contiguous() if (cell == 1 and dc_n is not None) else None
        P = _lib.ptr
        _lib.call(_lib.lib.dsf_rnn_backward, shape, method.encode(), feedback.encode(),
                  scan.encode(), P(a), P(w_ih), P(w_hh), P(x), P(ctx.cache), P(dout), P(dh_n),
                  P(dc_n), P(dx), P(dh0), P(dc0), P(gw_ih), P(gw_hh), P(gb_ih), P(gb_hh),
                  threads=torch.get_num_threads())
        ctx.cache = ctx.rows = None
        return dx, dh0, dc0, gw_ih, gw_hh, gb_ih, gb_hh, None, None


class _RNNBase(nn.Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 nonlinearity="tanh", method="bptt", feedback="linspace", scan="seq",
                 seed=0, feedback_steps=64, device=None, dtype=None):
        super().__init__()
        if bidirectional:
            raise ValueError(f"dsf_torch.{mode}: bidirectional layers are not supported")
        if proj_size:
            raise ValueError("dsf_torch.LSTM: proj_size is not supported")
        if nonlinearity != "tanh":
            raise ValueError(f"dsf_torch.RNN: nonlinearity must be 'tanh' (got {nonlinearity!r})")
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"dsf_torch.{mode} runs on the CPU (got device {device})")
        if dtype is not None and dtype != torch.float32:
            raise TypeError(f"dsf_torch.{mode} is float32 only (got dtype {dtype})")
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"dsf_torch.{mode}: {name} must be a positive integer "
                                 f"(got {v!r})")
        if not (isinstance(dropout, (int, float)) and 0 <= dropout <= 1):
            raise ValueError(f"dsf_torch.{mode}: dropout must be in [0, 1] (got {dropout!r})")
        if method not in _METHODS:
            raise ValueError(f"dsf_torch.{mode}: method must be one of {', '.join(_METHODS)} "
                             f"(got {method!r})")
        if scan not in _SCANS:
            raise ValueError(f"dsf_torch.{mode}: scan must be one of {', '.join(_SCANS)} "
                             f"(got {scan!r})")
        self.mode = mode
        self.cell, gates = _CELLS[mode]
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size, self.nonlinearity = False, 0, nonlinearity
        self.method, self.feedback, self.scan = method, feedback, scan
        G = gates * hidden_size
        self._flat_weights_names = []
        for k in range(num_layers):
            I = input_size if k == 0 else hidden_size
            names = [f"weight_ih_l{k}", f"weight_hh_l{k}"]
            shapes = [(G, I), (G, hidden_size)]
            if bias:
                names += [f"bias_ih_l{k}", f"bias_hh_l{k}"]
                shapes += [(G,), (G,)]
            for n, s in zip(names, shapes):
                setattr(self, n, nn.Parameter(torch.empty(*s, dtype=torch.float32)))
            self._flat_weights_names += names
        # The feedback, validated here (a bad spelling fails now, not at backward).
        S = 2 if self.cell == 1 else 1
        gen_seed = int(seed) & (2**64 - 1)
        for k in range(num_layers):
            a = torch.zeros(S * hidden_size, dtype=torch.float32)
            _lib.call(_lib.lib.dsf_rnn_feedback, str(feedback).encode(), self.cell, hidden_size,
                      int(feedback_steps), gen_seed + k, _lib.ptr(a), exc=ValueError)
            self.register_buffer(f"feedback_l{k}", a, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        """torch.nn.RNNBase's: every weight and bias U(±1/√hidden_size), in order."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            nn.init.uniform_(w, -stdv, stdv)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        s += f", method={self.method!r}"
        if self.method == "dsf":
            s += f", feedback={self.feedback!r}, scan={self.scan!r}"
        return s

    def _check_tensor(self, t, what):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"dsf_torch.{self.mode}: {what} must be a tensor "
                            f"(got {type(t).__name__})")
        if t.device.type != "cpu":
            raise ValueError(f"dsf_torch.{self.mode} runs on the CPU; {what} is on {t.device}")
        if t.dtype != torch.float32:
            raise TypeError(f"dsf_torch.{self.mode} is float32 only; {what} is {t.dtype}")

    def forward(self, input, hx=None):
        mode = self.mode
        if isinstance(input, nn.utils.rnn.PackedSequence):
            return self._forward_packed(input, hx)
        self._check_tensor(input, "input")
        if input.dim() not in (2, 3):
            raise ValueError(f"dsf_torch.{mode}: expected a 2-D (unbatched) or 3-D input, got "
                             f"{input.dim()}-D")
        if input.shape[0] == 0 or (input.dim() == 3 and input.shape[1] == 0):
            raise ValueError(f"dsf_torch.{mode}: the input has no steps or no rows "
                             f"(shape {tuple(input.shape)})")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        out, h_n, c_n = self._run(x, hx, batched, None)
        if batched and self.batch_first:
            out = out.transpose(0, 1)
        if not batched:
            out, h_n = out.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        return (out, (h_n, c_n)) if mode == "LSTM" else (out, h_n)

    def _forward_packed(self, input, hx):
        """A PackedSequence: its rows sorted longest first, padded time-major, the
        layers run on each row's own steps (shape.rows = batch_sizes, rnn_layer.h);
        the output packed again, h_n (c_n) each sequence's state after its own last
        step, in the input's order, as nn.GRU gives them."""
        data, batch_sizes, sorted_idx, unsorted_idx = input
        self._check_tensor(data, "input")
        if data.dim() != 2:
            raise ValueError(f"dsf_torch.{self.mode}: a PackedSequence of 2-D data is "
                             f"expected, got {data.dim()}-D")
        x, lengths = nn.utils.rnn.pad_packed_sequence(
            nn.utils.rnn.PackedSequence(data, batch_sizes))  # (T,B,I), longest first
        if hx is not None and sorted_idx is not None:  # the input's order -> sorted
            if self.mode == "LSTM":
                if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                    raise TypeError("dsf_torch.LSTM: hx must be a tuple (h0, c0)")
                hx = tuple(h.index_select(1, sorted_idx) if isinstance(h, torch.Tensor) else h
                           for h in hx)
            elif isinstance(hx, torch.Tensor):
                hx = hx.index_select(1, sorted_idx)
        rows = batch_sizes.to(torch.int32).contiguous()
        out, h_n, c_n = self._run(x, hx, True, rows)
        out = nn.utils.rnn.pack_padded_sequence(out, lengths).data
        out = nn.utils.rnn.PackedSequence(out, batch_sizes, sorted_idx, unsorted_idx)
        if unsorted_idx is not None:  # sorted -> the input's order
            h_n = h_n.index_select(1, unsorted_idx)
            c_n = c_n.index_select(1, unsorted_idx) if c_n is not None else None
        return (out, (h_n, c_n)) if self.mode == "LSTM" else (out, h_n)

    def _run(self, x, hx, batched, rows):
        """The layers over x (T,B,I) from hx; returns out (T,B,H), h_n and c_n
        (L,B,H; c_n None but for the LSTM)."""
        mode, H, L = self.mode, self.hidden_size, self.num_layers
        for p in self.parameters():
            self._check_tensor(p, "a parameter")
        T, B, I = x.shape
        if I != self.input_size:
            raise ValueError(f"dsf_torch.{mode}: input.size(-1) must be {self.input_size}, got {I}")
        h0 = c0 = None
        if hx is not None:
            if mode == "LSTM":
                if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                    raise TypeError("dsf_torch.LSTM: hx must be a tuple (h0, c0)")
                h0, c0 = hx
            else:
                h0 = hx
            want = (L, B, H) if batched else (L, H)
            for t, what in ((h0, "h0"), (c0, "c0")):
                if t is None:
                    continue
                self._check_tensor(t, what)
                if tuple(t.shape) != want:
                    raise ValueError(f"dsf_torch.{mode}: {what} must have shape {want}, "
                                     f"got {tuple(t.shape)}")
            if not batched:
                h0 = h0.unsqueeze(1) if h0 is not None else None
                c0 = c0.unsqueeze(1) if c0 is not None else None
        x = x.contiguous()
        hs, cs = [], []
        for k in range(L):
            w = [getattr(self, n) for n in (f"weight_ih_l{k}", f"weight_hh_l{k}")]
            b = ([getattr(self, f"bias_ih_l{k}"), getattr(self, f"bias_hh_l{k}")]
                 if self.bias else [None, None])
            hk = h0[k].contiguous() if h0 is not None else None
            ck = c0[k].contiguous() if c0 is not None else None
            spec = (self.cell, self.method, self.feedback, self.scan,
                    getattr(self, f"feedback_l{k}"))
            x, h_n, c_n = _Layer.apply(x, hk, ck, w[0].contiguous(), w[1].contiguous(),
                                       b[0].contiguous() if b[0] is not None else None,
                                       b[1].contiguous() if b[1] is not None else None, spec,
                                       rows)
            hs.append(h_n)
            cs.append(c_n)
            if self.dropout and self.training and k < L - 1:
                x = nn.functional.dropout(x, self.dropout, training=True)
        return x, torch.stack(hs), torch.stack(cs) if mode == "LSTM" else None


class GRU(_RNNBase):
    """torch.nn.GRU's interface (gates r, z, n; "linear before reset"), run by libdsf."""

    def __init__(self, *args, **kwargs):
        super().__init__("GRU", *args, **kwargs)


class LSTM(_RNNBase):
    """torch.nn.LSTM's interface (gates i, f, g, o; no proj_size), run by libdsf."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class RNN(_RNNBase):
    """torch.nn.RNN's interface with the tanh nonlinearity, run by libdsf."""

    def __init__(self, *args, **kwargs):
        if len(args) > 3:  # nn.RNN(input_size, hidden_size, num_layers, nonlinearity, bias, ...)
            kwargs["nonlinearity"] = args[3]
            args = args[:3] + args[4:]
        super().__init__("RNN", *args, **kwargs)
