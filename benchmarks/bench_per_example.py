"""Benchmark: the per-example bounds lp, crown, alpha-crown and lp-triangle on the paper's SDP-NN.

Prints a markdown table. Usage (from the repository root; MNIST from ``$CERTSDP_DATA``):

    python benchmarks/bench_per_example.py [--limit 100] [--triangle-limit 50] [--eps 0.1]
        [--methods lp crown alpha-crown lp-triangle] [--weights NET.npz] [--data-dir DIR]

For each method and each box (unclipped, the paper's certificates; clipped to [0, 1], the
per-example literature's convention), on the first ``--limit`` MNIST test images (lp-triangle on the
first ``--triangle-limit``): seconds per point and per (point, target) when the points are bounded one
at a time (median and 90th percentile), seconds per point when all are bounded in one call
(``batch``), and the certified error. A second table gives each method's gap to lp-triangle (the
exact triangle LP, made rigorous) on the images both were run on: median, 90th percentile and max of
``U_method - U_lp-triangle`` over the (point, target) pairs.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from certsdp.bounds import BOUNDS, get_bound
from certsdp.data.mnist import load_mnist
from certsdp.network.weights import Weights

DEFAULT_NET = Path(__file__).resolve().parents[2] / "shared" / "data" / "original_nets" / "sdp_nn.npz"
METHODS = ("lp", "crown", "alpha-crown", "lp-triangle")
BOXES = (("unclipped", None), ("clipped", (0.0, 1.0)))


def _run(name: str, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float, clip) -> dict:
    """Bounds of every point, one point per call (timed each) and all in one call (timed once)."""
    bound = get_bound(name)
    state = bound.prepare(weights)
    bound.upper(state, weights, X[:1], y[:1], eps, clip)  # warm-up (imports, BLAS threads)
    seconds, rows = [], []
    for n in range(X.shape[0]):
        t0 = time.perf_counter()
        rows.append(bound.upper(state, weights, X[n:n + 1], y[n:n + 1], eps, clip))
        seconds.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    batch = bound.upper(state, weights, X, y, eps, clip) if name != "lp-triangle" else None
    batch_seconds = time.perf_counter() - t0
    U = np.concatenate(rows)
    return {"U": U, "seconds": np.array(seconds), "batch": batch_seconds if batch is not None else None,
            "certified_error": float(np.mean(~(U.max(axis=1) < 0)))}


def _row(name: str, box: str, res: dict, k: int) -> str:
    s = res["seconds"]
    per_point = f"{np.median(s):.4f} / {np.quantile(s, 0.9):.4f}"
    per_pair = f"{np.median(s) / (k - 1):.5f} / {np.quantile(s, 0.9) / (k - 1):.5f}"
    batch = "-" if res["batch"] is None else f"{res['batch'] / len(s):.5f}"
    return (f"| {name} | {box} | {len(s)} | {per_point} | {per_pair} | {batch} | "
            f"{100 * res['certified_error']:.1f}% |")


def _gap_row(name: str, box: str, U: np.ndarray, tri: np.ndarray) -> str:
    off = np.isfinite(tri)
    gap = U[: tri.shape[0]][off] - tri[off]
    return (f"| {name} | {box} | {tri.shape[0]} | {np.median(gap):.2e} | {np.quantile(gap, 0.9):.2e} | "
            f"{gap.max():.2e} | {gap.min():.2e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(DEFAULT_NET))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=100, help="first N MNIST test images")
    parser.add_argument("--triangle-limit", type=int, default=50, help="first N images for lp-triangle")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(BOUNDS))
    args = parser.parse_args()

    weights = Weights.load(args.weights)
    X, y = load_mnist("test", args.data_dir, limit=args.limit)
    X = X.astype(np.float64)
    print(f"network {args.weights} (d={weights.d}, m={weights.m}, k={weights.k}); eps={args.eps}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n")
    print("| method | box | points | s/point median / p90 | s/(point, target) median / p90 "
          "| s/point in one batch | certified error |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    results = {}
    for box, clip in BOXES:
        for name in args.methods:
            n = min(args.triangle_limit, args.limit) if name == "lp-triangle" else args.limit
            results[name, box] = res = _run(name, weights, X[:n], y[:n], args.eps, clip)
            print(_row(name, box, res, weights.k), flush=True)
    if "lp-triangle" in args.methods:
        print("\n| method | box | points | gap to lp-triangle median | p90 | max | min |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for box, _ in BOXES:
            tri = results["lp-triangle", box]["U"]
            for name in args.methods:
                if name != "lp-triangle":
                    print(_gap_row(name, box, results[name, box]["U"], tri))


if __name__ == "__main__":
    main()
