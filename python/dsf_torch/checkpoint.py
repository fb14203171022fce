"""dsf checkpoints (safetensors files, docs/DESIGN.md §7) to PyTorch state dicts and back.

A dsf language model's tensors carry PyTorch's word_language_model names:

    encoder.weight (V,E)                       nn.Embedding
    rnn.weight_ih_l{k}, rnn.weight_hh_l{k},    nn.GRU / LSTM / RNN or dsf_torch's
    rnn.bias_ih_l{k}, rnn.bias_hh_l{k}
    decoder.weight (V,H), decoder.bias (V)     nn.Linear

(and blocks.{k}.*, ln_f.* for --arch block), so a model with attributes encoder,
rnn and decoder loads them with load_state_dict. The feedback vectors
rnn.feedback_l{k} are not parameters: load_dsf_model returns them apart.
"""
import json
import os
import struct
import zlib

import numpy as np
import torch

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
           "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
           "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
_NAMES = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100_000_000

# Tensors of a checkpoint that are not the model: the run's state.
_RUN_PREFIXES = ("optim.", "state.", "rng.", "vocab.", "rnn.feedback")


def read_safetensors(path):
    """{name: tensor} and the metadata {str: str} of a safetensors file. Raises
    ValueError on a malformed file (and on a wrong dsf.checksum when there is one)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER or 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} is impossible for a {len(raw)}-byte file")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: the header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    want = meta.get("dsf.checksum")
    if want is not None and f"{zlib.crc32(data) & 0xFFFFFFFF:08x}" != want:
        raise ValueError(f"{path}: checksum mismatch (the file is damaged)")
    out = {}
    for name, d in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if d.get("dtype") not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has dtype {d.get('dtype')!r}")
        lo, hi = d["data_offsets"]
        dtype = _DTYPES[d["dtype"]]
        count = int(np.prod(d["shape"], dtype=np.int64))
        size = torch.tensor([], dtype=dtype).element_size()
        if not (0 <= lo <= hi <= len(data)) or hi - lo != count * size:
            raise ValueError(f"{path}: tensor {name!r} does not fit its data offsets")
        buf = bytearray(data[lo:hi])
        t = torch.frombuffer(buf, dtype=dtype) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(d["shape"]).clone()
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} in order, 8-byte aligned, with dsf's CRC-32 checksum, through
    a temporary file renamed into place (so that an interruption leaves no half file)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in _NAMES:
            raise TypeError(f"tensor {name!r}: dtype {t.dtype} has no safetensors name")
        blob = t.numpy().tobytes() if t.dtype != torch.bfloat16 else \
            t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    crc = 0
    for b in blobs:
        crc = zlib.crc32(b, crc)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta.update({"format": "pt", "dsf.checksum": f"{crc & 0xFFFFFFFF:08x}"})
    raw = json.dumps({"__metadata__": meta, **header}, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_dsf_model(path):
    """A dsf checkpoint (of `dsf train`, or a model-only file) as (state_dict, feedback,
    metadata): the model's tensors under their names, the feedback vectors
    {layer: tensor} (empty when the file has none), and the run's "dsf.*" strings."""
    tensors, meta = read_safetensors(path)
    state = {k: v for k, v in tensors.items() if not k.startswith(_RUN_PREFIXES)}
    if "encoder.weight" not in state and "decoder.weight" not in state and \
            not any(k.startswith("rnn.") for k in state):
        raise ValueError(f"{path}: no model tensors (encoder.*, rnn.*, decoder.*) in it")
    feedback = {}
    for k, v in tensors.items():
        if k.startswith("rnn.feedback_l"):
            feedback[int(k[len("rnn.feedback_l"):])] = v
    return state, feedback, meta


def save_dsf_model(path, state_dict, feedback=None):
    """Writes a model-only dsf file (what `dsf grad --init` reads) from a state dict
    under dsf's names (encoder.weight, rnn.*, decoder.*); feedback, {layer: tensor}
    or a list, adds rnn.feedback_l{k}. dsf_torch's own feedback buffers are not in a
    state dict: pass [m.rnn.feedback_l0, ...] to keep them."""
    tensors = {}
    for k, v in state_dict.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{k!r} is not a tensor")
        if k.endswith("num_batches_tracked"):
            continue
        tensors[k] = v.detach().to(torch.float32) if v.is_floating_point() else v
    if feedback is not None:
        items = feedback.items() if isinstance(feedback, dict) else enumerate(feedback)
        for k, v in items:
            tensors[f"rnn.feedback_l{k}"] = v.detach().to(torch.float32)
    write_safetensors(path, tensors)
