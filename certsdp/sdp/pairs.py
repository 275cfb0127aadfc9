"""The SDP certificate constants ``S_ij`` for all class pairs of a network (paper eq. 12).

``S_ij = max <M(V_i - V_j, W), P>`` depends only on the weights, so it is computed once per
network; the per-example bound is then ``f^{ij}(x) + eps/4 * S_ij`` for every eps (eq. 11).
Because ``M(-v) = -M(v)`` is conjugate to ``M(v)`` (flip the signs of the input block),
``S_ij = S_ji`` and only the ``k(k-1)/2`` unordered pairs are solved.

Tables on disk (save, load and re-certify, and the one policy for where a table comes from) live in
:mod:`certsdp.sdp.table`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp.certificate import SDPCertificate
from certsdp.sdp.fast import FastSDPOptions, solve_block
from certsdp.sdp.matrix import block_error_bound, coupling_block
from certsdp.sdp.reference import solve_reference

PairSolver = Callable[[Weights, int, int], SDPCertificate]


@dataclass
class PairTable:
    """Certified ``S_ij`` (upper) and primal values (lower, nan where unknown) for one network's pairs."""

    k: int
    upper: np.ndarray  # (k, k), symmetric, nan on the diagonal
    lower: np.ndarray  # (k, k), nan on the diagonal and where no primal point is known
    certificates: dict[tuple[int, int], SDPCertificate] = field(default_factory=dict, repr=False)
    seconds: float = 0.0  # solve time: wall time of solve_pairs, or the stored per-pair total when loaded
    weights_sha256: str = ""

    @classmethod
    def empty(cls, k: int, weights_sha256: str) -> PairTable:
        """A table with no pair yet (``upper`` and ``lower`` all nan)."""
        return cls(k=k, upper=np.full((k, k), np.nan), lower=np.full((k, k), np.nan),
                   weights_sha256=weights_sha256)

    def add(self, i: int, j: int, cert: SDPCertificate) -> None:
        """Record the certificate of the pair ``i < j`` (both triangles of ``upper`` and ``lower``)."""
        self.certificates[(i, j)] = cert
        self.upper[i, j] = self.upper[j, i] = cert.upper
        self.lower[i, j] = self.lower[j, i] = np.nan if cert.lower is None else cert.lower

    def pairs_json(self) -> list[dict[str, Any]]:
        """Rows ``{"i", "j", "upper", "lower", "gap", "rel_gap", "seconds", "solver"}`` for i < j.

        ``lower``, ``gap`` and ``rel_gap`` are ``None`` (JSON null) for a pair without a primal point.
        """
        return [{"i": i, "j": j, "upper": cert.upper, "lower": cert.lower, "gap": cert.gap,
                 "rel_gap": cert.rel_gap, "seconds": cert.seconds, "solver": cert.solver}
                for (i, j), cert in sorted(self.certificates.items())]

    def check_for(self, weights: Weights) -> None:
        """Raise :class:`InputError` unless this table was certified for exactly ``weights``.

        A table of another network (even one of the same shape) bounds *its* ``S_ij``, not these:
        certifying with it would be unsound. The check is by the content hash of the weights.
        """
        if self.k != weights.k or self.upper.shape != (weights.k, weights.k):
            raise InputError(f"SDP pair table is for k = {self.k} classes, the network has k = {weights.k}")
        if self.weights_sha256 != weights.content_hash():
            raise InputError("SDP pair table was computed for other weights (content hash differs); "
                             "solve it for this network (certsdp.sdp.solve_pairs)")

    @property
    def max_gap(self) -> float | None:
        """Largest ``upper - lower`` over the pairs; None when a pair has no primal value (or no pair)."""
        return _max_or_none([c.gap for c in self.certificates.values()])

    @property
    def max_rel_gap(self) -> float | None:
        """Largest relative gap over the pairs; None as for :attr:`max_gap`."""
        return _max_or_none([c.rel_gap for c in self.certificates.values()])


def _max_or_none(values: list[float | None]) -> float | None:
    if not values or any(value is None for value in values):
        return None
    return max(values)  # type: ignore[type-var]


def pair_block(weights: Weights, i: int, j: int) -> tuple[np.ndarray, float]:
    """``(B, error bound)`` of the pair ``(i, j)``, or :class:`InputError` if it leaves the float64 range."""
    with np.errstate(over="ignore", invalid="ignore"):
        B = coupling_block(weights.W, weights.V[i] - weights.V[j])
        error = block_error_bound(weights.W, weights.V, i, j)
    if not (np.all(np.isfinite(B)) and np.isfinite(error)):
        top_W, top_V = np.max(np.abs(weights.W)), np.max(np.abs(weights.V))
        raise InputError(f"SDP pair ({i}, {j}): W^T diag(V_{i} - V_{j}) exceeds the float64 range "
                         f"(|W| up to {top_W:.3g}, |V| up to {top_V:.3g})")
    return B, error


def fast_pair_solver(options: FastSDPOptions | None = None) -> PairSolver:
    """The default solver: :func:`certsdp.sdp.fast.solve_block` on ``v = V_i - V_j``."""

    def solve(weights: Weights, i: int, j: int) -> SDPCertificate:
        return solve_block(*pair_block(weights, i, j), options)

    return solve


def reference_pair_solver(form: str = "dual", solver: str | None = None) -> PairSolver:
    """The cvxpy reference (:func:`certsdp.sdp.reference.solve_reference`); small networks only."""

    def solve(weights: Weights, i: int, j: int) -> SDPCertificate:
        return solve_reference(*pair_block(weights, i, j), form=form, solver=solver)

    return solve


def solve_pairs(weights: Weights, solver: PairSolver | None = None,
                pairs: list[tuple[int, int]] | None = None, progress: bool = True) -> PairTable:
    """Certify ``S_ij`` for ``pairs`` (default: all ``i < j``), with a progress bar over pairs."""
    solver = solver or fast_pair_solver()
    k = weights.k
    if pairs is None:
        pairs = list(itertools.combinations(range(k), 2))
    todo = sorted({(min(i, j), max(i, j)) for i, j in pairs})
    for i, j in todo:
        if i == j or not (0 <= i < k and 0 <= j < k):
            raise InputError(f"invalid class pair ({i}, {j}) for k = {k}")
    table = PairTable.empty(k, weights.content_hash())
    t0 = time.perf_counter()
    bar = tqdm(todo, desc="SDP pairs", unit="pair", disable=not progress)
    for i, j in bar:
        cert = solver(weights, i, j)
        table.add(i, j, cert)
        gap = "unknown" if cert.gap is None else f"{cert.gap:.1e}"
        bar.set_postfix(S=f"{cert.upper:.4g}", gap=gap)
    table.seconds = time.perf_counter() - t0
    return table
