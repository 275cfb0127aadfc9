"""The l_inf attack box ``{x~ : |x~ - x|_inf <= eps}``, optionally intersected with ``[lo, hi]^d``.

Shared by the LP bound (:mod:`certsdp.bounds.lp`), the exact references (:mod:`certsdp.bounds.exact`) and the
attacks. By default the box is *not* clipped to the pixel range: that is the attack set of the paper's
certificates. With ``clip=(clip_lo, clip_hi)`` the box is intersected with ``[clip_lo, clip_hi]^d``.

Inputs outside the clip range: coordinate-wise the box is ``[clip(x - eps), clip(x + eps)]`` where
``clip`` projects onto ``[clip_lo, clip_hi]``. When the intersection is non-empty this is exactly the
intersection; in a coordinate where it is empty (the input lies more than ``eps`` outside the clip
range) the interval collapses to the nearest clip bound (the projection of ``x``), so the returned box
is never empty and always satisfies ``lo <= hi``.
"""

from __future__ import annotations

import math

import numpy as np

from certsdp.errors import InputError


def check_eps(eps: float) -> float:
    """Return ``eps`` as a Python float, or raise :class:`InputError` if it is not finite and >= 0.

    This is the one check of a radius in certsdp. ``-0.0`` is returned as ``0.0`` (it is the same
    radius, and reports should not say ``eps=-0``).
    """
    if isinstance(eps, (bool, np.bool_)):
        raise InputError(f"eps must be a number, got {eps!r}")
    try:
        value = float(eps)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"eps must be a finite number, got {eps!r}") from None
    if not math.isfinite(value):
        raise InputError(f"eps must be finite, got {value}")
    if value < 0:
        raise InputError(f"eps must be >= 0, got {value}")
    return value + 0.0  # -0.0 + 0.0 == +0.0; every other value is unchanged


def check_clip(clip: tuple[float, float] | None) -> tuple[float, float] | None:
    """Validate ``clip = (clip_lo, clip_hi)`` (or ``None``); raise :class:`InputError` if it is bad.

    Infinite ends are allowed (``(0.0, inf)`` clips only from below) but NaN, ``clip_lo > clip_hi``,
    ``clip_lo = +inf`` and ``clip_hi = -inf`` are not.
    """
    if clip is None:
        return None
    try:
        lo, hi = (float(v) for v in clip)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"clip must be a pair (lo, hi) of numbers, got {clip!r}") from None
    if math.isnan(lo) or math.isnan(hi):
        raise InputError(f"clip bounds must not be NaN, got {clip!r}")
    if lo > hi:
        raise InputError(f"clip lower bound {lo} exceeds upper bound {hi}")
    if lo == math.inf or hi == -math.inf:
        raise InputError(f"clip range {clip!r} is empty")
    return lo, hi


def check_inside_clip(X: np.ndarray, clip: tuple[float, float] | None) -> None:
    """Raise :class:`InputError` if ``clip`` is given and some input lies outside ``[clip_lo, clip_hi]``.

    The clipped attack set ``{x~ : |x~ - x|_inf <= eps} & [clip_lo, clip_hi]^d`` does not contain such an
    ``x``, so a bound over it says nothing about the prediction at ``x`` itself: certifying it could
    count a misclassified input as certified. Bounds that use the clip range refuse these inputs.
    """
    if clip is None:
        return
    arr = np.asarray(X, dtype=np.float64)
    outside = (arr < clip[0]) | (arr > clip[1])
    if np.any(outside):
        rows = np.flatnonzero(outside.reshape(outside.shape[0], -1).any(axis=1)) if arr.ndim > 1 else [0]
        raise InputError(f"{len(rows)} input(s) (first: row {rows[0]}) have values outside the clip range "
                         f"[{clip[0]:g}, {clip[1]:g}] (min {arr.min():g}, max {arr.max():g}); certify them "
                         "without clipping, or bring the inputs into the range first")


def attack_box(
    X: np.ndarray,
    eps: float,
    clip: tuple[float, float] | None = None,
    *,
    outward: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners ``(lo, hi)`` of the attack box around each row of ``X``.

    ``X`` is usually ``(n, d)``; any shape is accepted and ``lo, hi`` have the same shape (float64).
    Without ``clip``: ``lo = x - eps``, ``hi = x + eps``. With ``clip = (a, b)``:
    ``lo = min(max(x - eps, a), b)`` and ``hi = max(min(x + eps, b), a)`` (see the module docstring for
    inputs outside ``[a, b]``).

    ``x - eps`` and ``x + eps`` are rounded to nearest, so by default the box may differ from the
    exact real box by one unit in the last place at each corner. With ``outward=True`` the corners are
    moved one floating-point step outwards *before* clipping (``np.nextafter`` towards -inf / +inf), so
    that the returned box contains the exact real box: use this for sound upper bounds. Attacks should
    use the default box (and may clip their iterates into it).

    Raises :class:`InputError` for a non-finite or negative ``eps``, a bad ``clip``, or NaN/inf in ``X``.
    """
    eps = check_eps(eps)
    clip = check_clip(clip)
    arr = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError("attack box: X has NaN or infinite entries")
    lo = arr - eps
    hi = arr + eps
    if outward:
        lo = np.nextafter(lo, -np.inf)
        hi = np.nextafter(hi, np.inf)
    if clip is not None:
        lo = np.clip(lo, clip[0], clip[1])
        hi = np.clip(hi, clip[0], clip[1])
    return lo, hi
