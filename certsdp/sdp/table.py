"""SDP pair tables on disk, and the one policy for where a table comes from (:func:`acquire_pair_table`).

A table file (``.npz``) is never trusted. It stores, per pair ``i < j``, the certified dual vector
``c'`` and the primal point ``X`` (``P = X X^T``); loading re-certifies every upper bound from its
dual vector (eq. 14, :func:`certsdp.sdp.certificate.certify_dual`) and recomputes every primal value
``<M, X X^T>`` from its primal point after checking ``diag(X X^T) <= 1``, both for the weights at
hand. So a stale, edited or foreign file can only yield true (if loose) numbers, or an error.

Entries: ``format`` (2), ``k``, ``weights_sha256``, ``pairs`` (n x 2, ``i < j``), ``duals``
(n x D, in ``M``'s order ``(1, t, s)``), ``primal`` (n x D x r, each factor zero-padded to r
columns), ``primal_rank`` (n, 0 when unknown), ``seconds`` and ``solver`` (n, the stored solve
time and solver name, reported as they are). Format 1 tables (no ``format`` entry) have no primal
points: they load with every upper bound re-certified and every primal value unknown; their
stored ``lower`` values are never read.
"""

from __future__ import annotations

import pickle
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from certsdp.atomic import check_writable, write_with
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp.certificate import SDPCertificate, certify_dual
from certsdp.sdp.matrix import Layout, primal_value
from certsdp.sdp.pairs import PairSolver, PairTable, fast_pair_solver, pair_block, solve_pairs

TABLE_FORMAT = 2
#: a stored primal point is feasible when every row of X has squared norm <= 1 + PRIMAL_TOLERANCE
#: (float64 rounding of unit rows is ~r u; the value it gives only reports the gap)
PRIMAL_TOLERANCE = 1e-12
#: appended to the solver name of a certificate re-certified from a file
RECHECK = "+recheck"
REQUIRED = ("k", "weights_sha256", "pairs", "duals", "seconds", "solver")
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, pickle.UnpicklingError, OSError, EOFError, ValueError,
                TypeError, OverflowError)


def acquire_pair_table(weights: Weights, path: str | Path | None = None, *, solver: PairSolver | None = None,
                       solve_missing: bool = True, progress: bool = False) -> PairTable:
    """The pair table of ``weights``: solved, or loaded from ``path`` and re-certified.

    * ``path`` None: solved with ``solver`` (default: the fast solver).
    * ``path`` exists: loaded by :func:`load_pair_table` (``solver`` is not used). A table of other
      weights or a malformed file is refused with a one-line :class:`InputError`, never solved again
      silently: delete the file to solve anew.
    * ``path`` missing: solved and saved there atomically when ``solve_missing``, else
      :class:`InputError` naming the command that makes it.
    """
    if path is None:
        return solve_pairs(weights, solver, progress=progress)
    target = Path(path)
    if target.is_dir():
        raise InputError(f"SDP table {target} is a folder; give a .npz file")
    if target.exists():
        return load_pair_table(target, weights, progress=progress)
    if not solve_missing:
        raise InputError(f"SDP table {target} does not exist; make it with "
                         f"`certsdp certify --weights NETWORK --eps 0.1 --sdp-table {target}`")
    check_writable(target, "SDP table")  # before the solve, not after it
    table = solve_pairs(weights, solver, progress=progress)
    save_pair_table(table, target)
    return table


def save_pair_table(table: PairTable, path: str | Path) -> None:
    """Store ``table`` with its dual vectors and primal points, atomically (temporary file + rename)."""
    keys = sorted(table.certificates)
    certs = [table.certificates[key] for key in keys]
    D = certs[0].dual.size if certs else 0
    rank = max([c.primal.shape[1] for c in certs if c.primal is not None], default=1)
    primal = np.zeros((len(certs), D, rank))
    for row, cert in enumerate(certs):
        if cert.primal is not None:
            primal[row, :, : cert.primal.shape[1]] = cert.primal
    arrays = {
        "format": np.array(TABLE_FORMAT),
        "k": np.array(table.k),
        "weights_sha256": np.array(table.weights_sha256),
        "pairs": np.array(keys, dtype=np.int64).reshape(-1, 2),
        "duals": np.array([c.dual for c in certs]).reshape(len(certs), D),
        "primal": primal,
        "primal_rank": np.array([0 if c.primal is None else c.primal.shape[1] for c in certs],
                                dtype=np.int64),
        "seconds": np.array([c.seconds for c in certs], dtype=np.float64),
        "solver": np.array([c.solver.removesuffix(RECHECK) for c in certs], dtype=str),
    }
    write_with(path, lambda handle: np.savez_compressed(handle, **arrays), "SDP table")


def load_pair_table(path: str | Path, weights: Weights, progress: bool = False) -> PairTable:
    """Load a table saved by :func:`save_pair_table` for ``weights``: re-certify, recompute, or refuse.

    Every upper bound is recomputed from its dual vector by the Cholesky test (one ``m x m``
    Cholesky a pair) and every primal value from its primal point, so the stored numbers are never
    trusted. A file of other weights, or one that is not an intact ``.npz`` table, raises a one-line
    :class:`InputError`.
    """
    stored = _read(path)
    sha = str(stored["weights_sha256"])
    if sha != weights.content_hash():
        raise InputError(f"SDP table {path} was computed for other weights (sha256 {sha[:16]}, this "
                         f"network's {weights.content_hash()[:16]}); delete it or pass another --sdp-table")
    k, pairs, duals, primal, rank, seconds, solver = _entries(path, stored, weights)
    table = PairTable.empty(k, weights.content_hash())
    for row, (i, j) in enumerate(tqdm(pairs.tolist(), desc="re-check SDP table", disable=not progress)):
        point = primal[row, :, : rank[row]] if rank[row] else None
        cert = _recertify(path, weights, i, j, duals[row], point, float(seconds[row]), str(solver[row]))
        table.add(i, j, cert)
    table.seconds = float(np.sum(seconds))  # the stored solve time, not the (short) re-check
    return table


def upgrade_pair_table(path: str | Path, weights: Weights, *, solver: PairSolver | None = None,
                       progress: bool = False) -> PairTable:
    """Give a table stored without primal points (format 1) its primal points, keeping its dual vectors.

    Every upper bound stays the one certified from the stored dual vector (so certified results do not
    move); each pair without a primal point is solved again (``solver``, default the fast one) for its
    primal point only. The file is rewritten atomically in the current format.
    """
    table = load_pair_table(path, weights, progress=progress)
    solve = solver or fast_pair_solver()
    for (i, j), cert in tqdm(sorted(table.certificates.items()), desc="primal points", disable=not progress):
        if cert.primal is None:
            point = solve(weights, i, j)
            table.add(i, j, replace(cert, lower=point.lower, primal=point.primal))
    save_pair_table(table, path)
    return table


def _read(path: str | Path) -> dict[str, np.ndarray]:
    """Every entry of the ``.npz`` file at ``path`` (no pickles), or a one-line :class:`InputError`."""
    if not Path(path).is_file():
        raise InputError(f"SDP table {path} does not exist or is not a file")
    try:
        if not zipfile.is_zipfile(path):
            raise InputError(f"SDP table {path} is not an .npz archive")
        with np.load(path, allow_pickle=False) as z:
            stored = {key: np.asarray(z[key]) for key in z.files}
    except InputError:
        raise
    except _READ_ERRORS as exc:
        raise _malformed(path, f"{_first_line(exc)}") from None
    missing = [key for key in REQUIRED if key not in stored]
    if missing:
        raise _malformed(path, f"it lacks the entry '{missing[0]}'")
    return stored


def _entries(path: str | Path, stored: dict[str, np.ndarray], weights: Weights) -> tuple:
    """``(k, pairs, duals, primal, primal_rank, seconds, solver)`` checked against ``weights``."""
    if "format" in stored and stored["format"].shape == () and int(stored["format"]) != TABLE_FORMAT:
        raise InputError(f"SDP table {path} has format {int(stored['format'])}; this certsdp reads format "
                         f"{TABLE_FORMAT} (and tables without a format entry)")
    try:
        k = int(stored["k"])
        pairs = np.asarray(stored["pairs"])
        duals = np.asarray(stored["duals"], dtype=np.float64)
        seconds = np.asarray(stored["seconds"], dtype=np.float64)
        solver = np.asarray(stored["solver"])
        n = duals.shape[0] if duals.ndim else 0
        if "primal" in stored or "primal_rank" in stored:
            primal = np.asarray(stored["primal"], dtype=np.float64)
            rank = np.asarray(stored["primal_rank"])
        else:  # format 1: no primal points
            primal, rank = np.zeros((n, 1 + weights.d + weights.m, 1)), np.zeros(n, dtype=np.int64)
    except KeyError as exc:
        raise _malformed(path, f"it lacks the entry {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise _malformed(path, f"{_first_line(exc)}") from None
    _check_shapes(path, weights, k, pairs, duals, primal, rank, [seconds, solver])
    return k, pairs, duals, primal, rank, seconds, solver


def _check_shapes(path: str | Path, weights: Weights, k: int, pairs: np.ndarray, duals: np.ndarray,
                  primal: np.ndarray, rank: np.ndarray, per_pair: list[np.ndarray]) -> None:
    """InputError unless a stored table's class count, pairs, duals and primal points fit ``weights``."""
    if k != weights.k:
        raise InputError(f"SDP table {path} has k = {k} classes, the network has {weights.k}")
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise _malformed(path, f"pairs must be an integer (n, 2) array, got {pairs.shape}")
    keys = [tuple(p) for p in pairs.tolist()]
    if any(not (0 <= i < j < k) for i, j in keys) or len(set(keys)) != len(keys):
        raise _malformed(path, f"pairs must be distinct (i, j) with 0 <= i < j < {k}")
    D = 1 + weights.d + weights.m
    if duals.shape != (len(keys), D):
        raise _malformed(path, f"duals must have shape ({len(keys)}, {D}), "
                         f"got {duals.shape}")
    if primal.ndim != 3 or primal.shape[:2] != (len(keys), D) or not np.all(np.isfinite(primal)):
        raise _malformed(path, f"primal must be a finite ({len(keys)}, {D}, r) array")
    if (rank.shape != (len(keys),) or not np.issubdtype(rank.dtype, np.integer)
            or np.any(rank < 0) or np.any(rank > primal.shape[2])):
        raise _malformed(path, f"primal_rank must hold one rank in "
                         f"[0, {primal.shape[2]}] per pair")
    if any(a.shape != (len(keys),) for a in per_pair):
        raise _malformed(path, "per-pair arrays do not have one entry per pair")


def _recertify(path: str | Path, weights: Weights, i: int, j: int, dual: np.ndarray,
               primal: np.ndarray | None, seconds: float, solver: str) -> SDPCertificate:
    """The certificate of pair ``(i, j)`` recomputed from a stored dual vector and primal point."""
    B, margin = pair_block(weights, i, j)
    layout = Layout(weights.d, weights.m)
    try:
        upper, tau, _ = certify_dual(B, *layout.split(dual), margin)
    except (InputError, FloatingPointError) as exc:
        raise _malformed(path, f"pair ({i}, {j}): {_first_line(exc)}") from None
    lower = None
    if primal is not None:
        diagonal = np.einsum("ij,ij->i", primal, primal)
        if np.max(diagonal) > 1.0 + PRIMAL_TOLERANCE:
            raise _malformed(path, f"pair ({i}, {j}): the primal point is not "
                             f"feasible (diag(X X^T) up to {np.max(diagonal):.17g} > 1)")
        lower = primal_value(B, *layout.split(primal))
    return SDPCertificate(upper=upper, lower=lower, dual=dual, shift=tau, margin=margin,
                          solver=solver + RECHECK, seconds=seconds, primal=primal)


def _malformed(path: str | Path, reason: str) -> InputError:
    return InputError(f"SDP table {path} is malformed: {reason}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
