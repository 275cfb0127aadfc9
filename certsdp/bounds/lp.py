"""The LP bound of Wong & Kolter (2017) for a one-hidden-layer ReLU network, with rigorous rounding.

Wong & Kolter, *Provable defenses against adversarial examples via the convex outer adversarial
polytope* (ICML 2018, arXiv 1711.00851), bound ``max f_i(x~) - f_j(x~)`` over an l_inf box by the
value of a dual network. For one hidden layer the dual network collapses to a closed form: with exact
interval bounds ``l, u`` on the pre-activations, each unstable unit ``h`` of
``f_i - f_j = v^T relu(z) + (c_i - c_j)``, ``v = V_i - V_j``, is bounded by the line of slope
``a = u / (u - l)``: the upper chord ``relu(z) <= a (z - l)`` for ``v_h > 0`` and the lower line
``relu(z) >= a z`` for ``v_h < 0`` (Wong & Kolter's choice); stable units are exact, and the affine
bound is maximised over the box in closed form.

This equals the optimum of the LP in which ``relu`` is replaced by the upper chord and the lower line
``a z`` (for ``v_h < 0``), so it is >= the optimum of the triangle LP relaxation
(:mod:`certsdp.bounds.lp_triangle`), which is >= the true maximum (see :mod:`certsdp.bounds.exact`
for the references used in the tests).

The evaluation, its rigorous float64 rounding margins (box, pre-activation bounds, relaxation, final
sum) and the clipping rule (the minimum of the bounds on the clipped and on the unclipped box, since
the bound is not monotone in the box) are those of :mod:`certsdp.bounds.linear_relaxation`, with the
lower slope :data:`~certsdp.bounds.linear_relaxation.CHORD`. The work is dominated by the product
``W^T g`` for every example and wrong class, ``n (k-1) m d`` multiply-adds (fewer with dead units);
clipping doubles it (two boxes). Timings: ``docs/bounds.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from certsdp.bounds.base import Bound
from certsdp.bounds.linear_relaxation import CHORD, RelaxationState, ReluNet, relaxation_upper
from certsdp.bounds.registry import register
from certsdp.network.weights import Weights
from certsdp.numerics.box import check_clip, check_eps, check_inside_clip

__all__ = ["LPBound", "lp_upper_bounds", "lp_pair_upper"]


@register
class LPBound(Bound):
    """Wong & Kolter's LP bound for one hidden layer, in closed form with rigorous rounding."""

    name = "lp"
    instant = True
    description = ("LP bound of Wong & Kolter (2017): the dual network of the ReLU LP relaxation, "
                   "per example; tightened by clip")
    options = frozenset({"batch_size"})
    uses_clip = True

    def prepare(self, weights: Weights, batch_size: int = 256, **options: Any) -> RelaxationState:
        """Class differences and ``|W|``; ``batch_size`` examples are bounded at a time."""
        return RelaxationState.build(weights, batch_size)

    def upper(self, state: RelaxationState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        return state.upper(state.pairs(X, y, eps, clip, CHORD), y)


def lp_upper_bounds(
    weights: Weights,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    clip: tuple[float, float] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Wong & Kolter LP upper bounds for every example and every wrong class (:class:`LPBound`).

    Returns ``U`` of shape ``(n, k)`` with ``U[n, i] >= max_{x~ in box(X[n])} f_i(x~) - f_{y_n}(x~)``
    (a rigorous upper bound despite rounding, see :mod:`certsdp.bounds.linear_relaxation`) and
    ``U[n, y_n] = -inf``. Example ``n`` is certified iff ``U[n].max() < 0``. The box is
    ``|x~ - X[n]|_inf <= eps``, intersected with ``[clip[0], clip[1]]^d`` if ``clip`` is given. Work is
    vectorised over the examples of a batch (``batch_size`` rows at a time) and over the ``k - 1``
    wrong classes.

    Raises :class:`InputError` for inputs of the wrong shape or with NaN/inf, labels that are not
    integers in ``[0, k)``, a negative or non-finite ``eps``, a bad ``clip`` or ``batch_size``, and for
    inputs outside the clip range (:func:`certsdp.numerics.box.check_inside_clip`: the clipped box would not
    contain them, so "certified" would say nothing about their own prediction).
    """
    X = weights.check_inputs(X)
    y = weights.check_labels(y, X.shape[0])
    eps = check_eps(eps)
    clip = check_clip(clip)
    check_inside_clip(X, clip)
    bound = LPBound()
    return bound.upper(bound.prepare(weights, batch_size=batch_size), weights, X, y, eps, clip)


def lp_pair_upper(
    weights: Weights,
    x: np.ndarray,
    i: int,
    j: int,
    eps: float,
    clip: tuple[float, float] | None = None,
) -> float:
    """Wong & Kolter LP upper bound on ``max f_i(x~) - f_j(x~)`` over the box around one input ``x``.

    ``x`` has shape ``(d,)`` (or ``(1, d)``); ``i`` and ``j`` are classes in ``[0, k)`` (``i == j`` gives
    an upper bound on 0). Same rigorous rounding and clipping rules as :func:`lp_upper_bounds`.
    """
    X = weights.check_single_input(x)
    i = weights.check_class("i", i)
    j = weights.check_class("j", j)
    eps = check_eps(eps)
    clip = check_clip(clip)
    Dv = (weights.V[i] - weights.V[j])[None, None, :]
    Dc = np.array([[weights.c[i] - weights.c[j]]])
    idx = np.zeros(1, dtype=np.intp)
    return float(relaxation_upper(ReluNet(weights), X, eps, clip, Dv, Dc, idx, 1, CHORD)[0, 0])
