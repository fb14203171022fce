"""The C library under dsf_torch: finds libdsf.so and declares the calls it uses
(src/model/rnn_layer.h)."""
import ctypes
import ctypes.util
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO_BUILD = os.path.join(_HERE, "..", "..", "build", "libdsf.so")

_f = ctypes.POINTER(ctypes.c_float)


class Shape(ctypes.Structure):
    """dsf_rnn_shape: cell (0 GRU, 1 LSTM, 2 tanh RNN), T, B, I, H, and rows: NULL,
    or the int32 batch sizes of sequences of their own lengths (a PackedSequence's)."""
    _fields_ = [("cell", ctypes.c_int), ("T", ctypes.c_int), ("B", ctypes.c_int),
                ("I", ctypes.c_int), ("H", ctypes.c_int), ("rows", ctypes.POINTER(ctypes.c_int))]


def _find():
    """DSF_LIB, else the build folder of the checkout this package sits in, else the
    linker's search path (an installed `make install`)."""
    env = os.environ.get("DSF_LIB")
    if env:
        if not os.path.isfile(env):
            raise OSError(f"DSF_LIB={env}: no such file")
        return env
    if os.path.isfile(_REPO_BUILD):
        return os.path.normpath(_REPO_BUILD)
    found = ctypes.util.find_library("dsf")
    if found:
        return found
    raise OSError("dsf_torch cannot find libdsf.so: run `make` in the dsf checkout (it builds "
                  "build/libdsf.so), `make install`, or set DSF_LIB to the library's path")


path = _find()
lib = ctypes.CDLL(path)

lib.dsf_rnn_cache_floats.argtypes = [ctypes.POINTER(Shape)]
lib.dsf_rnn_cache_floats.restype = ctypes.c_size_t
lib.dsf_rnn_forward.argtypes = [ctypes.POINTER(Shape)] + [_f] * 11
lib.dsf_rnn_forward.restype = ctypes.c_int
lib.dsf_rnn_feedback.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_uint64, _f]
lib.dsf_rnn_feedback.restype = ctypes.c_int
lib.dsf_rnn_backward.argtypes = [ctypes.POINTER(Shape), ctypes.c_char_p, ctypes.c_char_p,
                                 ctypes.c_char_p] + [_f] * 15
lib.dsf_rnn_backward.restype = ctypes.c_int
lib.dsf_error.argtypes = []
lib.dsf_error.restype = ctypes.c_char_p
lib.dsf_set_threads.argtypes = [ctypes.c_int]
lib.dsf_set_threads.restype = None

# OpenBLAS, when the library uses it: dsf runs it single-threaded inside its own
# OpenMP threads, and PyTorch may share the same OpenBLAS, so each call sets one
# thread and gives the caller's count back afterwards.
try:
    _blas_get = lib.openblas_get_num_threads
    _blas_set = lib.openblas_set_num_threads
    _blas_get.restype = ctypes.c_int
    _blas_set.argtypes = [ctypes.c_int]
except AttributeError:
    _blas_get = _blas_set = None


def ptr(t):
    """A float* to tensor t's data (None for None)."""
    if t is None:
        return None
    return ctypes.cast(t.data_ptr(), _f)


def error():
    msg = lib.dsf_error()
    return msg.decode("utf-8", "replace") if msg else "unknown error"


def call(fn, *args, threads=None, exc=RuntimeError):
    """Runs a library call, on `threads` OpenMP threads when given (the library's
    setting is OpenMP's, which PyTorch shares: pass torch.get_num_threads(), never
    another count, or torch's own setting changes with it); raises exc with the
    library's message when it fails."""
    if threads is not None:
        lib.dsf_set_threads(threads)
    before = _blas_get() if _blas_get else None
    if before is not None and before != 1:
        _blas_set(1)
    try:
        rc = fn(*args)
    finally:
        if before is not None and before != 1:
            _blas_set(before)
    if rc != 0:
        raise exc(f"dsf: {error()}")
