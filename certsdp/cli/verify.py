"""``certsdp verify``: decide every point (robust / not_robust / misclassified / unknown) with evidence.

Writes ``--out DIR`` (:mod:`certsdp.verify.store`): ``verdicts.csv``, ``witnesses.npz``,
``summary.json``; a re-run with the same arguments resumes. The work runs on a local Dask cluster of
``--workers`` processes, on an existing one (``--scheduler``), or in this process (``--workers 0``
or ``1``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from certsdp.cli._dataset import add_dataset_arguments, load_dataset
from certsdp.errors import InputError
from certsdp.network.loading import load_network
from certsdp.numerics.box import check_eps
from certsdp.verify import verify
from certsdp.verify.api import default_bounds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="decide every point: robust, not_robust (with a witness), misclassified or unknown",
        description="Complete verification of f(x) = V relu(W x + b) + c on the box |x~ - x|_inf <= eps "
        "(with --clip intersected with [0, 1]^d): attacks, the registered certificates, then a MILP (HiGHS) "
        "whose robust answers are confirmed by a rigorous float64 branch and bound. Resumable.",
    )
    p.add_argument("--weights", required=True, help="network: .npz (W, b, V, c) or a .pt checkpoint")
    p.add_argument("--eps", type=float, required=True, help="l_inf radius (>= 0)")
    p.add_argument("--clip", action="store_true", help="intersect the box with [0, 1]^d")
    add_dataset_arguments(p)
    p.add_argument("--indices", help="A:B: only the points A .. B-1 of the data set")
    p.add_argument("--out", required=True, help="output folder (created; an existing run there is resumed)")
    p.add_argument("--time-limit", type=float, default=60.0,
                   help="seconds per point for the MILP and branch and bound (default 60)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of a local Dask cluster (default: the CPUs; 0 or 1: in this "
                   "process)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (e.g. tcp://host:8786)")
    p.add_argument("--bounds", help="comma-separated certificates to try (default all but best, which "
                   f"combines the others: {','.join(default_bounds())})")
    p.add_argument("--sdp-table", help="sdp: .npz cache of the pair table; re-checked when loaded, written "
                   "when absent")
    p.add_argument("--attack-steps", type=int, default=100, help="PGD steps (default 100)")
    p.add_argument("--attack-restarts", type=int, default=2, help="PGD restarts (default 2; 0: no attacks)")
    p.add_argument("--seed", type=int, default=0, help="seed of the attacks' random starts")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def parse_indices(text: str) -> tuple[int, int]:
    """``"A:B"`` with integers ``0 <= A < B``."""
    try:
        start, stop = (int(part) for part in text.split(":"))
    except ValueError:
        raise InputError(f"--indices must be A:B with integers A < B, got {text!r}") from None
    if start < 0 or stop <= start:
        raise InputError(f"--indices must be A:B with 0 <= A < B, got {text!r}")
    return start, stop


def select(args: argparse.Namespace, weights: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indices, X, y)``: the data set of ``--inputs``/MNIST, cut by ``--limit`` or ``--indices``."""
    if args.indices is None:
        X, y = load_dataset(args, weights)
        return np.arange(len(y)), X, y
    if args.limit is not None:
        raise InputError("give --limit or --indices, not both")
    start, stop = parse_indices(args.indices)
    X, y = load_dataset(argparse.Namespace(**{**vars(args), "limit": stop}), weights)
    if start >= len(y):
        raise InputError(f"--indices {args.indices}: the data set has {len(y)} points")
    stop = min(stop, len(y))
    return np.arange(start, stop), X[start:stop], y[start:stop]


def _workers(value: int | None) -> int:
    if value is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if value < 0:
        raise InputError(f"--workers must be >= 0, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    check_eps(args.eps)
    workers = _workers(args.workers)
    bounds = None
    if args.bounds is not None:
        bounds = tuple(name.strip() for name in args.bounds.split(",") if name.strip())
    weights = load_network(args.weights)
    indices, X, y = select(args, weights)
    summary = verify(weights, X, y, args.eps, args.out, clip=(0.0, 1.0) if args.clip else None,
                     indices=indices, time_limit=args.time_limit, workers=workers, scheduler=args.scheduler,
                     bounds=bounds, sdp_table=args.sdp_table, attack_steps=args.attack_steps,
                     attack_restarts=args.attack_restarts, seed=args.seed, progress=not args.no_progress)
    counts = " ".join(f"{verdict}={count}" for verdict, count in summary["counts"].items())
    print(f"verify eps={args.eps:g} box={summary['box']} n={summary['n']} {counts} "
          f"({summary['seconds']:.1f} s) -> {args.out}", file=sys.stdout)
    return 0
