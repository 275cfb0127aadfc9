"""The CROWN bound (Zhang et al. 2018) for a one-hidden-layer ReLU network, with rigorous rounding.

Zhang, Weng, Chen, Hsieh, Daniel, *Efficient Neural Network Robustness Certification with General
Activation Functions* (NeurIPS 2018, arXiv 1811.00866). For ``g(x~) = v^T relu(W x~ + b) + (c_i - c_y)``,
``v = V_i - V_y``, over the box: exact interval bounds ``l, u`` on the pre-activations (interval
arithmetic, exact for the first layer); stable units exact; an unstable unit with ``v_h > 0`` takes
the upper chord through ``(l, 0)`` and ``(u, u)``, one with ``v_h < 0`` the lower line ``s z`` with
CROWN's adaptive slope ``s = 1 if u >= -l else 0`` (the line closer to ``relu`` in area). The resulting
affine function of ``x~`` is maximised over the box in closed form,
``q^T c + |q|^T r + g^T b + sum_h t_h + (c_i - c_y)`` with ``q = W^T g``.

It differs from Wong & Kolter's bound (:mod:`certsdp.bounds.lp`) only in the lower slope (Wong &
Kolter use ``u / (u - l)``); neither dominates the other. Every step is rounded upwards by the margins
of :mod:`certsdp.bounds.linear_relaxation` (its steps 1-4), which hold for any lower slope in
``[0, 1]``. With ``clip`` the result is the minimum of the bounds on the clipped and on the unclipped
box (the adaptive slopes make the bound non-monotone in the box), so clipping never loosens it. The
work is one GEMM ``W^T g`` per batch of examples and classes, as for ``lp``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from certsdp.bounds.base import Bound
from certsdp.bounds.linear_relaxation import ADAPTIVE, RelaxationState
from certsdp.bounds.registry import register
from certsdp.network.weights import Weights

__all__ = ["CrownBound"]


@register
class CrownBound(Bound):
    """CROWN: chord above, adaptive line (slope 0 or 1) below, maximised over the box in closed form."""

    name = "crown"
    instant = True
    description = ("CROWN (Zhang et al. 2018): chord above, adaptive 0/1 slope below each unstable unit, "
                   "per example; tightened by clip")
    options = frozenset({"batch_size"})
    uses_clip = True

    def prepare(self, weights: Weights, batch_size: int = 256, **options: Any) -> RelaxationState:
        """Class differences and ``|W|``; ``batch_size`` examples share one GEMM."""
        return RelaxationState.build(weights, batch_size)

    def upper(self, state: RelaxationState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        return state.upper(state.pairs(X, y, eps, clip, ADAPTIVE), y)
