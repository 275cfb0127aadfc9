"""Directed rounding and floating-point error bounds for float64 certificates.

A certificate must be a true upper bound on a real-number quantity even though it is computed in
IEEE-754 double precision with round-to-nearest. This module gives the few tools used to make
that so (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed.):

* ``gamma(n) = n u / (1 - n u)`` with unit roundoff ``u = 2**-53`` bounds the relative error of a
  dot product of length ``n`` evaluated in any order (Higham Lemma 3.1, eq. 3.5), also with FMA;
* :func:`up` moves a computed value one ulp towards ``+inf`` (a result of one round-to-nearest
  operation is within half an ulp, so this is a safe upper bound of the exact result);
* :func:`sum_up` is an exactly rounded sum (``math.fsum``) moved one ulp up.
"""

from __future__ import annotations

import math

import numpy as np

UNIT_ROUNDOFF = 2.0**-53
TINY = 2.0**-1022  # smallest normal double; absolute slack for underflow in error bounds


def gamma(n: int) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)`` (requires ``n u < 1``)."""
    nu = n * UNIT_ROUNDOFF
    if nu >= 0.5:
        raise ValueError(f"gamma({n}) is not defined for n u >= 1/2")
    return up(nu / (1.0 - nu))


def up(x: float | np.ndarray) -> float | np.ndarray:
    """Next float towards ``+inf``: an upper bound of the exact value of one rounded operation."""
    out = np.nextafter(x, np.inf)
    return float(out) if np.ndim(out) == 0 else out


def sum_up(values: np.ndarray | list[float]) -> float:
    """An upper bound of the exact sum of finite floats (exactly rounded ``fsum``, one ulp up).

    Raises ``FloatingPointError`` when a value or the sum is not finite (never a bound then).
    """
    try:
        total = math.fsum(np.asarray(values, dtype=np.float64).ravel().tolist())
    except (OverflowError, ValueError):  # an intermediate overflow, or inf - inf
        raise FloatingPointError("sum_up: the sum exceeds the float64 range") from None
    if not math.isfinite(total):
        raise FloatingPointError("sum_up: non-finite sum")
    return up(total)


def mul_up(a: float, b: float) -> float:
    """An upper bound of the exact product ``a * b`` of two floats."""
    return up(a * b)


def scores_upper_margins(W: np.ndarray, b: np.ndarray, V: np.ndarray, c: np.ndarray,
                         X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Upper bounds ``U[n, i] >= f_i(x_n) - f_{y_n}(x_n)`` evaluated in float64 with error bounds.

    ``f(x) = V relu(W x + b) + c``. With ``h = W x + b`` computed as a length-``d+1`` dot product,
    ``|fl(h) - h| <= gamma_{d+1} (|W||x| + |b|) =: e_h``; relu is 1-Lipschitz; the score
    ``s = V r + c`` has ``|fl(s) - s| <= gamma_{m+1} (|V||r| + |c|) + |V| e_h``; the difference of
    two scores adds one more rounding. The bound terms are themselves computed in floating point,
    so they are inflated by a factor 2 (they are ~1e-13 of the scores, so this costs nothing).
    Underflow: each of the ``n`` products of a length-``n`` dot product may also lose up to half the
    smallest subnormal spacing in absolute terms, covered by ``n * TINY`` added to ``e_h`` and
    ``e_s`` (and by ``TINY`` once more for the products with ``|V|``). The entry ``U[n, y_n]`` is
    ``-inf``.
    """
    diff, err = _margins_and_errors(W, b, V, c, X, y)
    U = up(diff + 2.0 * err)
    U[np.arange(X.shape[0]), y] = -np.inf
    return U


def scores_lower_margins(W: np.ndarray, b: np.ndarray, V: np.ndarray, c: np.ndarray,
                         X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Lower bounds ``L[n, i] <= f_i(x_n) - f_{y_n}(x_n)``: the mirror of :func:`scores_upper_margins`.

    Same error analysis, subtracted and rounded towards ``-inf``. An entry whose computation
    overflows or is NaN is ``-inf`` (no evidence of anything), as is ``L[n, y_n]``. So
    ``max_i L[n, i] >= 0`` proves that ``x_n`` is misclassified in exact arithmetic (ties count as
    mistakes): the test a witness must pass.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        diff, err = _margins_and_errors(W, b, V, c, X, y)
        L = -up(-(diff - 2.0 * err))
    L = np.where(np.isfinite(L), L, -np.inf)
    L[np.arange(X.shape[0]), y] = -np.inf
    return L


def _margins_and_errors(W: np.ndarray, b: np.ndarray, V: np.ndarray, c: np.ndarray,
                        X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 margins ``f_i(x_n) - f_{y_n}(x_n)`` and bounds on their rounding errors (see above)."""
    n, d = X.shape
    m = W.shape[0]
    h = X @ W.T + b
    e_h = gamma(d + 1) * (np.abs(X) @ np.abs(W).T + np.abs(b)) + (d + 1) * TINY
    r = np.maximum(h, 0.0)
    s = r @ V.T + c
    e_s = (gamma(m + 1) * (r @ np.abs(V).T + np.abs(c)) + e_h @ np.abs(V).T
           + (2 * m + 2) * TINY)
    rows = np.arange(n)
    diff = s - s[rows, y][:, None]
    err = e_s + e_s[rows, y][:, None] + UNIT_ROUNDOFF * np.abs(diff)
    return diff, err
