"""Benchmark: ``certsdp verify`` on the paper's LP-NN and SDP-NN, MNIST test points, eps 0.1, clipped.

Prints, per network, the verdict counts, the fraction unknown, the whole run's wall time and the mean
seconds per point spent in each stage (attacks, each certificate, the branch and bound, the MILP).
Usage (from the repository root; the machine's load changes the times):

    CERTSDP_DATA=/work/shared/data/mnist python benchmarks/bench_verify.py --limit 20 [--workers 2]

Each network's SDP pair table is cached in ``--cache`` (solved once, re-certified when loaded; its
time is reported apart from the run's); the run folders go there too and are replaced each time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from certsdp.data.mnist import load_mnist
from certsdp.network.weights import Weights
from certsdp.sdp.table import acquire_pair_table
from certsdp.verify import PointResult, verify
from certsdp.verify.api import default_bounds

NETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "original_nets"


def run_network(name: str, args: argparse.Namespace, X: np.ndarray, y: np.ndarray) -> tuple[dict, dict]:
    """The summary of one network's run and the mean seconds per point of every stage."""
    weights = Weights.load(Path(args.nets) / f"{name}.npz")
    cache = Path(args.cache)
    out = cache / f"{name}_run"
    shutil.rmtree(out, ignore_errors=True)
    stages: dict[str, float] = defaultdict(float)
    totals: list[float] = []

    def collect(result: PointResult) -> None:
        totals.append(result.seconds)
        for stage, seconds in result.stages.items():
            stages[stage] += seconds

    t0 = time.perf_counter()
    table = acquire_pair_table(weights, cache / f"{name}_sdp_table.npz") if "sdp" in args.bounds else None
    t1 = time.perf_counter()
    summary = verify(weights, X, y, 0.1, out, clip=(0.0, 1.0), time_limit=args.time_limit,
                     workers=args.workers, bounds=args.bounds, table=table, attack_steps=args.attack_steps,
                     attack_restarts=args.attack_restarts, on_result=collect)
    summary["wall_seconds"] = time.perf_counter() - t1
    summary["table_seconds"] = t1 - t0
    per_point = {stage: seconds / len(totals) for stage, seconds in stages.items()}
    per_point["point total"] = float(np.mean(totals))
    return summary, per_point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="the first N MNIST test points")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per point (exact stage)")
    parser.add_argument("--workers", type=int, default=1, help="Dask workers (0 or 1: in this process)")
    parser.add_argument("--bounds", default=",".join(default_bounds()), help="certificates, comma-separated")
    parser.add_argument("--attack-steps", type=int, default=100)
    parser.add_argument("--attack-restarts", type=int, default=2)
    parser.add_argument("--nets", default=str(NETS), help="folder of lp_nn.npz and sdp_nn.npz")
    parser.add_argument("--networks", nargs="+", default=["lp_nn", "sdp_nn"], choices=["lp_nn", "sdp_nn"])
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "certsdp" / "bench_verify"))
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    args.bounds = tuple(name for name in args.bounds.split(",") if name)
    X, y = load_mnist("test", data_dir=args.data_dir, limit=args.limit)
    print(f"certsdp verify, MNIST test[:{args.limit}], eps 0.1 clipped to [0, 1], time limit "
          f"{args.time_limit:g} s/point, workers {args.workers}, bounds {','.join(args.bounds)}, PGD "
          f"{args.attack_steps} steps x {args.attack_restarts} restarts; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    results = {name: run_network(name, args, X, y) for name in args.networks}
    verdicts = ("robust", "not_robust", "misclassified", "unknown")
    print("| network | " + " | ".join(verdicts) + " | unknown fraction | run wall time (s) | SDP table (s) |")
    print("|---" * (len(verdicts) + 4) + "|")
    for name, (summary, _) in results.items():
        counts = " | ".join(str(summary["counts"][v]) for v in verdicts)
        print(f"| {name} | {counts} | {summary['fractions']['unknown']:.2f} | "
              f"{summary['wall_seconds']:.1f} | {summary['table_seconds']:.1f} |")
    seen = {stage for _, per in results.values() for stage in per}
    stages = [stage for stage in ("attacks", *args.bounds, "bab", "milp") if stage in seen]
    print("\nmean seconds per point by stage (over all points; 0 where a stage did not run)\n")
    print("| network | " + " | ".join([*stages, "point total"]) + " |")
    print("|---" * (len(stages) + 2) + "|")
    for name, (_, per) in results.items():
        cells = " | ".join(f"{per.get(stage, 0.0):.3f}" for stage in [*stages, "point total"])
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
