"""The torch twin of :class:`~certsdp.network.weights.Weights`: ``scores = V relu(W x + b) + c``.

:class:`TwoLayerNet` is the module certsdp trains and attacks. This module also converts other torch
networks of the same shape (``nn.Sequential(Linear, ReLU, Linear)`` and its ``state_dict``) to
:class:`Weights`, and reads ``torch.save`` files safely (``weights_only=True``) with one clear line
for a file that is not a dictionary of tensors. Its checkpoints (network, training configuration and
resume state, hashed) are :mod:`certsdp.network.checkpoint`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from certsdp.errors import InputError
from certsdp.network.weights import Weights


class TwoLayerNet(nn.Module):
    """One-hidden-layer ReLU network ``f(x) = V relu(W x + b) + c`` (paper section 2)."""

    def __init__(self, d: int = 784, m: int = 500, k: int = 10) -> None:
        super().__init__()
        self.hidden = nn.Linear(d, m)
        self.out = nn.Linear(m, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(n, k)`` of the inputs ``x`` (flattened to ``(n, d)``)."""
        return self.out(torch.relu(self.hidden(x.flatten(1))))

    @property
    def dims(self) -> tuple[int, int, int]:
        """``(d, m, k)``."""
        return self.hidden.in_features, self.hidden.out_features, self.out.out_features

    def to_weights(self) -> Weights:
        """The network as validated float64 :class:`Weights` (a copy, which training leaves unchanged)."""
        params = (self.hidden.weight, self.hidden.bias, self.out.weight, self.out.bias)
        return Weights(*(t.detach().to("cpu", torch.float64, copy=True).numpy() for t in params))

    @classmethod
    def from_weights(cls, weights: Weights, dtype: torch.dtype = torch.float32) -> TwoLayerNet:
        """Build the module from :class:`Weights` (copied into ``dtype``)."""
        net = cls(weights.d, weights.m, weights.k).to(dtype)
        with torch.no_grad():
            net.hidden.weight.copy_(torch.as_tensor(np.array(weights.W)))
            net.hidden.bias.copy_(torch.as_tensor(np.array(weights.b)))
            net.out.weight.copy_(torch.as_tensor(np.array(weights.V)))
            net.out.bias.copy_(torch.as_tensor(np.array(weights.c)))
        return net


#: ``state_dict`` keys of ``(W, b, V, c)``: ``nn.Sequential(Linear, ReLU, Linear)`` and :class:`TwoLayerNet`
STATE_DICT_KEYS = (
    ("0.weight", "0.bias", "2.weight", "2.bias"),
    ("hidden.weight", "hidden.bias", "out.weight", "out.bias"),
)
_WHOLE_MODEL = ("is a whole pickled torch model; save model.state_dict() instead, or export it with "
                "certsdp.Weights.from_torch(model).save('net.npz')")


def weights_from_module(module: Any) -> Weights:
    """:class:`Weights` of a :class:`TwoLayerNet` or an ``nn.Sequential(Linear, ReLU, Linear)``.

    Any other module (another activation, more layers, a Linear without bias) is an :class:`InputError`.
    """
    if isinstance(module, TwoLayerNet):
        return module.to_weights()
    layers = list(module) if isinstance(module, nn.Sequential) else []
    kinds = [type(layer) for layer in layers]
    if kinds != [nn.Linear, nn.ReLU, nn.Linear] or layers[0].bias is None or layers[2].bias is None:
        raise InputError("certsdp converts nn.Sequential(Linear, ReLU, Linear) (with biases) or a "
                         f"TwoLayerNet, got {_describe(module)}")
    return weights_from_state_dict(module.state_dict(), "module")


def weights_from_state_dict(state: Mapping[str, Any], source: str) -> Weights:
    """:class:`Weights` from a ``state_dict`` of ``nn.Sequential(Linear, ReLU, Linear)`` or a TwoLayerNet.

    ``source`` names it in messages; shapes and values are checked by :class:`Weights`.
    """
    for keys in STATE_DICT_KEYS:
        if set(state) != set(keys):
            continue
        tensors = [state[key] for key in keys]
        if not all(isinstance(t, torch.Tensor) for t in tensors):
            raise InputError(f"{source}: the state_dict entries {', '.join(keys)} must be tensors")
        try:
            return Weights(*(t.detach().cpu().resolve_conj().numpy().copy() for t in tensors))
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None
    found = ", ".join(map(str, list(state)[:8])) + (", ..." if len(state) > 8 else "")
    raise InputError(f"{source} is not a state_dict of nn.Sequential(Linear, ReLU, Linear) (keys "
                     f"{', '.join(STATE_DICT_KEYS[0])}) or of a TwoLayerNet; it has keys {found}")


def read_torch_file(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a bad file is one line of :class:`InputError`.

    A whole pickled module (``torch.save(model)``) is named as such: torch's own message spans a page.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if _pickles_a_module(path, exc):
            raise InputError(f"{path} {_WHOLE_MODEL}") from None
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        lines = str(exc).strip().splitlines()
        reason = (f"it holds a pickled {found.group(1)}, which torch loads only with weights_only=False"
                  if found else lines[0] if lines else type(exc).__name__)
        raise InputError(f"torch file {path} could not be read: {reason}") from None


def _pickles_a_module(path: Path, exc: Exception) -> bool:
    """Whether the failed ``torch.load`` of ``path`` met a pickled ``nn.Module`` (read without unpickling)."""
    if "torch.nn.modules" in str(exc):
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
            return any(b"torch.nn.modules" in archive.read(name) for name in pickles)
    except (OSError, zipfile.BadZipFile):
        return False


def _describe(module: Any) -> str:
    """``nn.Sequential(Linear, Tanh, Linear)`` or the class name, for messages."""
    if isinstance(module, nn.Sequential):
        return f"nn.Sequential({', '.join(type(layer).__name__ for layer in module)})"
    return type(module).__name__
