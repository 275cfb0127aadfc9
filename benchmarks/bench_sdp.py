"""Benchmark: the fast SDP solver against cvxpy+SCS on the paper's SDP-NN, and certification throughput.

Prints a markdown table. Usage (from the repository root):

    python benchmarks/bench_sdp.py [--weights NET.npz] [--scs-seconds 600] [--data-dir DIR]

Side by side in one run on the same network: the fast solver on all 45 class pairs (total seconds,
max and median certified gap, absolute and relative), cvxpy+SCS (dual form) on one pair with a
wall-clock cap (and where it got: its certified upper bound and primal value), and the per-example
certification throughput of each method on the MNIST test set given the pair table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from certsdp.bounds.certify import certify
from certsdp.data.mnist import load_mnist
from certsdp.network.weights import Weights
from certsdp.sdp.matrix import block_error_bound, coupling_block
from certsdp.sdp.pairs import solve_pairs

DEFAULT_NET = Path(__file__).resolve().parents[2] / "shared" / "data" / "original_nets" / "sdp_nn.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(DEFAULT_NET))
    parser.add_argument("--scs-seconds", type=float, default=600.0, help="cap for the SCS solve (0 skips it)")
    parser.add_argument("--scs-pair", type=int, nargs=2, default=(0, 1))
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    weights = Weights.load(args.weights)
    D = 1 + weights.d + weights.m
    print(f"network {args.weights} (d={weights.d}, m={weights.m}, k={weights.k}, D={D}); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}\n")

    table = solve_pairs(weights, progress=False)
    gaps = np.array([c.gap for c in table.certificates.values()])
    rel = np.array([c.rel_gap for c in table.certificates.values()])
    secs = np.array([c.seconds for c in table.certificates.values()])
    rows = [("fast BM + Newton-CG, all 45 pairs", f"{table.seconds:.1f}",
             f"{gaps.max():.1e} / {np.median(gaps):.1e}", f"{rel.max():.1e} / {np.median(rel):.1e}",
             f"{secs.max():.2f} s slowest pair")]

    if args.scs_seconds > 0:
        from certsdp.sdp.reference import solve_reference

        i, j = args.scs_pair
        B = coupling_block(weights.W, weights.V[i] - weights.V[j])
        t0 = time.perf_counter()
        try:
            ref = solve_reference(B, block_error_bound(weights.W, weights.V, i, j), form="dual", eps=1e-6,
                                  time_limit=args.scs_seconds)
            fast = table.certificates[(min(i, j), max(i, j))]
            rows.append((f"cvxpy + SCS, pair ({i},{j}), cap {args.scs_seconds:.0f} s", f"{ref.seconds:.1f}",
                         f"{ref.gap:.1e}", f"{ref.rel_gap:.1e}",
                         f"upper {ref.upper:.6f} vs fast {fast.upper:.6f} ({ref.iterations} SCS iterations)"))
        except Exception as exc:  # report where it got
            rows.append((f"cvxpy + SCS, pair ({i},{j})", f"{time.perf_counter() - t0:.1f}", "-", "-",
                         f"failed: {type(exc).__name__}: {str(exc)[:80]}"))

    print("| solver | seconds | gap max / median | relative gap max / median | note |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")

    X, y = load_mnist("test", data_dir=args.data_dir)
    print("\n| method (eps = 0.1, 10000 MNIST test images, table given) | seconds | examples / s "
          "| certified error |")
    print("|---|---|---|---|")
    for method in ("sdp", "lp", "spectral", "fro"):
        result = certify(weights, X, y, 0.1, method, table=table, progress=False)
        print(f"| {method} | {result.seconds:.2f} | {X.shape[0] / result.seconds:,.0f} "
              f"| {100 * result.certified_error:.2f}% |")


if __name__ == "__main__":
    main()
