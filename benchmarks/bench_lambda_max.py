"""Benchmark: speed and tracking accuracy of the lambda_max regularizer (eq. 15) during training.

Prints a markdown table. Usage (from the repository root):

    python benchmarks/bench_lambda_max.py [--steps 200] [--check-every 20] [--threads 1] [--start CKPT]

For each LOBPCG setting (maximum iterations per step, stopping tolerance) it trains the SDP-NN
configuration (784-500-10, hinge summed over the batch + 0.05 x eq. 15, Adam at lr 1e-3, one class
per step, batch 50 of MNIST) from the same start for ``--steps`` steps: a fresh network, or with
``--start`` the network, dual vectors, warm-start vectors and Adam state of a training checkpoint
(``certsdp train`` writes one per epoch; mid-training is where LOBPCG works hardest). Every
``--check-every`` steps it compares
the tracked ``lambda_max`` of the class's 9 pairs (the Rayleigh quotient of the warm-started Ritz
vector, :attr:`SDPDualRegularizer.last_lambda`) with the exact top eigenvalue from a dense
``eigvalsh``. The regularizer is only a training signal: reported certificates are recomputed exactly,
so this table is about speed against the quality of the signal. Milliseconds per step cover the
whole training step (forward, LOBPCG, backward, Adam), excluding the exact checks.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from certsdp.data import load_mnist
from certsdp.network.checkpoint import load_checkpoint
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp.matrix import coupling_block, sdp_matrix_from_block
from certsdp.training.losses import multiclass_hinge
from certsdp.training.sdp_regularizer import SDPDualRegularizer

# (max iterations, residual tolerance); the SDP configs use up to 4 (TrainConfig.sdp_iters)
SETTINGS = [(2, 1e-4), (4, 1e-4), (12, 1e-4), (24, 1e-5)]


def exact_lambda(net: TwoLayerNet, reg: SDPDualRegularizer, i: int) -> np.ndarray:
    W = net.hidden.weight.detach().double().numpy()
    V = net.out.weight.detach().double().numpy()
    out = []
    for j in (j for j in range(reg.k) if j != i):
        c = reg.c[reg.index[(min(i, j), max(i, j))]].detach().double().numpy()
        M = sdp_matrix_from_block(coupling_block(W, V[i] - V[j]))
        out.append(np.linalg.eigvalsh(M - np.diag(c))[-1])
    return np.array(out)


def run(iters: int, tol: float, steps: int, check_every: int, X: torch.Tensor, y: torch.Tensor,
        start: str | None = None) -> tuple[float, np.ndarray]:
    torch.manual_seed(0)
    net = TwoLayerNet(784, 500, 10)
    reg = SDPDualRegularizer(784, 500, 10, iters=iters, tol=tol)
    opt = torch.optim.Adam(list(net.parameters()) + list(reg.parameters()), lr=1e-3)
    if start is not None:
        saved, _, extra = load_checkpoint(start)
        net.load_state_dict(saved.state_dict())
        reg.load_state_dict(extra["regularizer"])
        opt.load_state_dict(extra["optimizer"])
    gen = torch.Generator().manual_seed(1)
    times, errors = [], []
    for step in range(steps):
        idx = torch.randint(len(y), (50,), generator=gen)
        i = int(torch.randint(10, (1,), generator=gen))
        t0 = time.perf_counter()
        loss = multiclass_hinge(net(X[idx]), y[idx], reduction="sum") + 0.05 * reg(net, i)
        forward = time.perf_counter() - t0
        if step % check_every == check_every - 1:  # not timed: same weights and c as the tracked value
            errors.append(np.abs(reg.last_lambda.double().numpy() - exact_lambda(net, reg, i)))
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(forward + time.perf_counter() - t1)
    return float(np.median(times[2:])), np.concatenate(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--check-every", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--start", default=None, help="an SDP-NN training checkpoint to start from")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X_np, y_np = load_mnist("train", data_dir=args.data_dir, limit=10000)
    X, y = torch.tensor(X_np), torch.tensor(y_np)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} thread(s); SDP-NN config, {args.steps} steps from {args.start or 'scratch'}, "
          f"exact check every {args.check_every} steps (9 pairs each)\n")
    print("| LOBPCG iterations per step | residual tolerance | ms per step | |error| median | 90% | max |")
    print("|---|---|---|---|---|---|")
    for iters, tol in SETTINGS:
        ms, err = run(iters, tol, args.steps, args.check_every, X, y, args.start)
        print(f"| {'up to ' if tol else ''}{iters} | {tol:g} | {1e3 * ms:.1f} | {np.median(err):.1e} "
              f"| {np.quantile(err, 0.9):.1e} | {err.max():.1e} |")


if __name__ == "__main__":
    main()
