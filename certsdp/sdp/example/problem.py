"""The per-example SDP of Raghunathan, Steinhardt & Liang (NeurIPS 2018) in scaled coordinates.

For one example, a box ``[C - R, C + R]`` that contains its (clipped) attack box and a target class
``i`` (label ``y``), bound ``max g(x) = v^T relu(W x + b) + c_i - c_y``, ``v = V_i - V_y``. The rigorous
interval bounds ``L <= W x + b <= U`` over the box split the hidden units: dead (``U <= 0``, ``z = 0``),
active (``L >= 0``, ``z = W x + b``, substituted into the objective) and *unstable* ``I``
(``L < 0 < U``), the only ones kept in the SDP. With the scaled variables

    ``x = C + R o x^``,  ``z_h = (U_h / 2) (1 + z^_h)``  (h in I),  so ``x^, z^ in [-1, 1]``,

and ``P = E[(1, x^, z^)(1, x^, z^)^T]`` the relaxation is ``max <M_obj, P>`` over ``P psd`` with

* ``P_00 = 1``;
* ``P_tt <= 1`` (the box, ``(x - l)(x - u) <= 0``) and ``P_hh <= 1`` (``z_h^2 <= U_h z_h``, the paper's
  hidden-layer interval constraint with ``l = relu(L) = 0``; it also implies ``z >= 0``);
* ``<E_h, P> = 0``: ``z_h (z_h - w_h^T x - b_h) = 0`` lifted (``diag(Z) = diag(W Q) + b o z``);
* ``<G_h, P> >= 0``: ``z_h >= w_h^T x + b_h`` (first row);
* ``<K_h, P> >= 0`` (optional, ``chord``): ``z_h <= s_h (w_h^T x + b_h - L_h)``, ``s_h >= U_h/(U_h - L_h)``,
  the upper side of the triangle relaxation (a valid strengthening: with it the SDP value is at most
  the triangle LP's).

Lagrangian duality: for multipliers ``nu`` (free), ``beta, gamma >= 0`` let
``M = M_obj + sum_h nu_h E_h + beta_h G_h + gamma_h K_h``. If ``diag(c) - M`` is psd with
``c_t, c_h >= 0`` (``c_0`` free), then every feasible ``P`` has ``<M_obj, P> <= sum(c)``. ``M`` is the
sparse bordered matrix (rows ``0``, ``x^``, ``z^``)::

    M_00 = const + sum (nu + beta)(U/2 - beta0) + gamma (s (beta0 - L) - U/2)
    M_0t = (ox - W^^T (nu + beta - gamma s)) / 2        M_0h = oz/2 + nu (U - beta0)/2 + (beta - gamma) U/4
    M_th = -nu_h W^_ht / 2                               M_hh = nu_h U_h / 2,   M_tt' = 0, M_hh' = 0 (h != h')

with ``W^ = W_I diag(R)``, ``beta0 = W_I C + b_I``, ``ox = R o (W_A^T v_A)`` and
``oz = v_I o U_I / 2``. The multipliers here are those of the unnormalised constraints; the solver
works with constraints divided by ``sigma_h`` and converts.

Rigour: the relaxation is built on floats that define it exactly (``C, R, L, U``, the rounded-up
``s``, the computed ``v^ = fl(V_i - V_y)``). :meth:`ExampleSDP.model_error` bounds ``sum |M - fl(M)|``
(entrywise, so also the spectral norm) by ``gamma_{2K}`` times the same sums of absolute values, and
:attr:`ExampleSDP.objective_error` bounds the error of using ``v^`` and ``fl(c_i - c_y)`` (``|z_h| <= U_h``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from certsdp.network.weights import Weights
from certsdp.numerics.rounding import TINY, UNIT_ROUNDOFF, gamma, sum_up, up


@dataclass(frozen=True)
class Multipliers:
    """Dual multipliers of one target, for the unnormalised constraints ``E_h, G_h, K_h`` (each ``(p,)``)."""

    nu: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray


@dataclass(frozen=True)
class DualMatrix:
    """The non-zero blocks of ``M`` for one target (see the module docstring), in float64.

    ``Bz`` is ``M_th`` (d x p), ``mz`` the diagonal ``M_hh``, ``m0x``, ``m0z`` the border, ``m00`` the corner.
    """

    Bz: np.ndarray
    mz: np.ndarray
    m0x: np.ndarray
    m0z: np.ndarray
    m00: float

    def dense(self) -> np.ndarray:
        """``M`` as a dense symmetric matrix ordered ``(0, x^, z^)`` (for tests and small references)."""
        d, p = self.Bz.shape
        M = np.zeros((1 + d + p, 1 + d + p))
        M[0, 0] = self.m00
        M[0, 1:1 + d] = M[1:1 + d, 0] = self.m0x
        M[0, 1 + d:] = M[1 + d:, 0] = self.m0z
        M[1:1 + d, 1 + d:] = self.Bz
        M[1 + d:, 1:1 + d] = self.Bz.T
        M[1 + d:, 1 + d:] += np.diag(self.mz)
        return M


@dataclass(frozen=True)
class ExampleSDP:
    """The reduced, scaled SDP of one example for ``K`` target classes (module docstring).

    Shared by the targets: the box ``C, R`` (d,), the bounds ``L, U`` (m,), the unstable units
    ``unstable`` (p,), ``What = fl(W_I diag(R))`` (p, d), ``beta0 = fl(W_I C + b_I)``, ``half_u = U_I/2``,
    ``lower = L_I``, the chord slopes ``slope`` and the absolute sums used by the error bounds.
    Per target ``k``: ``ox[k]`` (d,), ``oz[k]`` (p,), ``const[k]`` and their absolute versions.
    """

    C: np.ndarray
    R: np.ndarray
    L: np.ndarray
    U: np.ndarray
    unstable: np.ndarray
    What: np.ndarray
    beta0: np.ndarray
    beta0_abs: np.ndarray
    wr_abs: np.ndarray
    half_u: np.ndarray
    lower: np.ndarray
    slope: np.ndarray
    targets: np.ndarray
    ox: np.ndarray
    oz: np.ndarray
    const: np.ndarray
    ox_abs: np.ndarray
    const_abs: np.ndarray
    objective_error: np.ndarray
    chord: bool
    depth: int

    @property
    def d(self) -> int:
        return int(self.What.shape[1])

    @property
    def p(self) -> int:
        return int(self.What.shape[0])

    @property
    def size(self) -> int:
        """Order ``1 + d + p`` of ``P``."""
        return 1 + self.d + self.p

    def dual_matrix(self, k: int, mult: Multipliers) -> DualMatrix:
        """The blocks of ``M(nu, beta, gamma)`` for target ``k`` (float64, see :meth:`model_error`)."""
        nu, beta, gam = mult.nu, mult.beta, mult.gamma
        lin = nu + beta - gam * self.slope
        m0x = 0.5 * (self.ox[k] - self.What.T @ lin)
        hu = self.half_u
        m0z = 0.5 * self.oz[k] + 0.5 * nu * (2.0 * hu - self.beta0) + 0.5 * (beta - gam) * hu
        corner = (nu + beta) * (self.half_u - self.beta0) + gam * (self.slope * (self.beta0 - self.lower)
                                                                    - self.half_u)
        m00 = float(self.const[k] + np.sum(corner))
        return DualMatrix(Bz=self.What.T * (-0.5 * nu), mz=nu * self.half_u, m0x=m0x, m0z=m0z, m00=m00)

    def model_error(self, k: int, mult: Multipliers) -> float:
        """Upper bound on ``sum_ij |M_ij - fl(M)_ij|`` for :meth:`dual_matrix` (hence on its 2-norm).

        Every entry of ``M`` is a sum of products of the float data, evaluated along chains of at
        most ``depth`` roundings, so its error is at most ``gamma_depth`` times the same sum with
        absolute values (Higham sec. 3.1); that sum is itself computed in floating point, hence
        ``gamma_{2 depth}``, plus ``TINY`` per operation for underflow.
        """
        nu, beta, gam = np.abs(mult.nu), np.abs(mult.beta), np.abs(mult.gamma)
        hu, b0 = self.half_u, self.beta0_abs
        terms = [
            float(nu @ self.wr_abs),  # M_th, both triangles
            float(nu @ hu),  # M_hh
            float(np.sum(self.ox_abs[k])) + float((nu + beta + gam * self.slope) @ self.wr_abs),  # M_0t x2
            float(np.sum(np.abs(self.oz[k]) + nu * (2.0 * hu + b0) + (beta + gam) * hu)),  # M_0h x2
            float(self.const_abs[k]) + float((nu + beta) @ (hu + b0))
            + float(gam @ (self.slope * (b0 + np.abs(self.lower)) + hu)),  # M_00
        ]
        entries = (1 + self.d + self.p) ** 2
        return up(gamma(2 * self.depth) * sum_up(terms) * (1.0 + 4.0 * UNIT_ROUNDOFF)
                  + 4.0 * entries * self.depth * TINY)


#: relative width below which an unstable unit's interval counts as rounding noise (:func:`build_example`)
FLAT = 1e-9


def chord_slopes(L: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Floats ``s >= U / (U - L)`` (exact real quotient) for unstable units (``L < 0 < U``).

    ``fl(U - L)`` and the division each round once (relative ``u``); ``(1 + 2^-50)`` and one step up
    cover both, so ``s (pre - L) >= relu(pre)`` on ``[L, U]`` holds exactly (at ``pre = U`` it needs
    ``s >= U/(U - L)``; at ``L`` and ``0`` it holds for any ``s >= 0``).
    """
    return up(up(U / (U - L)) * (1.0 + 2.0**-50))


def build_example(weights: Weights, C: np.ndarray, R: np.ndarray, L: np.ndarray, U: np.ndarray, y: int,
                  targets: np.ndarray, chord: bool = True) -> ExampleSDP:
    """The :class:`ExampleSDP` of the box ``[C - R, C + R]`` with rigorous bounds ``L <= W x + b <= U``.

    ``C``, ``R`` are float arrays (``R`` may be a scalar), ``y`` the label, ``targets`` the classes ``i``.
    An unstable unit whose interval is at rounding level (``U - L <= FLAT |w| (|C| + R) + |b|``, e.g. a
    pre-activation exactly 0 at eps 0) is left out of the SDP, ``v_h z_h <= max(v_h, 0) U_h`` for
    ``0 <= z_h <= U_h``: its relu equality could only be certified with a huge rounding margin, and
    this costs at most ``|v_h| U_h``.
    """
    W, b = weights.W, weights.b
    m, d = W.shape
    C = np.asarray(C, dtype=np.float64)
    R = np.broadcast_to(np.asarray(R, dtype=np.float64), (d,)).copy()
    targets = np.asarray(targets, dtype=np.intp)
    active = np.flatnonzero(L >= 0)
    scale = np.abs(W) @ (np.abs(C) + R) + np.abs(b)
    crossing = (L < 0) & (U > 0)
    flat = np.flatnonzero(crossing & (U - L <= FLAT * scale))
    unstable = np.flatnonzero(crossing & (U - L > FLAT * scale))
    live = U > 0
    WI, WA = W[unstable], W[active]
    absWI = np.abs(WI)
    v = weights.V[targets] - weights.V[y]  # (K, m): v^ = fl(V_i - V_y)
    cdiff = weights.c[targets] - weights.c[y]
    a = v[:, active] @ WA  # (K, d)
    a_abs = np.abs(v[:, active]) @ np.abs(WA)
    half_u = 0.5 * U[unstable]
    vA, vI, vF = v[:, active], v[:, unstable], v[:, flat]
    const = a @ C + vA @ b[active] + vI @ half_u + np.maximum(vF, 0.0) @ U[flat] + cdiff
    const_abs = (a_abs @ np.abs(C) + np.abs(vA) @ np.abs(b[active]) + np.abs(vI) @ half_u
                 + np.abs(vF) @ U[flat] + np.abs(cdiff))
    obj_err = up(2.0 * UNIT_ROUNDOFF * (np.abs(v[:, live]) @ U[live] + np.abs(cdiff)) * (1.0 + 2.0**-40)
                 + 4.0 * m * TINY)
    slope = chord_slopes(L[unstable], U[unstable]) if chord else np.zeros(len(unstable))
    return ExampleSDP(
        C=C, R=R, L=L, U=U, unstable=unstable,
        What=WI * R[None, :], beta0=WI @ C + b[unstable], beta0_abs=absWI @ np.abs(C) + np.abs(b[unstable]),
        wr_abs=absWI @ R, half_u=half_u, lower=L[unstable], slope=slope, targets=targets,
        ox=a * R[None, :], oz=v[:, unstable] * half_u[None, :], const=const,
        ox_abs=a_abs * R[None, :], const_abs=const_abs, objective_error=np.atleast_1d(obj_err),
        chord=chord, depth=2 * (d + m) + 16,
    )
