"""The network ``f(x) = V relu(W x + b) + c``: float64 :class:`Weights` and :func:`load_network`.

Importing this package does not import torch; the torch twin is :mod:`certsdp.network.torch_model`
and the training checkpoints are :mod:`certsdp.network.checkpoint`.
"""

from certsdp.network.loading import load_network
from certsdp.network.weights import Weights

__all__ = ["Weights", "load_network"]
