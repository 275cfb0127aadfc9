"""The SDP certificate constants ``S_ij`` for all class pairs of a network (paper eq. 12).

``S_ij = max <M(V_i - V_j, W), P>`` depends only on the weights, so it is computed once per
network; the per-example bound is then ``f^{ij}(x) + eps/4 * S_ij`` for every eps (eq. 11).
Because ``M(-v) = -M(v)`` is conjugate to ``M(v)`` (flip the signs of the input block),
``S_ij = S_ji`` and only the ``k(k-1)/2`` unordered pairs are solved.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp.certificate import SDPCertificate
from certsdp.sdp.fast import FastSDPOptions, solve_block
from certsdp.sdp.matrix import block_error_bound, coupling_block

PairSolver = Callable[[Weights, int, int], SDPCertificate]


@dataclass
class PairTable:
    """Certified ``S_ij`` (upper) and primal values (lower) for the pairs of one network."""

    k: int
    upper: np.ndarray  # (k, k), symmetric, nan on the diagonal
    lower: np.ndarray  # (k, k)
    certificates: dict[tuple[int, int], SDPCertificate] = field(default_factory=dict, repr=False)
    seconds: float = 0.0  # solve time: wall time of solve_pairs, or the stored per-pair total when loaded
    weights_sha256: str = ""

    def pairs_json(self) -> list[dict[str, float | int | str]]:
        """Rows ``{"i", "j", "upper", "lower", "gap", "rel_gap", "seconds", "solver"}`` for i < j."""
        rows: list[dict[str, float | int | str]] = []
        for (i, j), cert in sorted(self.certificates.items()):
            rows.append({"i": i, "j": j, "upper": cert.upper, "lower": cert.lower, "gap": cert.gap,
                         "rel_gap": cert.rel_gap, "seconds": cert.seconds, "solver": cert.solver})
        return rows

    def check_for(self, weights: Weights) -> None:
        """Raise :class:`InputError` unless this table was certified for exactly ``weights``.

        A table of another network (even one of the same shape) bounds *its* ``S_ij``, not these:
        certifying with it would be unsound. The check is by the content hash of the weights.
        """
        if self.k != weights.k or self.upper.shape != (weights.k, weights.k):
            raise InputError(f"SDP pair table is for k = {self.k} classes, the network has k = {weights.k}")
        if self.weights_sha256 != weights.content_hash():
            raise InputError("SDP pair table was computed for other weights (content hash differs); "
                             "solve it for this network (certsdp.sdp.pairs.solve_pairs)")

    @property
    def max_gap(self) -> float:
        return max((c.gap for c in self.certificates.values()), default=float("nan"))

    @property
    def max_rel_gap(self) -> float:
        return max((c.rel_gap for c in self.certificates.values()), default=float("nan"))


def fast_pair_solver(options: FastSDPOptions | None = None) -> PairSolver:
    """The default solver: :func:`certsdp.sdp.fast.solve_block` on ``v = V_i - V_j``."""

    def solve(weights: Weights, i: int, j: int) -> SDPCertificate:
        B = coupling_block(weights.W, weights.V[i] - weights.V[j])
        return solve_block(B, block_error_bound(weights.W, weights.V, i, j), options)

    return solve


def reference_pair_solver(form: str = "dual", solver: str | None = None) -> PairSolver:
    """The cvxpy reference (:func:`certsdp.sdp.reference.solve_reference`); small networks only."""
    from certsdp.sdp.reference import solve_reference

    def solve(weights: Weights, i: int, j: int) -> SDPCertificate:
        B = coupling_block(weights.W, weights.V[i] - weights.V[j])
        return solve_reference(B, block_error_bound(weights.W, weights.V, i, j), form=form, solver=solver)

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
    upper = np.full((k, k), np.nan)
    lower = np.full((k, k), np.nan)
    table = PairTable(k=k, upper=upper, lower=lower, weights_sha256=weights.content_hash())
    t0 = time.perf_counter()
    bar = tqdm(todo, desc="SDP pairs", unit="pair", disable=not progress)
    for i, j in bar:
        cert = solver(weights, i, j)
        table.certificates[(i, j)] = cert
        upper[i, j] = upper[j, i] = cert.upper
        lower[i, j] = lower[j, i] = cert.lower
        bar.set_postfix(S=f"{cert.upper:.4g}", gap=f"{cert.gap:.1e}")
    table.seconds = time.perf_counter() - t0
    return table


def save_pair_table(table: PairTable, path: str) -> None:
    """Store a table with its certified dual vectors (``.npz``), so that it can be re-checked."""
    keys = sorted(table.certificates)
    certs = [table.certificates[key] for key in keys]
    np.savez_compressed(
        path,
        k=table.k,
        pairs=np.array(keys, dtype=np.int64).reshape(-1, 2),
        upper=np.array([c.upper for c in certs]),
        lower=np.array([c.lower for c in certs]),
        duals=np.array([c.dual for c in certs]),
        seconds=np.array([c.seconds for c in certs]),
        solver=np.array([c.solver for c in certs]),
        weights_sha256=table.weights_sha256,
    )


def load_pair_table(path: str, weights: Weights, progress: bool = False) -> PairTable:
    """Load a table saved by :func:`save_pair_table` and **re-certify** every stored dual vector.

    The stored upper bounds are never trusted: each one is recomputed from its dual vector by the
    Cholesky test (about 15 ms a pair), so a stale or edited file cannot yield a wrong certificate.
    A file made for other weights is rejected.
    """
    from certsdp.sdp.certificate import certify_dual

    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"SDP table {path} could not be read: {exc}") from None
    with z:
        try:
            if str(z["weights_sha256"]) != weights.content_hash():
                raise InputError(f"SDP table {path} was computed for other weights")
            k = int(z["k"])
            pairs, duals = np.asarray(z["pairs"]), np.asarray(z["duals"], dtype=np.float64)
            lower, seconds, solver = np.asarray(z["lower"]), np.asarray(z["seconds"]), np.asarray(z["solver"])
        except KeyError as exc:
            raise InputError(f"SDP table {path} lacks the entry {exc}") from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"SDP table {path} is malformed: {exc}") from None
    _check_stored_table(path, weights, k, pairs, duals, [lower, seconds, solver])
    table = PairTable(k=k, upper=np.full((k, k), np.nan), lower=np.full((k, k), np.nan),
                      weights_sha256=weights.content_hash())
    d = weights.d
    for row, (i, j) in enumerate(tqdm(pairs.tolist(), desc="re-check SDP duals", disable=not progress)):
        dual = duals[row]
        B = coupling_block(weights.W, weights.V[i] - weights.V[j])
        c_T = dual[1:1 + d]
        c_U = np.r_[dual[0], dual[1 + d:]]
        margin = block_error_bound(weights.W, weights.V, i, j)
        upper, tau, _ = certify_dual(B, c_T, c_U, margin)
        cert = SDPCertificate(upper=upper, lower=float(lower[row]), dual=dual, shift=tau,
                              margin=margin, solver=str(solver[row]) + "+recheck",
                              seconds=float(seconds[row]))
        table.certificates[(i, j)] = cert
        table.upper[i, j] = table.upper[j, i] = upper
        table.lower[i, j] = table.lower[j, i] = cert.lower
    table.seconds = float(np.sum(seconds))  # the stored solve time, not the (short) re-check
    return table


def _check_stored_table(path: str, weights: Weights, k: int, pairs: np.ndarray, duals: np.ndarray,
                        per_pair: list[np.ndarray]) -> None:
    """InputError unless a stored table's class count, pair list and dual vectors fit ``weights``."""
    if k != weights.k:
        raise InputError(f"SDP table {path} has k = {k} classes, the network has {weights.k}")
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise InputError(f"SDP table {path}: pairs must be an integer (n, 2) array, got {pairs.shape}")
    keys = [tuple(p) for p in pairs.tolist()]
    if any(not (0 <= i < j < k) for i, j in keys) or len(set(keys)) != len(keys):
        raise InputError(f"SDP table {path}: pairs must be distinct (i, j) with 0 <= i < j < {k}")
    D = 1 + weights.d + weights.m
    if duals.shape != (len(keys), D):
        raise InputError(f"SDP table {path}: duals must have shape ({len(keys)}, {D}), got {duals.shape}")
    if any(a.shape != (len(keys),) for a in per_pair):
        raise InputError(f"SDP table {path}: per-pair arrays do not have one entry per pair")


def cached_pair_table(path: str, weights: Weights, solve: bool = False, progress: bool = False) -> PairTable:
    """The pair table of ``weights``, cached in ``path``.

    Loaded (every dual vector re-certified, :func:`load_pair_table`) when ``path`` exists and
    ``solve`` is false; otherwise, or when the file is unreadable or belongs to other weights (a
    network retrained since), solved with the fast solver and saved to ``path``.
    """
    if Path(path).is_file() and not solve:
        try:
            return load_pair_table(path, weights, progress=progress)
        except InputError:  # a stale or damaged cache: solve again below
            pass
    table = solve_pairs(weights, progress=progress)
    save_pair_table(table, path)
    return table
