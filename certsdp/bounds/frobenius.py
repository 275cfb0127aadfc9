"""The Frobenius bound (paper eq. 17): ``f^{ij}(x~) <= f^{ij}(x) + eps sqrt(d) ||W||_F ||V_i - V_j||_2``.

Since ``||W^T diag(v) s||_1 <= sqrt(d) ||W^T diag(v) s||_2 <= sqrt(d) ||W||_2 ||v||_2`` for
``s in [0, 1]^m`` and ``||W||_2 <= ||W||_F``, this is the loosest of the three Lipschitz-type bounds
(:mod:`certsdp.bounds.lipschitz`), but it costs one norm.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from certsdp.bounds.lipschitz import LipschitzBound, norm2_upper, pair_v_norms
from certsdp.bounds.registry import register
from certsdp.network.weights import Weights
from certsdp.numerics.rounding import up


def frobenius_constants(weights: Weights) -> np.ndarray:
    """``K_ij = sqrt(d) ||W||_F ||V_i - V_j||_2`` (eq. 17), rounded up."""
    scale = up(up(math.sqrt(weights.d)) * norm2_upper(weights.W))
    return up(scale * pair_v_norms(weights))


@register
class FrobeniusBound(LipschitzBound):
    """Eq. 17: ``K_ij = sqrt(d) ||W||_F ||V_i - V_j||_2``."""

    name = "fro"
    instant = True
    description = "Frobenius bound, eq. 17: eps sqrt(d) ||W||_F ||V_i - V_j||_2 (loosest, instant)"

    def prepare(self, weights: Weights, **options: Any) -> np.ndarray:
        return frobenius_constants(weights)
