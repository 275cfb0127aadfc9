"""``certsdp certify``: certified error of a network on MNIST or on given inputs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from certsdp.cli._dataset import add_dataset_arguments, load_dataset
from certsdp.cli._output import check_output, write_json
from certsdp.errors import InputError
from certsdp.numerics.box import check_eps


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "certify",
        help="certify a network against l_inf attacks (sdp, lp, fro, spectral)",
        description="Upper-bound max_{i != y} f^{iy}(x~) over |x~ - x|_inf <= eps for every example "
        "and report the certified error. The box is not clipped to [0, 1] unless --clip is given.",
    )
    p.add_argument("--weights", required=True, help="network: .npz (W, b, V, c) or a .pt checkpoint")
    p.add_argument("--eps", type=float, required=True, help="l_inf radius (>= 0)")
    p.add_argument("--method", choices=("sdp", "lp", "fro", "spectral"), default="sdp")
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
    p.add_argument("--out", help="write the JSON report here")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from certsdp.bounds.certify import certify
    from certsdp.network.torch_model import load_network
    from certsdp.sdp.fast import FastSDPOptions
    from certsdp.sdp.pairs import fast_pair_solver, load_pair_table, save_pair_table, solve_pairs

    check_eps(args.eps)
    if args.out:
        check_output(args.out)
    if args.sdp_table:
        check_output(args.sdp_table, "--sdp-table", suffix=".npz")
    weights = load_network(args.weights)
    X, y = load_dataset(args, weights)
    progress = not args.no_progress
    table = None
    if args.method == "sdp":
        if args.rtol is not None and not 0 < args.rtol < 1:
            raise InputError(f"--rtol must lie in (0, 1), got {args.rtol}")
        if args.sdp_table and Path(args.sdp_table).is_file():
            table = load_pair_table(args.sdp_table, weights, progress=progress)
            if args.rtol is not None or args.sdp_solver != "fast":
                print(f"certsdp certify: --rtol/--sdp-solver ignored: the pairs come from {args.sdp_table} "
                      "(re-certified); delete it to solve again", file=sys.stderr)
        else:
            if args.sdp_solver == "reference":
                from certsdp.sdp.pairs import reference_pair_solver
                from certsdp.sdp.reference import available_solver

                name, note = available_solver()
                if note:
                    print(f"certsdp certify: {note}", file=sys.stderr)
                solver = reference_pair_solver(form=args.reference_form, solver=name)
            else:
                options = FastSDPOptions() if args.rtol is None else FastSDPOptions(rtol=args.rtol)
                solver = fast_pair_solver(options)
            table = solve_pairs(weights, solver, progress=progress)
            if args.sdp_table:
                save_pair_table(table, args.sdp_table)
    clip = (0.0, 1.0) if args.clip else None
    result = certify(weights, X, y, args.eps, args.method, clip=clip, table=table, progress=progress)
    report = result.to_json()
    report["weights"] = str(args.weights)
    report["weights_sha256"] = weights.content_hash()
    if args.out:
        write_json(args.out, report)
    line = (f"{args.method} eps={result.eps:g} n={result.n} clean_error={100 * result.clean_error:.2f}% "
            f"certified_error={100 * result.certified_error:.2f}% ({result.seconds:.1f} s)")
    if table is not None:
        line += (f"; {len(table.certificates)} SDP pairs, max gap {table.max_gap:.2e} "
                 f"(relative {table.max_rel_gap:.1e})")
    print(line, file=sys.stdout)
    return 0
