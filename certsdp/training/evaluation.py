"""What the loop measures after every epoch: scores in batches, the clean test error, JSON matrices."""

from __future__ import annotations

import numpy as np
import torch

from certsdp.attacks import score_margin
from certsdp.network.torch_model import TwoLayerNet

EVAL_BATCH = 2000


@torch.no_grad()
def scores(net: TwoLayerNet, X: torch.Tensor) -> torch.Tensor:
    """``net(X)`` computed ``EVAL_BATCH`` rows at a time (``(0, k)`` for no rows)."""
    if len(X) == 0:
        return torch.zeros(0, net.dims[2], device=X.device)
    return torch.cat([net(X[s:s + EVAL_BATCH]) for s in range(0, len(X), EVAL_BATCH)])


def clean_error(net: TwoLayerNet, X: torch.Tensor, y: torch.Tensor) -> float | None:
    """The fraction of ``(X, y)`` misclassified, ``None`` for no examples.

    The attacks' rule: a tie with a wrong class is a mistake (argmax would break it by index).
    """
    wrong = (score_margin(scores(net, X), y) >= 0).double()
    return float(wrong.mean()) if len(y) else None


def json_matrix(a: np.ndarray) -> list[list[float | None]]:
    """``a`` as nested lists, ``None`` where it is not finite (JSON has no NaN)."""
    return [[None if not np.isfinite(v) else float(v) for v in row] for row in a]
