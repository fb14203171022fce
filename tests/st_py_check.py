#!/usr/bin/env python3
"""st_py_check.py: an independent reader and writer of safetensors files.

It follows the format as the reference (Rust) reader does: an 8-byte little-endian
header length N (at most 100 MB), N bytes of UTF-8 JSON holding one object, then the
data section, which the tensors must tile exactly when sorted by offset. It also
verifies the metadata "dsf.checksum" (CRC-32 of the data section) when present.

    python3 tests/st_py_check.py [--dsf] FILE

prints one line per tensor, "name dtype [d0,d1,...]", in file order, and exits 1 with a
one-line message on any violation. --dsf also requires what the dsf writer always does:
the data section 8-aligned, "format" = "pt" and a checksum.

Other test scripts import it:

    sys.path.insert(0, "tests"); import st_py_check
    tensors, metadata = st_py_check.load(path)  # {name: numpy array}, {str: str}
    st_py_check.save(path, tensors, metadata)   # the dsf layout: in order, padded, checksummed
"""

import json
import os
import re
import struct
import sys
import zlib

MAX_HEADER = 100_000_000

# Every dtype of the format, with its element size and numpy type (None: numpy has none).
# numpy is imported only by load and save, so that the checker runs on any python3.
DTYPES = {
    "BOOL": (1, "bool"),
    "U8": (1, "uint8"),
    "I8": (1, "int8"),
    "F8_E5M2": (1, None),
    "F8_E4M3": (1, None),
    "I16": (2, "int16"),
    "U16": (2, "uint16"),
    "F16": (2, "float16"),
    "BF16": (2, None),
    "I32": (4, "int32"),
    "U32": (4, "uint32"),
    "F32": (4, "float32"),
    "I64": (8, "int64"),
    "U64": (8, "uint64"),
    "F64": (8, "float64"),
}


class SpecError(Exception):
    """The file breaks the safetensors format (or, with dsf=True, the dsf conventions)."""


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise SpecError(f"key {dup!r} appears twice in a header object")
    return dict(pairs)


def _reject_constant(name):
    raise SpecError(f"header holds {name}, which is not JSON")


def _check_text(s, what):
    try:
        s.encode("utf-8")  # fails on the lone surrogates that \\ud800 escapes make
    except UnicodeEncodeError:
        raise SpecError(f"{what} {s!r} is not valid Unicode") from None
    if "\0" in s:
        raise SpecError(f"{what} {s!r} contains a NUL character")


def _uint_list(v, name, field):
    if not isinstance(v, list) or not all(type(x) is int and 0 <= x < 2**64 for x in v):
        raise SpecError(f"tensor {name!r}: {field} must be a list of non-negative integers")
    return v


def parse(buf, dsf=False):
    """Checks a whole file held in bytes.

    Returns (entries, metadata, data): entries are (name, dtype, shape, begin, end) in file
    order, metadata a dict (empty when absent) and data a memoryview of the data section.
    """
    if len(buf) < 8:
        raise SpecError(f"file has {len(buf)} bytes, fewer than the 8 of the header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > MAX_HEADER:
        raise SpecError(f"header length {n} is over the 100 MB limit")
    if 8 + n > len(buf):
        raise SpecError(f"header length {n} exceeds the {len(buf) - 8} bytes that follow")
    try:
        text = bytes(buf[8 : 8 + n]).decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"header is not valid UTF-8: {e}") from None
    if not text.startswith("{"):
        raise SpecError("header does not start with '{'")
    try:
        header = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_int=lambda s: float(s) if s.startswith("-") else int(s),  # "-0" is no size
        )
    except json.JSONDecodeError as e:
        raise SpecError(f"header is not valid JSON: {e}") from None
    except RecursionError:
        raise SpecError("header JSON is nested too deeply") from None
    if not isinstance(header, dict):
        raise SpecError("header is not a JSON object")

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise SpecError("__metadata__ is not an object")
    for k, v in metadata.items():
        _check_text(k, "metadata key")
        if not isinstance(v, str):
            raise SpecError(f"__metadata__ value of {k!r} is not a string")
        _check_text(v, f"metadata value of {k!r}:")

    entries = []
    for name, info in header.items():
        _check_text(name, "tensor name")
        if not isinstance(info, dict):
            raise SpecError(f"tensor {name!r} is not described by an object")
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise SpecError(
                f"tensor {name!r} has fields {sorted(info)}, not dtype, shape and data_offsets"
            )
        dtype = info["dtype"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise SpecError(f"tensor {name!r} has unknown dtype {dtype!r}")
        shape = _uint_list(info["shape"], name, "shape")
        offsets = _uint_list(info["data_offsets"], name, "data_offsets")
        if len(offsets) != 2:
            raise SpecError(f"tensor {name!r}: data_offsets must be [begin, end]")
        entries.append((name, dtype, shape, offsets[0], offsets[1]))

    data = memoryview(buf)[8 + n :]
    entries.sort(key=lambda e: (e[3], e[4]))
    pos = 0
    for name, dtype, shape, begin, end in entries:
        nbytes = DTYPES[dtype][0]
        for d in shape:
            nbytes *= d
        if nbytes >= 2**64:
            raise SpecError(f"tensor {name!r}: shape overflows")
        if begin != pos or end < begin:
            raise SpecError(
                f"tensor {name!r}: data_offsets [{begin}, {end}] do not start where the "
                f"previous tensor ends ({pos})"
            )
        if end - begin != nbytes:
            raise SpecError(
                f"tensor {name!r}: {dtype} {shape} takes {nbytes} bytes but data_offsets "
                f"[{begin}, {end}] hold {end - begin}"
            )
        pos = end
    if pos != len(data):
        raise SpecError(f"tensors cover {pos} bytes of a {len(data)}-byte data section")

    stored = metadata.get("dsf.checksum")
    if stored is not None:
        if not re.fullmatch(r"[0-9a-f]{8}", stored):
            raise SpecError(f"checksum {stored!r} is not 8 hex digits")
        computed = f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"
        if computed != stored:
            raise SpecError(f"checksum mismatch (stored {stored}, computed {computed})")
    if dsf:
        trailing = len(text) - len(text.rstrip(" "))
        if (8 + n) % 8 or trailing >= 8 or not text.rstrip(" ").endswith("}"):
            raise SpecError(f"header of {n} bytes is not padded with spaces to a multiple of 8")
        if metadata.get("format") != "pt":
            raise SpecError("metadata 'format' is not 'pt'")
        if stored is None:
            raise SpecError("metadata has no 'dsf.checksum'")
    return entries, metadata, data


def _read(path):
    with open(path, "rb") as fp:
        return fp.read()


def check(path, dsf=False):
    """The entries (name, dtype, shape, begin, end) of a file, in file order; SpecError if bad."""
    entries, _, _ = parse(_read(path), dsf)
    return entries


def load(path):
    """({name: numpy array} in file order, {key: value}); SpecError if the file is bad."""
    import numpy as np

    entries, metadata, data = parse(_read(path))
    tensors = {}
    for name, dtype, shape, begin, end in entries:
        np_type = DTYPES[dtype][1]
        if np_type is None:
            raise SpecError(f"tensor {name!r}: numpy has no type for {dtype}")
        dt = np.dtype(np_type).newbyteorder("<")
        if end == begin:
            tensors[name] = np.zeros(shape, dtype=np_type)
        else:
            flat = np.frombuffer(data, dtype=dt, count=(end - begin) // dt.itemsize, offset=begin)
            tensors[name] = flat.astype(np_type).reshape(shape)  # an aligned, native copy
    return tensors, dict(metadata)


def save(path, tensors, metadata=None):
    """Writes {name: array} in the given order, back to back, as the dsf writer does."""
    import numpy as np

    meta = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"metadata {k!r}: keys and values must be str")
        if k not in ("format", "dsf.checksum"):
            meta[k] = v
    by_type = {np.dtype(t): name for name, (_, t) in DTYPES.items() if t is not None}
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        if name == "__metadata__":
            raise ValueError("a tensor cannot be called __metadata__")
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        a = np.asarray(value)
        if a.dtype.newbyteorder("=") not in by_type:
            raise TypeError(f"tensor {name!r}: dtype {a.dtype} has no safetensors name")
        dtype = by_type[a.dtype.newbyteorder("=")]
        blob = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": dtype,
            "shape": [int(d) for d in a.shape],
            "data_offsets": [offset, offset + len(blob)],
        }
        offset += len(blob)
        blobs.append(blob)
    crc = 0
    for blob in blobs:
        crc = zlib.crc32(blob, crc)
    meta["format"] = "pt"
    meta["dsf.checksum"] = f"{crc & 0xFFFFFFFF:08x}"
    text = json.dumps({"__metadata__": meta, **header}, separators=(",", ":"), ensure_ascii=True)
    raw = text.encode("utf-8")
    raw += b" " * ((8 - (8 + len(raw)) % 8) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as fp:
            fp.write(struct.pack("<Q", len(raw)))
            fp.write(raw)
            for blob in blobs:
                fp.write(blob)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def main(argv):
    args = argv[1:]
    dsf = "--dsf" in args
    args = [a for a in args if a != "--dsf"]
    if len(args) != 1:
        print("usage: st_py_check.py [--dsf] FILE", file=sys.stderr)
        return 2
    try:
        entries = check(args[0], dsf)
    except (SpecError, OSError) as e:
        print(f"st_py_check: {args[0]}: {e}", file=sys.stderr)
        return 1
    for name, dtype, shape, _, _ in entries:
        print(f"{name} {dtype} [{','.join(str(d) for d in shape)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
