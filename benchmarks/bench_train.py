"""Benchmark: seconds per training epoch of the paper's configurations, side by side in one run.

Prints a markdown table. Usage (from the repository root):

    python benchmarks/bench_train.py [--configs NT-NN SDP-NN ...] [--steps 60] [--threads 2]

Each configuration trains at full size (784-500-10, batch 50) for ``--steps`` steps on the first
``steps * 50`` training images; only the training steps are timed (from the per-step callback, after
two warm-up steps), so evaluation and the per-epoch exact certificate are excluded and reported
separately for SDP. Seconds per epoch = median seconds per step x 1,200 steps (60,000 images).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch

from certsdp.training import get_config, train

STEPS_PER_EPOCH = 60_000 // 50


def time_steps(name: str, steps: int, data_dir: str | None) -> tuple[float, float]:
    """Median seconds per step and whole-epoch seconds (steps + evaluation) for ``steps`` steps."""
    stamps: list[float] = []
    config = get_config(name, train_limit=steps * 50, epochs=1, eval_limit=500)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(config, tmp, data_dir=data_dir, progress=False,
              step_callback=lambda epoch, step, loss: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
    per_step = float(np.median(np.diff(stamps[2:]))) if len(stamps) > 3 else float("nan")
    return per_step, total - (stamps[-1] - stamps[0] if stamps else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+",
                        default=["NT-NN", "Fro-NN", "Spe-NN", "SDP-NN", "LP-NN", "AT-NN"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} thread(s), {args.steps} timed steps per configuration\n")
    print("| configuration | ms per step | seconds per epoch (1,200 steps) | 90 epochs "
          "| not timed: eval etc. (s) |")
    print("|---|---|---|---|---|")
    for name in args.configs:
        per_step, rest = time_steps(name, args.steps, args.data_dir)
        epoch = per_step * STEPS_PER_EPOCH
        print(f"| {name} | {1e3 * per_step:.1f} | {epoch:.0f} | {90 * epoch / 3600:.2f} h | {rest:.1f} |")


if __name__ == "__main__":
    main()
