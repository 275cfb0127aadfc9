"""Error as the l_inf radius eps varies: the certified upper bound and the attacks' lower bounds.

Certified error (paper eq. 12): ``(x, y)`` is certified at radius eps iff
``max_{i != y} f_i(x) - f_y(x) + eps/4 * S_iy < 0``, with ``S_iy`` a rigorous upper bound on the SDP
value of the pair, from the solved pair table or from the dual vectors trained with the network
(eq. 16). The ``S_ij`` do not depend on eps, so one table serves every radius, and
:func:`certsdp.bounds.certify.certified_error_curve` computes the clean margins once for the whole
sweep: the same numbers as ``certify(..., "sdp", table=table)`` at each eps. Every figure's
certified-error-vs-eps curve (Figures 3 and 4) is :func:`certified_curve`.

Attack error: the fraction of the first ``n`` test images that an attack (FGSM, PGD, CW) fools,
read from the attack cache when it was run before (:mod:`certsdp.attacks.cache`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from certsdp.attacks import cached_attack_report
from certsdp.bounds import certified_error_curve
from certsdp.network import Weights

#: the attacks' display names (column headers)
ATTACK_NAMES = {"fgsm": "FGSM", "pgd": "PGD", "cw": "CW"}


def certified_curve(weights: Weights, X: np.ndarray, y: np.ndarray, eps: Sequence[float],
                    pair_bounds: np.ndarray, name: str | None = None) -> pd.Series:
    """Certified error in percent at every radius of ``eps`` (index), from the ``k x k`` ``pair_bounds``."""
    values = 100 * certified_error_curve(weights, X, y, list(eps), pair_bounds)
    return pd.Series(values, index=pd.Index(np.asarray(eps, dtype=np.float64)), name=name)


def attack_curve(net: nn.Module, X: np.ndarray, y: np.ndarray, eps: Sequence[float], attack: str,
                 *, n: int, cache_dir: str | Path | None, label: str,
                 clip: tuple[float, float] | None = (0.0, 1.0), name: str | None = None) -> pd.Series:
    """``attack``'s error in percent on the first ``n`` examples at every radius of ``eps`` (index).

    Clipped to the pixel range ``[0, 1]`` by default: the convention that reproduces the paper's
    attack numbers (Table 1); a clipped attack is also a lower bound for the unclipped box.
    """
    values = {e: 100 * cached_attack_report(net, X[:n], y[:n], e, attack, clip=clip, cache_dir=cache_dir,
                                            label=label)["error"]
              for e in eps}
    return pd.Series(values, name=name, dtype=np.float64)
