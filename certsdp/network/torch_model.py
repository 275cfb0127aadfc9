"""The torch module ``scores = V relu(W x + b) + c`` and its checkpoints.

A checkpoint is a ``torch.save`` dictionary holding the state dict, the training configuration
(a plain dict, e.g. ``dataclasses.asdict`` of a training config), any extra state needed to resume,
and the SHA-256 content hash of the weights (:meth:`certsdp.network.weights.Weights.content_hash`), which
:func:`load_checkpoint` re-checks so that a corrupted or hand-edited file is caught.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from certsdp.errors import InputError
from certsdp.network.weights import Weights

CHECKPOINT_FORMAT = 1


class TwoLayerNet(nn.Module):
    """One-hidden-layer ReLU network ``f(x) = V relu(W x + b) + c`` (paper section 2)."""

    def __init__(self, d: int = 784, m: int = 500, k: int = 10) -> None:
        super().__init__()
        self.hidden = nn.Linear(d, m)
        self.out = nn.Linear(m, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x.flatten(1))))

    @property
    def dims(self) -> tuple[int, int, int]:
        """``(d, m, k)``."""
        return self.hidden.in_features, self.hidden.out_features, self.out.out_features

    def to_weights(self) -> Weights:
        """The network as validated float64 :class:`Weights`."""
        return Weights(
            W=self.hidden.weight.detach().cpu().double().numpy(),
            b=self.hidden.bias.detach().cpu().double().numpy(),
            V=self.out.weight.detach().cpu().double().numpy(),
            c=self.out.bias.detach().cpu().double().numpy(),
        )

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


def save_checkpoint(
    path: str | Path, net: TwoLayerNet, config: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    """Write ``net`` with its training ``config`` and ``extra`` resume state; atomic replace."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "dims": net.dims,
        "state_dict": {key: val.detach().cpu() for key, val in net.state_dict().items()},
        "config": dict(config),
        "extra": dict(extra or {}),
        "weights_sha256": net.to_weights().content_hash(),
    }
    tmp = p.with_name(p.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(p)


def load_checkpoint(path: str | Path) -> tuple[TwoLayerNet, dict[str, Any], dict[str, Any]]:
    """Read a checkpoint; returns ``(net, config, extra)``. Raises :class:`InputError` if bad."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"checkpoint not found: {p}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"checkpoint {p} could not be read: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"checkpoint {p} is not a certsdp checkpoint (format {CHECKPOINT_FORMAT})")
    try:
        net = TwoLayerNet(*payload["dims"])
        net.load_state_dict(payload["state_dict"])
        recorded = payload["weights_sha256"]
        config, extra = payload["config"], payload["extra"]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"checkpoint {p} is malformed: {type(exc).__name__}: {exc}") from None
    if net.to_weights().content_hash() != recorded:
        raise InputError(f"checkpoint {p}: weights do not match their recorded content hash")
    return net, config, extra


def load_network(path: str | Path) -> Weights:
    """Load :class:`Weights` from a ``.npz`` weights file or a ``.pt`` checkpoint."""
    p = Path(path)
    if p.suffix == ".pt":
        return load_checkpoint(p)[0].to_weights()
    return Weights.load(p)
