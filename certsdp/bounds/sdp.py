"""The SDP bound (paper eq. 12): ``f^{ij}(x~) <= f^{ij}(x) + eps/4 * S_ij`` over the eps box.

``S_ij = max <M(V_i - V_j, W), P>`` over ``P psd``, ``diag(P) <= 1`` (eq. 10-11) relaxes
``4 max_{s in [0,1]^m} ||W^T diag(V_i - V_j) s||_1`` (eq. 7, :mod:`certsdp.sdp.matrix`), so
``K_ij = S_ij / 4`` is a Lipschitz-type constant (:mod:`certsdp.bounds.lipschitz`). ``S_ij`` depends
on the weights only: :meth:`SDPBound.prepare` takes a certified pair table
(:class:`certsdp.sdp.pairs.PairTable`: an upper bound from a dual point with directed rounding, never
a solver objective) or solves one, once per network; every eps then costs one pass over the data.
A table is used only with the weights it was certified for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from certsdp.bounds.base import Bound
from certsdp.bounds.lipschitz import upper_from_constants
from certsdp.bounds.registry import register
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp.pairs import PairSolver, PairTable, solve_pairs


def sdp_constants(S_upper: np.ndarray) -> np.ndarray:
    """``K_ij = S_ij / 4`` (eq. 11); division by 4 is exact in binary floating point."""
    K = np.asarray(S_upper, dtype=np.float64) / 4.0
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise InputError(f"SDP pair table must be a square k x k array, got shape {K.shape}")
    if np.any(np.isnan(K[~np.eye(K.shape[0], dtype=bool)])):
        raise InputError("SDP table is missing some class pairs")
    return K


@dataclass(frozen=True)
class SDPState:
    """The pair table of one network and its constants ``K = S / 4``."""

    table: PairTable
    K: np.ndarray


@register
class SDPBound(Bound):
    """Eq. 12: ``K_ij = S_ij / 4`` from the certified SDP pair table."""

    name = "sdp"
    instant = True
    description = ("SDP bound, eq. 12: eps/4 S_ij with S_ij the certified SDP value of each class pair "
                   "(pairs solved once per network)")
    options = frozenset({"table", "progress", "solver"})

    def prepare(self, weights: Weights, table: PairTable | None = None, progress: bool = False,
                solver: PairSolver | None = None, **options: Any) -> SDPState:
        """Check ``table`` against ``weights``, or solve the table with ``solver`` (default: the fast one)."""
        if table is None:
            if solver is not None and not callable(solver):
                raise InputError(f"solver must be a pair solver (see certsdp.sdp.pairs), got {solver!r}")
            table = solve_pairs(weights, solver, progress=progress)
        table.check_for(weights)
        return SDPState(table=table, K=sdp_constants(table.upper))

    def upper(self, state: SDPState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        return upper_from_constants(weights, X, y, eps, state.K)

    def pair_table(self, state: SDPState) -> PairTable:
        return state.table
