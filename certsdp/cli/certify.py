"""``certsdp certify``: certified error of a network on MNIST or on given inputs.

The ``--method`` choices are the registered bounds (:data:`certsdp.bounds.BOUNDS`), each with its
one-line description in ``--help``; the ``--sdp-*`` and ``--rtol`` flags concern the SDP pair table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from certsdp.bounds import BOUNDS, CertifyResult, certify
from certsdp.cli._dataset import add_dataset_arguments, load_dataset
from certsdp.cli._output import check_output, write_json
from certsdp.errors import InputError
from certsdp.network.loading import load_network
from certsdp.network.weights import Weights
from certsdp.numerics.box import check_eps
from certsdp.sdp import FastSDPOptions, PairTable, acquire_pair_table, fast_pair_solver, reference_pair_solver
from certsdp.sdp.pairs import PairSolver
from certsdp.sdp.reference import available_solver

DEFAULT_METHOD = "sdp"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "certify",
        help=f"certify a network against l_inf attacks ({', '.join(BOUNDS)})",
        description="Upper-bound max_{i != y} f^{iy}(x~) over |x~ - x|_inf <= eps for every example "
        "and report the certified error. The box is not clipped to [0, 1] unless --clip is given.",
    )
    p.add_argument("--weights", required=True, help="network: .npz (W, b, V, c) or a .pt checkpoint")
    p.add_argument("--eps", type=float, required=True, help="l_inf radius (>= 0)")
    p.add_argument("--method", choices=tuple(BOUNDS), default=DEFAULT_METHOD, help=_method_help())
    add_dataset_arguments(p)
    p.add_argument("--clip", action="store_true", help="intersect the box with [0, 1]^d")
    p.add_argument("--rtol", type=float, default=None,
                   help="sdp: stop each pair when the certified relative gap is below this (default 2e-6)")
    p.add_argument("--sdp-solver", choices=("fast", "reference"), default="fast",
                   help="sdp: the fast solver (default) or the cvxpy reference (SCS, or MOSEK when licensed; "
                   "small networks only)")
    p.add_argument("--reference-form", choices=("dual", "primal"), default="dual",
                   help="sdp with --sdp-solver reference: which form of the SDP cvxpy solves")
    p.add_argument("--sdp-table", help="sdp: .npz cache of the pair table; re-checked when loaded, "
                   "written when absent")
    p.add_argument("--bound-option", action="append", default=[], metavar="NAME=VALUE",
                   help="an option of the chosen bound, repeatable (e.g. alpha-crown: iters=100, lr=0.1; "
                   "lp-triangle: time_limit=5); numbers are read as int or float")
    p.add_argument("--out", help="write the JSON report here")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def _method_help() -> str:
    """``--method``'s help: every registered bound with its description."""
    methods = "; ".join(f"{name}: {cls.description}" for name, cls in BOUNDS.items())
    return f"the bound (default {DEFAULT_METHOD}). {methods}"


def run(args: argparse.Namespace) -> int:
    check_eps(args.eps)
    if args.rtol is not None and not 0 < args.rtol < 1:
        raise InputError(f"--rtol must lie in (0, 1), got {args.rtol}")
    if args.out:
        check_output(args.out)
    if args.sdp_table:
        check_output(args.sdp_table, "--sdp-table", suffix=".npz")
    weights = load_network(args.weights)
    X, y = load_dataset(args, weights)
    progress = not args.no_progress
    table = _pair_table(args, weights, progress) if args.method == "sdp" else None
    clip = (0.0, 1.0) if args.clip else None
    options = _bound_options(args.bound_option)
    if args.method == "sdp":
        options["table"] = table
    result = certify(weights, X, y, args.eps, args.method, clip=clip, progress=progress, **options)
    report = result.to_json()
    report["weights"] = str(args.weights)
    report["weights_sha256"] = weights.content_hash()
    if args.out:
        write_json(args.out, report)
    print(_summary(args.method, result), file=sys.stdout)
    return 0


def _bound_options(items: list[str]) -> dict[str, object]:
    """``["iters=100", "lr=0.1"]`` -> ``{"iters": 100, "lr": 0.1}`` (the bound checks names and values)."""
    options: dict[str, object] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise InputError(f"--bound-option must be NAME=VALUE, got {item!r}")
        name = name.replace("-", "_")
        if name in ("table", "progress"):
            raise InputError(f"--bound-option {name} is not a bound option (use --sdp-table / --no-progress)")
        options[name] = _number(text)
    return options


def _number(text: str) -> object:
    """``text`` as an int, else a float, else the string itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _pair_table(args: argparse.Namespace, weights: Weights, progress: bool) -> PairTable:
    """The SDP pair table (:func:`certsdp.sdp.acquire_pair_table`): ``--sdp-table`` loaded and every dual
    re-certified (refused if it belongs to other weights), else solved, and saved when ``--sdp-table``
    names a missing file."""
    solver_flags = args.rtol is not None or args.sdp_solver != "fast"
    if args.sdp_table and Path(args.sdp_table).is_file() and solver_flags:
        print(f"certsdp certify: --rtol/--sdp-solver ignored: the pairs come from {args.sdp_table} "
              "(re-certified); delete it to solve again", file=sys.stderr)
    return acquire_pair_table(weights, args.sdp_table or None, solver=_pair_solver(args), progress=progress)


def _pair_solver(args: argparse.Namespace) -> PairSolver:
    """The pair solver of ``--sdp-solver`` (with ``--rtol`` / ``--reference-form``)."""
    if args.sdp_solver == "reference":
        name, note = available_solver()
        if note:
            print(f"certsdp certify: {note}", file=sys.stderr)
        return reference_pair_solver(form=args.reference_form, solver=name)
    return fast_pair_solver(FastSDPOptions() if args.rtol is None else FastSDPOptions(rtol=args.rtol))


def _summary(method: str, result: CertifyResult) -> str:
    """The one-line summary printed on stdout."""
    line = (f"{method} eps={result.eps:g} n={result.n} clean_error={100 * result.clean_error:.2f}% "
            f"certified_error={100 * result.certified_error:.2f}% ({result.seconds:.1f} s)")
    table = result.table
    if table is not None:
        gap = "unknown (table stored without primal points)" if table.max_gap is None else (
            f"{table.max_gap:.2e} (relative {table.max_rel_gap:.1e})")
        line += f"; {len(table.certificates)} SDP pairs, max gap {gap}"
    return line
