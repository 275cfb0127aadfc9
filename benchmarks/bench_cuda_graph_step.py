"""Benchmark and check: a training step replayed as a CUDA graph against the same step launched eagerly.

Prints a markdown table. Needs a CUDA GPU. Usage (from the repository root):

    python benchmarks/bench_cuda_graph_step.py [--configs AT-NN NT-NN] [--steps 200] [--check-steps 5]

For each configuration, at full size (784-500-10, batch 50, real MNIST batches):

* check: two copies of the same network and Adam state (capturable), one stepped eagerly, one by
  replaying the captured graph, on the same ``--check-steps`` batches and PGD noise; the largest
  parameter difference relative to the parameter's largest entry, and the losses' largest difference;
* timing: median milliseconds per step over ``--steps`` steps (CUDA events around each step) for the
  eager step and for the graph replay (batch copy included), after warm-up.
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch

from certsdp.data import load_mnist
from certsdp.network.torch_model import TwoLayerNet
from certsdp.training import StepContext, get_config, make_regularizer
from certsdp.training.graphed_step import GraphedStep


def _batches(config, X, y, count: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        idx = torch.randint(len(y), (config.batch_size,), generator=gen).to(X.device)
        batch = {"xb": X[idx], "yb": y[idx]}
        if config.reg == "at":  # the PGD random starts, an input of the AT step
            batch["pgd_noise"] = torch.rand((config.batch_size, X.shape[1]), generator=gen,
                                            dtype=torch.float64).to(X.device)
        yield batch


def _setup(config, device):
    torch.manual_seed(0)
    net = TwoLayerNet(784, config.hidden, 10).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, capturable=True)
    regularizer = make_regularizer(config, net.dims, device)

    def loss_fn(xb, yb, pgd_noise=None):
        return regularizer.loss(net, xb, yb, StepContext(0, pgd_noise))

    return net, opt, loss_fn


def _eager(loss_fn, opt, batch):
    loss = loss_fn(**batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()  # no autograd graph kept alive (it would disturb a later capture)


def check(config, X, y, steps: int) -> tuple[float, float]:
    device = X.device
    net_a, opt_a, loss_a = _setup(config, device)
    batches = list(_batches(config, X, y, steps, seed=1))
    _eager(loss_a, opt_a, batches[0])  # an Adam state to start from
    net_b, opt_b, loss_b = _setup(config, device)
    net_b.load_state_dict(net_a.state_dict())
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    graphed = GraphedStep(loss_b, opt_b, batches[0])
    loss_gap = 0.0
    for batch in batches:
        la = float(_eager(loss_a, opt_a, batch))
        lb = float(graphed(**batch))
        loss_gap = max(loss_gap, abs(la - lb))
    rel = max(float((pa - pb).abs().max() / pa.abs().max())
              for pa, pb in zip(net_a.parameters(), net_b.parameters(), strict=True))
    return rel, loss_gap


def time_steps(step, batches) -> float:
    times = []
    for batch in batches:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step(batch)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["AT-NN", "NT-NN"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eager-steps", type=int, default=30)
    parser.add_argument("--check-steps", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_cuda_graph_step: needs a CUDA GPU")
    device = torch.device("cuda")
    Xn, yn = load_mnist("train", data_dir=args.data_dir)
    X, y = torch.tensor(Xn, device=device), torch.tensor(yn, device=device)
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}\n")
    print("| configuration | eager ms/step | graph ms/step | speed-up | param. rel. diff after "
          f"{args.check_steps} steps | max loss diff |")
    print("|---|---|---|---|---|---|")
    for name in args.configs:
        config = get_config(name)
        rel, loss_gap = check(config, X, y, args.check_steps)
        net, opt, loss_fn = _setup(config, device)
        eager = time_steps(lambda b, f=loss_fn, o=opt: _eager(f, o, b),
                           list(_batches(config, X, y, args.eager_steps, seed=2)))
        batches = list(_batches(config, X, y, args.steps, seed=3))
        graphed = GraphedStep(loss_fn, opt, batches[0])
        graph = time_steps(lambda b, g=graphed: g(**b), batches)
        print(f"| {name} | {eager:.2f} | {graph:.3f} | {eager / graph:.1f}x | {rel:.1e} | {loss_gap:.1e} |")


if __name__ == "__main__":
    main()
