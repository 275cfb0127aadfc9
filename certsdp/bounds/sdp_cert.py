"""``sdp-cert``: the per-example SDP of Raghunathan, Steinhardt & Liang (NeurIPS 2018), dual-certified.

For each example ``x`` and wrong class ``i`` this bounds
``max g(x~) = (V_i - V_y)^T relu(W x~ + b) + c_i - c_y`` over the attack box by the value of an SDP
in ``P = E[(1, x, z)(1, x, z)^T]`` (paper section 3, one hidden layer): ``z >= 0``, ``z >= W x + b``,
``diag(Z) = diag(W Q) + b o z`` (the relu equality lifted),
``diag(X) <= (l + u) o x - l o u`` (the box) and ``diag(Z) <= U o z`` (the hidden-layer interval
constraint with ``relu(L) = 0``), where ``L, U`` are rigorous interval bounds on ``W x~ + b``. Stable units
are eliminated (dead: ``z = 0``; active: ``z = W x + b`` substituted), and with ``chord`` (default) the
triangle's upper side ``z <= U (W x + b - L) / (U - L)`` is added, a valid strengthening that makes the
SDP value at most the triangle LP's. The relaxation, its dual and the rigour argument are in
:mod:`certsdp.sdp.example.problem` and :mod:`certsdp.sdp.example.certificate`; ``docs/sdp-cert.md`` has
the details and timings.

The reported ``U[n, i]`` is always a certified dual value (float64, directed rounding, Demmel/Rump
Cholesky margins), never a solver objective: any dual point gives a valid bound, and the interior-point
solver (:mod:`certsdp.sdp.example.ipm`) only chooses it. With ``clip`` the box is the clipped one (the
relaxation is monotone in the box). With ``stop_at_sign`` (default) a target stops as soon as its bound
is certified negative or the SDP value is found positive, so ``U`` is tight only where the certificate
needs it; ``stop_at_sign=False`` solves every target to the gap ``tol``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from certsdp.bounds.base import Bound
from certsdp.bounds.linear_relaxation import (
    ClassDifferences,
    ReluNet,
    center_radius,
    class_differences,
    preactivation_bounds,
    scatter_pairs,
)
from certsdp.bounds.registry import register
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp.example import SolveOptions, build_example, certify_targets
from certsdp.validation import check_int

__all__ = ["SDPCertBound", "SDPCertState", "check_tol"]


def check_tol(value: Any) -> float:
    """``value`` as a float in ``(0, 0.1]`` (relative duality gap), InputError otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"tol must be a number, got {value!r}")
    try:
        tol = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"tol must be a number, got {value!r}") from None
    if not (math.isfinite(tol) and 0.0 < tol <= 0.1):
        raise InputError(f"tol must be in (0, 0.1], got {value!r}")
    return tol


_FLAGS = {"true": True, "false": False, "1": True, "0": False}


def _check_flag(name: str, value: Any) -> bool:
    """A yes/no option: ``True``/``False``, or ``1``/``0`` and ``"true"``/``"false"`` as the CLI's
    ``--bound-option NAME=VALUE`` gives them; InputError otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    key = str(value).strip().lower() if isinstance(value, (str, int, np.integer)) else None
    if key not in _FLAGS:
        raise InputError(f"{name} must be true or false, got {value!r}")
    return _FLAGS[key]


@dataclass(frozen=True)
class SDPCertState:
    """The weights' derived arrays, the class-difference tables and the solver options."""

    net: ReluNet
    tables: ClassDifferences
    options: SolveOptions
    chord: bool
    progress: bool


@register
class SDPCertBound(Bound):
    """The per-example SDP relaxation per (example, class), solved by a structured interior-point method
    and certified from its dual."""

    name = "sdp-cert"
    description = ("per-example SDP of Raghunathan, Steinhardt & Liang (NeurIPS 2018), one SDP per example "
                   "and class, certified from its dual; uses clip; slow (seconds per pair)")
    options = frozenset({"tol", "max_iter", "chord", "stop_at_sign", "mixed", "progress"})
    uses_clip = True

    def prepare(self, weights: Weights, tol: float = 1e-5, max_iter: int = 60, chord: bool = True,
                stop_at_sign: bool = True, mixed: bool = True, progress: bool = False,
                **options: Any) -> SDPCertState:
        """``tol``: relative gap per SDP; ``max_iter``: interior-point iterations per SDP (1..1000);
        ``chord``: add the triangle's upper side; ``stop_at_sign``: stop a pair once its sign is known;
        ``mixed``: float32 search directions far from the optimum (the certificate is float64 either way)."""
        solve = SolveOptions(tol=check_tol(tol), max_iter=check_int("max_iter", max_iter, 1, 1000),
                             stop_at_sign=_check_flag("stop_at_sign", stop_at_sign),
                             mixed=_check_flag("mixed", mixed))
        return SDPCertState(net=ReluNet(weights), tables=class_differences(weights), options=solve,
                            chord=_check_flag("chord", chord), progress=bool(progress))

    def upper(self, state: SDPCertState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        return self._bounds(state, weights, X, y, eps, clip, None)

    def upper_where(self, state: SDPCertState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
                    clip: tuple[float, float] | None, mask: np.ndarray) -> np.ndarray:
        """Only the pairs of ``mask`` are solved (each pair's SDP is independent of the others, so its
        bound is the one of :meth:`upper` bit for bit); the other pairs are ``+inf``."""
        return self._bounds(state, weights, X, y, eps, clip, mask)

    def _bounds(self, state: SDPCertState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
                clip: tuple[float, float] | None, mask: np.ndarray | None) -> np.ndarray:
        C, R = center_radius(X, eps, clip)
        pre = preactivation_bounds(state.net, C, R)
        others = state.tables.others
        pairs = np.full((X.shape[0], weights.k - 1), np.inf)
        failed = 0
        for n in tqdm(range(X.shape[0]), desc="sdp-cert", disable=not state.progress):
            need = np.ones(weights.k - 1, dtype=bool) if mask is None else mask[n, others[y[n]]]
            if not need.any():
                continue
            radius = R if np.ndim(R) == 0 else R[n]
            problem = build_example(weights, C[n], radius, pre.L[n], pre.U[n], int(y[n]), others[y[n]],
                                    chord=state.chord)
            for k, result in enumerate(certify_targets(problem, state.options, need)):
                if result is not None:
                    pairs[n, k] = result.upper
                    failed += not math.isfinite(result.upper)
        if failed:
            warnings.warn(f"sdp-cert: {failed} pair(s) without a certified dual point; their bound is +inf",
                          RuntimeWarning, stacklevel=3)
        return scatter_pairs(pairs, others, y, weights.k)
