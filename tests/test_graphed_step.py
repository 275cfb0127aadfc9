"""The CUDA-graph training step (:mod:`certsdp.training.graphed_step`) and what makes a loss capturable.

CI has no GPU: the tests that capture a graph are skipped there and run where CUDA is present
(``benchmarks/bench_cuda_graph_step.py`` is the GPU check with timings). What can be checked on the
CPU is: the training losses that are captured never wait for the device (no host synchronisation),
the PGD of adversarial training computes exactly the points of :func:`certsdp.attacks.pgd`, the
warm-up restore leaves the optimizer exactly as it was, and a checkpoint written with a capturable
optimizer (on a GPU) resumes on the CPU.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import certsdp.attacks as A
import certsdp.training.randomness as R
from certsdp.errors import InputError
from certsdp.network.checkpoint import load_checkpoint, seal
from certsdp.network.torch_model import TwoLayerNet
from certsdp.training import train
from certsdp.training.config import get_config
from certsdp.training.graphed_step import GraphedStep, _snapshot, set_capturable
from certsdp.training.losses import at_loss
from certsdp.training.regularizers import GRAPH_REGS, StepContext, make_regularizer

CUDA = torch.cuda.is_available()


pytestmark = pytest.mark.usefixtures("one_thread")


class _OpCounter(TorchDispatchMode):
    """Counts the aten ops run; ``bool_index`` counts indexing by boolean masks (a sync on CUDA)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()
        self.bool_index = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func)] += 1
        if str(func).startswith("aten.index"):
            indices = [i for a in args if isinstance(a, (list, tuple)) for i in a]
            self.bool_index += sum(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices)
        return func(*args, **(kwargs or {}))


def _batch(seed: int, n: int = 16, d: int = 784, k: int = 10):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=gen)
    y = torch.randint(0, k, (n,), generator=gen)
    noise = torch.rand(n, d, generator=gen, dtype=torch.float64)
    return x, y, noise


@pytest.mark.parametrize("name", ["tiny-AT", "tiny-NT"])
@pytest.mark.parametrize("objective", ["ce", "hinge"])
def test_captured_losses_never_wait_for_the_device(name: str, objective: str) -> None:
    """Nothing in the loss or its backward that waits for the device on CUDA, which a CUDA graph cannot
    capture: no ``.item()``-like read (``_local_scalar_dense``; ``F.one_hot`` made one on the CPU), no
    ``nonzero``/``masked_select``, no indexing by a boolean mask."""
    config = get_config(name, objective=objective)
    assert config.reg in GRAPH_REGS
    torch.manual_seed(0)
    net = TwoLayerNet(784, config.hidden, 10)
    x, y, noise = _batch(1)
    regularizer = make_regularizer(config, net.dims)
    assert regularizer.graph_capturable
    with _OpCounter() as counter:
        loss = regularizer.loss(net, x, y, StepContext(0, noise if config.reg == "at" else None))
        loss.backward()
    for op in ("aten._local_scalar_dense.default", "aten.item.default", "aten.nonzero.default",
               "aten.masked_select.default"):
        assert counter.ops[op] == 0, (op, counter.ops)
    assert counter.bool_index == 0
    with _OpCounter() as check:  # the counter does see those
        x[x > 0.5].sum().item()
    assert check.bool_index == 1 and check.ops["aten._local_scalar_dense.default"] == 1


def test_pgd_unchecked_is_pgd_with_one_restart() -> None:
    torch.manual_seed(3)
    net = TwoLayerNet(784, 32, 10)
    x, y, _ = _batch(2)
    for eps in (0.0, 0.1, 0.3):
        ref = A.pgd(net, x, y, eps, steps=12, step_size=0.05, restarts=1,
                    generator=torch.Generator().manual_seed(5))
        noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        got = A.pgd_unchecked(net, x, y, eps, 12, 0.05, noise)
        assert torch.equal(ref, got), eps


def test_at_loss_from_noise_equals_at_loss_from_generator() -> None:
    torch.manual_seed(4)
    net = TwoLayerNet(784, 32, 10)
    x, y, _ = _batch(3)
    drawn = at_loss(net, x, y, 0.3, 0.1, 10, generator=torch.Generator().manual_seed(9))
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    given = at_loss(net, x, y, 0.3, 0.1, 10, noise=noise)
    assert torch.equal(drawn, given)
    x_adv = A.pgd(net, x, y, 0.3, steps=10, step_size=0.1, restarts=1,
                  generator=torch.Generator().manual_seed(9))
    assert torch.equal(given, F.cross_entropy(net(x_adv), y))


def test_noise_drawn_ahead_equals_noise_drawn_per_batch(monkeypatch) -> None:
    """The PGD starts drawn a chunk at a time are the numbers a per-step draw gave (before graphs)."""
    monkeypatch.setattr(R, "NOISE_CHUNK_STEPS", 3)
    n, bs, d = 23, 4, 784  # 6 batches, the last one of 3 rows; chunks of 12, 11 rows
    chunked = R.ChunkedNoise(torch.Generator().manual_seed(8), n, bs, torch.device("cpu"), d)
    gen = torch.Generator().manual_seed(8)
    for start in range(0, n, bs):
        stop = min(start + bs, n)
        expected = torch.rand((1, stop - start, d), generator=gen, dtype=torch.float64)[0]
        assert torch.equal(chunked.rows(start, stop), expected)
    with pytest.raises(ValueError, match="in order"):
        R.ChunkedNoise(torch.Generator(), n, bs, torch.device("cpu"), d).rows(4, 20)


def test_at_loss_checks_what_needs_no_host_sync() -> None:
    torch.manual_seed(4)
    net = TwoLayerNet(784, 8, 10)
    x, y, noise = _batch(3)
    with pytest.raises(InputError, match="steps"):
        at_loss(net, x, y, 0.3, 0.1, 0, noise=noise)
    with pytest.raises(InputError, match="step_size"):
        at_loss(net, x, y, 0.3, -0.1, 10, noise=noise)
    with pytest.raises(InputError, match="eps"):
        at_loss(net, x, y, -0.3, 0.1, 10, noise=noise)
    with pytest.raises(InputError, match="noise must have the shape of x"):
        at_loss(net, x, y, 0.3, 0.1, 10, noise=noise[:1])
    with pytest.raises(InputError, match="y must have shape"):
        at_loss(net, x, y[:-1], 0.3, 0.1, 10, noise=noise)
    gen = torch.Generator().manual_seed(2)
    at_loss(net, x, y, 0.0, 0.1, 10, generator=gen)  # eps 0: no random start drawn
    fresh = torch.Generator().manual_seed(2)
    assert torch.equal(torch.rand(3, generator=gen), torch.rand(3, generator=fresh))


def test_at_loss_runs_one_attack() -> None:
    """``steps`` PGD steps cost ``steps + 3`` forward passes: the clean point, one per step, the last
    point, and the loss at the adversarial point (a second, identical attack went unnoticed once)."""
    torch.manual_seed(4)
    net = TwoLayerNet(784, 8, 10)
    x, y, noise = _batch(3)
    calls = []
    net.register_forward_hook(lambda *_: calls.append(1))
    at_loss(net, x, y, 0.3, 0.1, 7, noise=noise)
    assert len(calls) == 7 + 3


def test_at_training_is_the_same_whatever_the_noise_chunks(tmp_path: Path, mnist_dir: Path,
                                                           monkeypatch) -> None:
    """Drawing the PGD starts ahead (100 steps by default) trains bitwise like drawing them per step,
    also with a smaller last batch and chunks that end inside an epoch."""
    config = get_config("tiny-AT", train_limit=500, at_steps=5)  # 8 batches of 64, the last of 52
    hashes = []
    for chunk in (100, 3, 1):
        monkeypatch.setattr(R, "NOISE_CHUNK_STEPS", chunk)
        ckpt = train(config, tmp_path / str(chunk), data_dir=mnist_dir, progress=False)
        hashes.append(load_checkpoint(ckpt)[0].to_weights().content_hash())
    assert len(set(hashes)) == 1


def _adam_steps(net: TwoLayerNet, opt: torch.optim.Optimizer, steps: int, seed: int) -> None:
    for s in range(steps):
        x, y, _ = _batch(seed + s, d=net.dims[0], k=net.dims[2])
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()


@pytest.mark.parametrize("fresh", [True, False])
def test_warm_up_restore_leaves_params_and_adam_state_as_they_were(fresh: bool) -> None:
    """Warm-up steps are real steps; after the restore, training continues bitwise as if there were none
    (with a fresh optimizer: as if its state had never been created)."""
    torch.manual_seed(0)
    net_a, net_b = TwoLayerNet(12, 8, 3), TwoLayerNet(12, 8, 3)
    net_b.load_state_dict(net_a.state_dict())
    opt_a = torch.optim.Adam(net_a.parameters(), lr=1e-2)
    opt_b = torch.optim.Adam(net_b.parameters(), lr=1e-2)
    if not fresh:
        _adam_steps(net_a, opt_a, 3, seed=10)
        _adam_steps(net_b, opt_b, 3, seed=10)
    restore = _snapshot(list(net_b.parameters()), opt_b)
    _adam_steps(net_b, opt_b, 4, seed=99)  # the warm-up
    assert not torch.equal(net_a.hidden.weight, net_b.hidden.weight)
    restore()
    _adam_steps(net_a, opt_a, 5, seed=20)
    _adam_steps(net_b, opt_b, 5, seed=20)
    for pa, pb in zip(net_a.parameters(), net_b.parameters(), strict=True):
        assert torch.equal(pa, pb)
        assert torch.equal(opt_a.state[pa]["exp_avg_sq"], opt_b.state[pb]["exp_avg_sq"])
        assert float(opt_a.state[pa]["step"]) == float(opt_b.state[pb]["step"]) == (5 if fresh else 8)


def test_set_capturable() -> None:
    net = TwoLayerNet(12, 8, 3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    _adam_steps(net, opt, 2, seed=0)
    set_capturable(opt, True)
    assert all(group["capturable"] for group in opt.param_groups)
    set_capturable(opt, False)
    assert not any(group["capturable"] for group in opt.param_groups)
    for p in net.parameters():
        assert opt.state[p]["step"].device.type == "cpu" and opt.state[p]["step"].dtype == torch.float32
    with pytest.raises(InputError, match="no capturable mode"):
        set_capturable(torch.optim.SGD(net.parameters(), lr=0.1), True)


def test_a_checkpoint_from_a_capturable_optimizer_resumes_on_the_cpu(tmp_path: Path, mnist_dir: Path) -> None:
    """A GPU run saves its Adam groups with ``capturable=True``; resuming on the CPU must turn that off
    (a capturable Adam refuses CPU parameters) and continue exactly like the uninterrupted CPU run."""
    straight = train(get_config("tiny-NT"), tmp_path / "straight", data_dir=mnist_dir, progress=False)
    split = tmp_path / "split"
    ckpt = train(get_config("tiny-NT", epochs=1), split, data_dir=mnist_dir, progress=False)
    state = torch.load(ckpt, weights_only=True)
    for group in state["extra"]["optimizer"]["param_groups"]:
        group["capturable"] = True
    torch.save(seal(state), ckpt)  # edited: sealed with its new hash
    train(get_config("tiny-NT"), split, data_dir=mnist_dir, progress=False, resume=True)
    net_a, _, extra_a = load_checkpoint(straight)
    net_b, _, extra_b = load_checkpoint(ckpt)
    assert net_a.to_weights().content_hash() == net_b.to_weights().content_hash()
    assert not any(g["capturable"] for g in extra_b["optimizer"]["param_groups"])


def test_graphed_step_refuses_what_it_cannot_restore_or_capture() -> None:
    net = TwoLayerNet(12, 8, 3)
    step = lambda x: net(x).sum()  # noqa: E731
    batch = {"x": torch.rand(4, 12)}
    with pytest.raises(InputError, match="Adam and AdamW"):  # NAdam's fresh state is not all zeros
        GraphedStep(step, torch.optim.NAdam(net.parameters(), capturable=True), batch)
    with pytest.raises(InputError, match="capturable=True"):
        GraphedStep(step, torch.optim.Adam(net.parameters()), batch)
    if not CUDA:
        with pytest.raises(InputError, match="CUDA"):
            GraphedStep(step, torch.optim.Adam(net.parameters(), capturable=True), batch)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (CI has none; benchmarks/bench_cuda_graph_step.py)")
@pytest.mark.parametrize("name", ["tiny-AT", "tiny-NT"])
def test_graphed_training_matches_eager_training_on_cuda(name: str, tmp_path: Path, mnist_dir: Path) -> None:
    """A whole tiny run, the last batch of each epoch smaller (eager) and the learning rate changing
    every epoch (captured again): close to the eager run (the two Adam modes round differently)."""
    import json

    config = get_config(name, train_limit=500, lr_step_epochs=1, epochs=3)
    for graphs in (True, False):
        train(config, tmp_path / str(graphs), data_dir=mnist_dir, device="cuda", progress=False,
              cuda_graphs=graphs)
    a, b = (json.loads((tmp_path / str(g) / "metrics.json").read_text()) for g in (True, False))
    for ra, rb in zip(a, b, strict=True):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-3)
        assert abs(ra["test_error"] - rb["test_error"]) <= 3 / config.eval_limit
