"""The attacked batch, checked once where it enters: inputs, labels, and the network's clean scores.

Attacks work on any ``torch.nn.Module`` mapping an ``(n, d)`` batch to ``(n, k)`` scores (e.g.
:class:`certsdp.network.torch_model.TwoLayerNet`), on the device and in the dtype of its parameters.
The network is put in eval mode while it is attacked (:func:`eval_mode`) and its parameters are never
modified.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from certsdp.errors import InputError


def net_place(net: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of the network's first parameter (CPU and the default dtype without any)."""
    for p in net.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), torch.get_default_dtype()


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """``net`` in eval mode inside the block; its previous mode is restored afterwards."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def as_batch(net: nn.Module, X: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` as tensors on the network's device: ``X`` in its dtype, ``y`` as int64 labels.

    Raises :class:`InputError` unless ``X`` is a finite ``(n, d)`` array and ``y`` ``n`` integers.
    """
    device, dtype = net_place(net)
    if isinstance(X, np.ndarray) and not X.flags.writeable:
        X = X.copy()  # e.g. the read-only cached MNIST arrays; torch warns on read-only memory
    if isinstance(y, np.ndarray) and not y.flags.writeable:
        y = y.copy()
    X = torch.as_tensor(X)
    y = torch.as_tensor(y)
    if X.ndim != 2:
        raise InputError(f"inputs: X must be 2-dimensional (n, d), got shape {tuple(X.shape)}")
    if not X.is_floating_point():
        X = X.to(torch.float64)
    if not bool(torch.isfinite(X).all()):
        raise InputError("inputs: X has NaN or infinite entries")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise InputError(f"inputs: y must have shape ({X.shape[0]},), got {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise InputError(f"inputs: labels must be integers, got dtype {y.dtype}")
    return X.to(device=device, dtype=dtype), y.to(device=device, dtype=torch.long)


def clean_scores(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``net(x)`` (no gradient), checked: InputError for an input width the network does not take,
    non-finite scores, fewer than 2 classes, or labels outside ``[0, k - 1]``.

    A NaN score would make every comparison false, so that no example could ever count as fooled:
    an attack on a network with NaN weights would silently report 0% error.
    """
    if not len(x):
        logits = torch.zeros(0, 2, device=x.device)
    else:
        try:
            with torch.no_grad():
                logits = net(x)
        except RuntimeError as exc:
            raise InputError(f"the network does not accept inputs of shape {tuple(x.shape)}: {exc}") from None
        if not bool(torch.isfinite(logits).all()):
            raise InputError("the network's scores at the clean inputs are NaN or infinite "
                             "(NaN/inf weights?)")
    if logits.ndim != 2 or logits.shape[0] != y.shape[0]:
        raise InputError(f"network output has shape {tuple(logits.shape)}, expected ({y.shape[0]}, k)")
    k = logits.shape[1]
    if k < 2:
        raise InputError(f"network has {k} output(s); need at least 2 classes")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        raise InputError(f"labels must lie in [0, {k - 1}], got range [{int(y.min())}, {int(y.max())}]")
    return logits
