"""``verify``: the public entry point, where every argument is checked once."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from certsdp.bounds import BOUNDS
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import check_clip, check_eps, check_inside_clip
from certsdp.sdp.pairs import PairTable
from certsdp.sdp.table import acquire_pair_table
from certsdp.validation import check_int
from certsdp.verify.pipeline import PointResult, Verifier, VerifyConfig, prepare_bounds
from certsdp.verify.runner import open_store, run_verification


def check_time_limit(value: Any) -> float:
    """A per-point time limit in seconds: a finite number > 0."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InputError(f"time limit must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"time limit must be a finite number of seconds > 0, got {value!r}")
    return seconds


#: left out of the default bounds: ``best`` only combines the others, which verify already runs one by
#: one on the targets still open (it would repeat ``sdp-cert`` on the targets that one left open)
COMBINATIONS = frozenset({"best"})


def default_bounds() -> tuple[str, ...]:
    """Every registered bound but the combinations (:data:`COMBINATIONS`), in registry order."""
    return tuple(name for name in BOUNDS if name not in COMBINATIONS)


def check_bounds(names: Any) -> tuple[str, ...]:
    """Registered bound names (None: :func:`default_bounds`)."""
    if names is None:
        return default_bounds()
    names = tuple(names)
    unknown = [name for name in names if name not in BOUNDS]
    if unknown:
        raise InputError(f"unknown bound {unknown[0]!r}; choose from {', '.join(BOUNDS)}")
    return tuple(dict.fromkeys(names))


def check_indices(indices: Any, n: int) -> np.ndarray:
    """Dataset indices of the ``n`` points: distinct integers >= 0 (default ``0 .. n - 1``)."""
    if indices is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(indices)
    if arr.shape != (n,) or (n and arr.dtype.kind not in "iu"):
        raise InputError(f"indices must be {n} integers, got shape {arr.shape} and dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if n and (arr.min() < 0 or np.unique(arr).size != n):
        raise InputError("indices must be distinct integers >= 0")
    return arr


def verify(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float, out: str | Path, *,
           clip: tuple[float, float] | None = None, indices: Any = None, time_limit: float = 60.0,
           workers: int = 1, scheduler: str | None = None, bounds: Any = None,
           table: PairTable | None = None, sdp_table: str | Path | None = None, attack_steps: int = 100,
           attack_restarts: int = 2, seed: int = 0, progress: bool = False,
           on_result: Callable[[PointResult], None] | None = None) -> dict[str, Any]:
    """Decide every point of ``(X, y)``: robust, not_robust, misclassified or unknown; resumable.

    Writes ``out/verdicts.csv``, ``out/witnesses.npz``, ``out/summary.json`` (see
    :mod:`certsdp.verify.store`) and returns the summary. ``clip`` intersects the box with
    ``[clip[0], clip[1]]^d``; ``indices`` name the points in the verdicts (default ``0 .. n - 1``);
    ``time_limit`` (seconds) bounds each point's exact stage; ``workers`` > 1 runs a local Dask
    cluster, ``scheduler`` uses an existing one. ``bounds`` are the registered certificates to try
    (default: all but ``best``, :func:`default_bounds`); the SDP bound takes ``table``, or the table
    at ``sdp_table`` (loaded and re-certified, or solved and saved there), or solves one;
    ``attack_restarts = 0`` skips the attacks.
    ``on_result`` is called with every new :class:`~certsdp.verify.pipeline.PointResult` (per-stage
    times included) once it is stored.
    Raises :class:`InputError` (one line) for any bad argument.
    """
    X = weights.check_inputs(X)
    y = weights.check_labels(y, X.shape[0])
    if X.shape[0] == 0:
        raise InputError("inputs: no points to verify")
    config = VerifyConfig(eps=check_eps(eps), clip=check_clip(clip), time_limit=check_time_limit(time_limit),
                          attack_steps=check_int("attack steps", attack_steps, minimum=1),
                          attack_restarts=check_int("attack restarts", attack_restarts, minimum=0),
                          seed=check_int("seed", seed, minimum=0), bounds=check_bounds(bounds))
    check_inside_clip(X, config.clip)
    indices = check_indices(indices, X.shape[0])
    workers = check_int("workers", workers, minimum=0)
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise InputError(f"scheduler must be an address such as tcp://host:8786, got {scheduler!r}")
    _check_scores(weights, X)
    store = open_store(weights, config, indices, X, y, out)
    try:
        if "sdp" in config.bounds and table is None:
            table = acquire_pair_table(weights, sdp_table, progress=progress and sys.stderr.isatty())
        verifier = Verifier(weights, config, prepare_bounds(weights, config.bounds, table))
        return run_verification(verifier, store, indices, X, y, workers=workers, scheduler=scheduler,
                                progress=progress, on_result=on_result)
    finally:
        store.close()


def _check_scores(weights: Weights, X: np.ndarray) -> None:
    """InputError if the network's float64 scores overflow at some input (no meaningful verdict)."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.all(np.isfinite(weights.scores(X)))
    if not finite:
        raise InputError("the network's scores overflow float64 on some inputs (weights too large)")
