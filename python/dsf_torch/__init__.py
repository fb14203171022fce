"""dsf_torch: torch.nn.GRU, LSTM and RNN (tanh) as drop-in modules whose forward and
backward passes run in libdsf, with the gradient method as an argument:

    import dsf_torch
    rnn = dsf_torch.GRU(256, 256, num_layers=2, method="dsf")   # feedback="linspace"
    out, h_n = rnn(x, h0)                                        # as torch.nn.GRU

dsf checkpoints convert to PyTorch state dicts and back (load_dsf_model,
save_dsf_model). See python/README.md.
"""
from .checkpoint import load_dsf_model, read_safetensors, save_dsf_model, write_safetensors
from .rnn import GRU, LSTM, RNN
from ._lib import path as library_path

__all__ = ["GRU", "LSTM", "RNN", "load_dsf_model", "save_dsf_model", "read_safetensors",
           "write_safetensors", "library_path"]
