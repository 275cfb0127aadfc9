"""alpha-CROWN (Xu et al. 2021): CROWN with lower slopes optimised per (example, class, unit).

Xu, Zhang, Wang, Wang, Jana, Lin, Hsieh, *Fast and Complete: Enabling Complete Neural Network
Verification with Rapid and Massively Parallel Incomplete Verifiers* (ICLR 2021, arXiv 2011.13824).
CROWN (:mod:`certsdp.bounds.crown`) bounds ``g = v^T relu(W x~ + b) + (c_i - c_y)`` with a lower line
``s_h z_h`` for every unstable unit with ``v_h < 0``; every ``s in [0, 1]^m`` gives a valid bound

    ``B(s) = max_{x~ in box} sum_h v_h slope_h(s) (w_h x~ + b_h) + sum_h t_h + (c_i - c_y)``,

a convex, piecewise-linear function of ``s``. alpha-CROWN minimises it by projected gradient
descent: Adam on ``s`` (``iters`` steps, learning rate ``lr`` decayed geometrically to ``lr / 10``),
warm-started from CROWN's adaptive slopes, projected onto ``[0, 1]`` after each step, batched in torch
(float32) over examples, classes and units, keeping the best slopes seen per pair. For one hidden
layer with exact first-layer bounds ``min_s B(s)`` equals the triangle LP optimum
(:mod:`certsdp.bounds.lp_triangle`); the gap reached in practice is in ``docs/per-example-bounds.md``.

Rigour: the torch value is never reported. The chosen slopes are re-evaluated in float64 by the code
path of ``crown`` (:mod:`certsdp.bounds.linear_relaxation`, rigorous for any slopes in ``[0, 1]``) on
the box they were optimised for (the clipped one when ``clip`` is given), and the result is the
elementwise minimum with the ``crown`` bound itself, so ``alpha-crown <= crown`` always.

Per pair (:meth:`AlphaCrownBound.upper_where`, used by ``best``): only the batches that hold a pair asked
for are optimised, each one whole as in :meth:`AlphaCrownBound.upper` (the rounding of torch's float32
products depends on the tensor shapes), so those pairs keep the bits of the full run.

Torch: this is the only bound that needs torch, and ``import certsdp.bounds`` must not import it. The
module therefore imports torch in ONE place, inside :func:`optimise_slopes`, when a bound is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from certsdp.bounds.base import Bound
from certsdp.bounds.linear_relaxation import (
    ADAPTIVE,
    Preactivations,
    RelaxationState,
    adaptive_slopes,
    boxes,
    preactivation_bounds,
    upper_relaxation,
)
from certsdp.bounds.registry import register
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.validation import check_int

__all__ = ["AlphaCrownBound", "AlphaCrownState", "optimise_slopes"]

_FINAL_LR_FRACTION = 0.1  # the learning rate decays geometrically from lr to lr / 10


@dataclass(frozen=True)
class AlphaCrownState:
    """The relaxation arrays of one network and the optimiser's settings."""

    relax: RelaxationState
    iters: int
    lr: float


def check_lr(value: Any) -> float:
    """``value`` as a finite float > 0 (the Adam step size), InputError otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"lr must be a number, got {value!r}")
    try:
        lr = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"lr must be a number, got {value!r}") from None
    if not math.isfinite(lr) or lr <= 0:
        raise InputError(f"lr must be finite and > 0, got {value!r}")
    return lr


def _problem(state: RelaxationState, C: np.ndarray, R: np.ndarray | float, y: np.ndarray,
             pre: Preactivations) -> dict[str, Any]:
    """The numpy arrays of ``B(s)`` for a batch, restricted to the units alive in it (``cols``)."""
    cols = np.flatnonzero((pre.U > 0).any(axis=0))
    L, U = pre.L[:, cols], pre.U[:, cols]
    slope, t = upper_relaxation(L, U)
    Vd = state.tables.Dv[y][:, :, cols]
    free = ((L < 0) & (U > 0))[:, None, :] & (Vd < 0)
    R = np.broadcast_to(np.asarray(R, dtype=np.float64), C.shape)
    return {
        "cols": cols,
        "free": free,
        "init": np.broadcast_to(adaptive_slopes(L, U)[:, None, :], Vd.shape),
        "fixed": np.where(free, 0.0, Vd * slope[:, None, :]),  # slopes x v of the units not optimised
        "vfree": np.where(free, Vd, 0.0),
        "const": np.einsum("bpm,bm->bp", np.maximum(Vd, 0.0), t) + state.tables.Dc[y],
        "W": state.net.W[cols],
        "b": state.net.b[cols],
        "C": C,
        "R": R,
    }


def optimise_slopes(state: RelaxationState, C: np.ndarray, R: np.ndarray | float, y: np.ndarray,
                    pre: Preactivations, iters: int, lr: float) -> np.ndarray:
    """Lower slopes ``(B, k - 1, m)`` in ``[0, 1]`` minimising ``B(s)`` for the boxes ``[C +- R]``
    (bounds ``pre``) and labels ``y``: ``iters`` Adam steps from CROWN's slopes (module docs)."""
    import torch  # the one torch import of certsdp.bounds (module docs)

    arrays = _problem(state, C, R, y, pre)
    out = np.zeros((C.shape[0], state.tables.Dv.shape[1], state.net.m))
    best = np.array(arrays["init"])
    if iters > 0 and arrays["free"].any():
        t = {key: torch.tensor(np.asarray(arrays[key]), dtype=torch.float32)
             for key in ("init", "fixed", "vfree", "const", "W", "b", "C", "R")}
        alpha = t["init"].clone().requires_grad_(True)
        opt = torch.optim.Adam([alpha], lr=lr)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=_FINAL_LR_FRACTION ** (1.0 / iters))
        best_t, best_value = t["init"].clone(), torch.full(t["const"].shape, math.inf)
        for step in range(iters + 1):
            G = t["fixed"] + t["vfree"] * alpha
            Q = G @ t["W"]
            value = ((Q * t["C"][:, None, :]).sum(2) + (Q.abs() * t["R"][:, None, :]).sum(2)
                     + G @ t["b"] + t["const"])
            with torch.no_grad():
                better = value < best_value
                best_value = torch.where(better, value, best_value)
                best_t[better] = alpha[better]
            if step == iters:
                break
            opt.zero_grad()
            value.sum().backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                alpha.clamp_(0.0, 1.0)
        best = best_t.double().numpy()
    out[:, :, arrays["cols"]] = best
    return out


@register
class AlphaCrownBound(Bound):
    """alpha-CROWN: CROWN's lower slopes optimised by projected Adam, re-evaluated rigorously."""

    name = "alpha-crown"
    description = ("alpha-CROWN (Xu et al. 2021): CROWN with lower slopes optimised per example by "
                   "projected Adam (torch), re-certified in float64; tightened by clip")
    options = frozenset({"iters", "lr", "batch_size"})
    uses_clip = True

    def prepare(self, weights: Weights, iters: int = 50, lr: float = 0.2, batch_size: int = 256,
                **options: Any) -> AlphaCrownState:
        """``iters`` Adam steps of size ``lr`` (decayed to ``lr / 10``) per batch of ``batch_size``."""
        return AlphaCrownState(relax=RelaxationState.build(weights, batch_size),
                               iters=check_int("iters", iters, minimum=0), lr=check_lr(lr))

    def upper(self, state: AlphaCrownState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        return _alpha_crown(state, X, y, eps, clip, None)

    def upper_where(self, state: AlphaCrownState, weights: Weights, X: np.ndarray, y: np.ndarray,
                    eps: float, clip: tuple[float, float] | None, mask: np.ndarray) -> np.ndarray:
        """Only the batches of :meth:`upper` that hold a pair of ``mask`` are optimised; the others keep
        CROWN's bound.

        A batch is optimised whole, as in :meth:`upper`: its pairs share float32 tensors, and the
        rounding of a matrix product depends on its shape, so optimising a subset of its pairs would
        change their last bits. The batches and hence the bits of every optimised pair are those of
        :meth:`upper` for the same ``X``.
        """
        need = mask[np.arange(X.shape[0])[:, None], state.relax.tables.others[y]]
        return _alpha_crown(state, X, y, eps, clip, need)


def _alpha_crown(state: AlphaCrownState, X: np.ndarray, y: np.ndarray, eps: float,
                 clip: tuple[float, float] | None, need: np.ndarray | None) -> np.ndarray:
    """The ``(n, k)`` bounds; with ``need`` (``(n, k - 1)``) only the batches holding a needed pair are
    optimised (the others keep CROWN's bound)."""
    relax = state.relax
    crown = relax.pairs(X, y, eps, clip, ADAPTIVE)
    C, R = boxes(X, eps, clip, both=False)[0]
    pairs = np.full_like(crown, np.inf)
    for start in range(0, X.shape[0], relax.batch_size):
        rows = slice(start, start + relax.batch_size)
        if need is not None and not need[rows].any():
            continue
        Rc = R if np.ndim(R) == 0 else R[rows]
        pre = preactivation_bounds(relax.net, C[rows], Rc)
        slopes = optimise_slopes(relax, C[rows], Rc, y[rows], pre, state.iters, state.lr)
        pairs[rows] = relax.pairs(X[rows], y[rows], eps, clip, slopes, both_boxes=False)
    return relax.upper(np.minimum(pairs, crown), y)
