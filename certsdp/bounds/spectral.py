"""The spectral bound (paper eq. 18): ``f^{ij}(x~) <= f^{ij}(x) + eps sqrt(d) ||W||_2 ||V_i - V_j||_2``.

``||W^T diag(v) s||_1 <= sqrt(d) ||W||_2 ||diag(v) s||_2 <= sqrt(d) ||W||_2 ||v||_2`` for
``s in [0, 1]^m``; ``||W||_2`` is certified from above by a Cholesky factorisation
(:func:`certsdp.numerics.psd_check.spectral_norm_upper`). Between the SDP and Frobenius bounds
(:mod:`certsdp.bounds.lipschitz`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from certsdp.bounds.lipschitz import LipschitzBound, pair_v_norms
from certsdp.bounds.registry import register
from certsdp.network.weights import Weights
from certsdp.numerics.psd_check import spectral_norm_upper
from certsdp.numerics.rounding import up


def spectral_constants(weights: Weights) -> np.ndarray:
    """``K_ij = sqrt(d) ||W||_2 ||V_i - V_j||_2`` (eq. 18), ``||W||_2`` certified by Cholesky."""
    try:
        norm = spectral_norm_upper(weights.W)
    except FloatingPointError:  # ||W||_2^2 overflows (weights ~1e155): no finite bound, no certificate
        norm = math.inf
    scale = up(up(math.sqrt(weights.d)) * norm)
    return up(scale * pair_v_norms(weights))


@register
class SpectralBound(LipschitzBound):
    """Eq. 18: ``K_ij = sqrt(d) ||W||_2 ||V_i - V_j||_2``."""

    name = "spectral"
    instant = True
    description = "spectral bound, eq. 18: eps sqrt(d) ||W||_2 ||V_i - V_j||_2"

    def prepare(self, weights: Weights, **options: Any) -> np.ndarray:
        return spectral_constants(weights)
