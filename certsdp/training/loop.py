"""Training of the paper's networks (section 6): NT, Fro, Spe, AT, SDP (weighted/unweighted) and LP.

:func:`train` runs one :class:`certsdp.training.config.TrainConfig` and writes to its output folder
(:mod:`certsdp.training.state`): ``checkpoint.pt`` after every epoch (network, optimizer,
regularizer and random states, hashed whole), ``metrics.json`` (one record per epoch: ``epoch``,
``lr``, ``train_loss``, ``test_error`` on the first ``eval_limit`` test images, a tie counting as a
mistake, ``seconds``, and what the regularizer adds, e.g. the SDP certificate of eq. 16 and its
certified error of eq. 12), ``weights.npz`` at the end (float32).

One epoch: the regularizer prepares it (:meth:`Regularizer.on_epoch_start`: the SDP pair-weight
refresh, the PGD random starts); Adam steps over the batches in the epoch's random order, each with
one class ``i`` drawn for the pairwise regularizers (:mod:`certsdp.training.randomness`); the network
is evaluated and the regularizer's metrics recorded; the checkpoint is written. On CPU a run resumed
after any epoch is bitwise the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from certsdp.atomic import atomic_path, write_json
from certsdp.errors import InputError, TrainingDiverged
from certsdp.network.checkpoint import save_checkpoint
from certsdp.network.torch_model import TwoLayerNet
from certsdp.network.weights import Weights
from certsdp.training.config import TrainConfig
from certsdp.training.data import DeviceData, TrainingData, load_training_data
from certsdp.training.device import machine_description, resolve_device, synchronize
from certsdp.training.evaluation import clean_error
from certsdp.training.randomness import epoch_draws, seed_globals
from certsdp.training.regularizers import Regularizer, make_regularizer
from certsdp.training.state import (
    METRICS_NAME,
    WEIGHTS_NAME,
    StartPoint,
    check_out_dir,
    checkpoint_extra,
    find_start_point,
    keep_fork_point,
    prepare_out_dir,
    restore,
    save_fork_point,
)
from certsdp.training.step import StepRunner

StepCallback = Callable[[int, int, float], None]
_FINITE_CHECK_STEPS = 50  # one device synchronisation per 50 steps


@dataclass
class _Run:
    """Everything the epoch loop works on."""

    config: TrainConfig
    out: Path
    ckpt_path: Path
    device: torch.device
    data: DeviceData
    net: TwoLayerNet
    regularizer: Regularizer
    optimizer: torch.optim.Optimizer
    runner: StepRunner
    start_epoch: int
    metrics: list[dict[str, Any]]
    seconds: float
    forked_from: dict[str, Any] | None
    machine: dict[str, Any]

    @property
    def n_batches(self) -> int:
        return -(-len(self.data.y) // self.config.batch_size)


def _model(config: TrainConfig, data: DeviceData, device: torch.device, cuda_graphs: bool,
           ) -> tuple[TwoLayerNet, Regularizer, torch.optim.Optimizer, bool]:
    """The network (initialised after seeding), its regularizer and their Adam."""
    seed_globals(config.seed)
    d, k = data.dims
    net = TwoLayerNet(d, config.hidden, k).to(device)
    regularizer = make_regularizer(config, net.dims, device)
    use_graphs = bool(cuda_graphs) and device.type == "cuda" and regularizer.graph_capturable
    params = list(net.parameters()) + regularizer.parameters()
    return net, regularizer, torch.optim.Adam(params, lr=config.lr, capturable=use_graphs), use_graphs


def _setup(config: TrainConfig, out: Path, dataset: TrainingData | None, data_dir: str | Path | None,
           device: str | torch.device, resume: bool, fork_from: str | Path | None, cuda_graphs: bool) -> _Run:
    """Validate the arguments, read the state to continue from, load the data, build the model."""
    if not isinstance(config, TrainConfig):
        raise InputError(f"config must be a TrainConfig, got {type(config).__name__}")
    if dataset is not None and not isinstance(dataset, TrainingData):
        raise InputError(f"dataset must be a TrainingData, got {type(dataset).__name__} "
                         "(an MNIST folder is passed as data_dir=)")
    dev = resolve_device(device)
    ckpt_path = check_out_dir(out, resume)
    point: StartPoint | None = find_start_point(config, out, resume, fork_from)
    host = (dataset if dataset is not None else load_training_data(config, data_dir)).limited(config)
    prepare_out_dir(out)
    data = DeviceData.on(host, dev)
    net, regularizer, optimizer, use_graphs = _model(config, data, dev, cuda_graphs)
    if point is not None:
        restore(point, net, regularizer, optimizer, use_graphs, dev)
        keep_fork_point(point, regularizer.fork_epoch(config), ckpt_path, out)
    runner = StepRunner(net, regularizer, optimizer, use_graphs, config.batch_size)
    return _Run(config, out, ckpt_path, dev, data, net, regularizer, optimizer, runner,
                start_epoch=point.epoch if point else 0, metrics=point.metrics if point else [],
                seconds=point.seconds if point else 0.0, forked_from=point.forked_from if point else None,
                machine=machine_description(dev))


def _check_finite(loss_sum: torch.Tensor, epoch: int, step: int, ckpt_path: Path) -> None:
    """Raise :class:`TrainingDiverged` once the running loss sum of the epoch is NaN or infinite."""
    if not bool(torch.isfinite(loss_sum)):
        kept = f"; {ckpt_path} (the last finished epoch) is unchanged" if ckpt_path.exists() else ""
        raise TrainingDiverged(f"training diverged: the loss became {float(loss_sum)} in epoch {epoch + 1} "
                               f"by step {step + 1}{kept}")


def _train_batches(run: _Run, epoch: int, lr: float, progress: bool, callback: StepCallback | None) -> float:
    """One pass over the training data in the epoch's order; returns the mean step loss."""
    config, data, n_batches = run.config, run.data, run.n_batches
    n = len(data.y)
    order, classes = epoch_draws(config.seed, epoch, n, n_batches, data.dims[1], run.device)
    run.net.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    with tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False,
              disable=not progress) as bar:
        for step in range(n_batches):
            start, stop = step * config.batch_size, min((step + 1) * config.batch_size, n)
            idx = order[start:stop]
            batch = {"xb": data.X[idx], "yb": data.y[idx], **run.regularizer.step_inputs(start, stop)}
            loss = run.runner(batch, int(classes[step]), lr)
            loss_sum += loss.double()
            last = step == n_batches - 1
            if step % _FINITE_CHECK_STEPS == 0 or last:
                _check_finite(loss_sum, epoch, step, run.ckpt_path)
            if callback is not None:
                callback(epoch, step, float(loss))
            if progress and (step % 50 == 0 or last):
                bar.set_postfix(loss=f"{float(loss):.4f}")
            bar.update(1)
    return float(loss_sum) / n_batches


def _train_epoch(run: _Run, epoch: int, progress: bool, callback: StepCallback | None) -> dict[str, Any]:
    """Train epoch ``epoch`` (0-based) and evaluate; returns its metrics record."""
    t0 = time.perf_counter()
    lr = run.config.lr_at(epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    entries = run.regularizer.on_epoch_start(epoch, run.net, run.data, run.metrics)
    train_loss = _train_batches(run, epoch, lr, progress, callback)
    run.net.eval()
    record = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, **entries,
              "test_error": clean_error(run.net, run.data.X_test, run.data.y_test)}
    record.update(run.regularizer.epoch_metrics(run.net, run.data))
    synchronize(run.device)
    epoch_seconds = time.perf_counter() - t0
    run.seconds += epoch_seconds
    record.update(seconds=epoch_seconds, seconds_total=run.seconds)
    return record


def _save_epoch(run: _Run, record: dict[str, Any]) -> None:
    """Append ``record`` and write the checkpoint (and fork point), then ``metrics.json``."""
    run.metrics.append(record)
    epoch = record["epoch"]
    extra = checkpoint_extra(epoch, run.optimizer, run.regularizer, run.data.dims[1], run.device,
                             run.metrics, run.seconds, run.machine, run.forked_from)
    save_checkpoint(run.ckpt_path, run.net, dataclasses.asdict(run.config), extra)
    if run.regularizer.fork_epoch(run.config) == epoch:
        save_fork_point(run.ckpt_path, run.out)
    write_json(run.out / METRICS_NAME, run.metrics, "metrics")


def _save_weights(weights: Weights, path: Path) -> None:
    """``weights.npz``, atomically (``np.savez`` names its file itself, hence the inner rename)."""
    with atomic_path(path, "weights") as tmp:
        npz = tmp.with_name(tmp.name + ".npz")
        try:
            weights.save(npz)
            os.replace(npz, tmp)
        finally:
            npz.unlink(missing_ok=True)


def train(
    config: TrainConfig,
    out_dir: str | Path,
    dataset: TrainingData | None = None,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    progress: bool = True,
    step_callback: StepCallback | None = None,
    fork_from: str | Path | None = None,
    cuda_graphs: bool = True,
) -> Path:
    """Train ``config``, checkpointing every epoch to ``out_dir``; returns the checkpoint path.

    Args:
        config: the run (see :mod:`certsdp.training.config`).
        out_dir: output folder (created; checked writable before any training).
        dataset: the examples (:class:`certsdp.training.data.TrainingData`); by default MNIST from
            ``data_dir`` (:func:`certsdp.training.data.load_training_data`). ``config.train_limit`` and
            ``eval_limit`` apply to either.
        data_dir: MNIST folder (see :func:`certsdp.data.mnist.resolve_data_dir`).
        device: ``"cpu"`` or ``"cuda"``.
        resume: continue from ``out_dir/checkpoint.pt`` after its last finished epoch (start afresh if
            there is none). The checkpoint must verify against its recorded hash, and its config must
            equal ``config`` except for ``epochs``, which may be raised to train longer.
        progress: tqdm bars over epochs and batches.
        step_callback: if given, called as ``step_callback(epoch, step, loss)`` after every step
            (forces a device synchronisation per step on CUDA).
        fork_from: start from the checkpoint of a *weighted* SDP run instead of from scratch, for the
            unweighted one (or the other way round). Until the first refresh of the pair weights (at
            the start of epoch ``weight_refresh_epochs + 1``) the two runs are the same computation, so
            a checkpoint of one at epoch ``<= weight_refresh_epochs`` is a checkpoint of the other
            (bitwise, on CPU; tested). The configs must differ only in ``name``, ``sdp_weighted`` and
            ``epochs``. Ignored when ``resume`` finds a checkpoint in ``out_dir`` (an interrupted
            forked run continues from its own checkpoint).
        cuda_graphs: on CUDA, replay the step as a CUDA graph where the regularizer allows it
            (:mod:`certsdp.training.step`); no effect on the CPU.

    Raises:
        InputError: CUDA unavailable, a checkpoint exists and ``resume`` is false, the checkpoint is
            corrupt, unverifiable (format 1) or belongs to another config, ``out_dir`` cannot be
            created or written, missing or corrupt MNIST, ...
        TrainingDiverged: the loss became NaN or infinite (the last checkpoint is kept).
    """
    run = _setup(config, Path(out_dir), dataset, data_dir, device, resume, fork_from, cuda_graphs)
    with tqdm(total=config.epochs, initial=run.start_epoch, desc=config.name, unit="epoch",
              disable=not progress) as bar:
        for epoch in range(run.start_epoch, config.epochs):
            record = _train_epoch(run, epoch, progress, step_callback)
            _save_epoch(run, record)
            err = record["test_error"]
            bar.set_postfix(loss=f"{record['train_loss']:.4f}", err="-" if err is None else f"{err:.4f}")
            bar.update(1)
    if not run.metrics or run.start_epoch >= config.epochs:
        write_json(run.out / METRICS_NAME, run.metrics, "metrics")
    _save_weights(run.net.to_weights(), run.out / WEIGHTS_NAME)
    return run.ckpt_path
