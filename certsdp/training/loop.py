"""Training of the paper's networks (section 6): NT, Fro, Spe, AT, SDP (weighted/unweighted) and LP.

:func:`train` runs one :class:`certsdp.training.config.TrainConfig` on MNIST and writes to ``out_dir``:

* ``checkpoint.pt`` after every epoch (:func:`certsdp.network.torch_model.save_checkpoint`, atomic) with
  ``config = dataclasses.asdict(config)`` and ``extra`` holding everything needed to resume:
  ``epoch`` (number of finished epochs), ``optimizer``, ``regularizer`` (the SDP regularizer's state
  dict with its dual vectors and warm-start eigenvectors), ``spectral_state`` (power-iteration
  vector), ``pair_weights``, ``rng`` (global torch/numpy/CUDA states), ``metrics``, ``seconds``,
  ``machine``;
* ``metrics.json``: the list of per-epoch metric dicts (``epoch``, ``lr``, ``train_loss``,
  ``test_error`` on the first ``eval_limit`` test images (a tie counts as a mistake), ``seconds``;
  for sdp also the certified pair bounds ``sdp_bounds`` of eq. 16 from the trained dual vectors,
  their max and mean, and ``sdp_cert_error``, the fraction of those test images not certified by
  eq. 12 at ``sdp_eps``, computed as rigorously as any reported certificate,
  :func:`certsdp.bounds.certify.certified_error_curve`);
* ``weights.npz`` at the end (:meth:`certsdp.network.weights.Weights.save`, float32);
* for sdp, ``checkpoint_before_refresh.pt``: a copy of the checkpoint after epoch
  ``weight_refresh_epochs``, the last one the weighted and unweighted runs share (``fork_from``).

Randomness. The network is initialised after ``torch.manual_seed(seed)``. Everything random during
an epoch (data order, the class ``i`` of each step, PGD's random starts) is drawn from CPU
``torch.Generator`` objects seeded from ``(seed, epoch, stream)``, so a resumed run sees exactly the
same draws; the global torch and numpy states are checkpointed too. On CPU, ``resume=True`` after
any finished epoch gives bitwise the same weights as an uninterrupted run. PGD's random starts are
drawn ahead, 100 steps at a time, from the same stream (the same numbers as drawing them step by
step), so that on CUDA the step itself draws nothing and can be replayed as a CUDA graph (see
``cuda_graphs``).

Regularized steps (fro, spectral, sdp) sample one class ``i`` uniformly per step and regularize its
``k - 1`` pairs ``(i, j)`` (paper section 6).

SDP pair weights. For ``sdp_weighted`` the weights ``w_ij`` start at 1 and, at the start of every
epoch ``e > 0`` with ``e % weight_refresh_epochs == 0`` (0-based; the metrics record of that epoch
holds them as ``pair_weights``), are recomputed from eq. 12 with the network and bounds as they
were at the end of the previous epoch (so a run split by ``resume`` refreshes identically): for each
training example ``(x, y)`` the pair ``(i, y)`` with ``i = argmax_{j != y} f_j(x) - f_y(x) + eps/4
B_jy`` (``eps = sdp_eps``, ``B`` the certified pair bounds of the regularizer,
:meth:`SDPDualRegularizer.certificate_bounds`) is the one that decides its certificate. ``w_ij`` is
proportional to the number of examples whose deciding pair is ``{i, j}``; since the regularizer
shares one dual vector between ``(i, j)`` and ``(j, i)`` the counts are symmetrised, and the weights
are normalised to mean 1 over the ``k (k - 1)`` ordered pairs (a pair that decides no example gets
weight 0 until the next refresh: the network is then not pushed on that pair, but its dual vector
keeps being optimised at full weight, see :class:`certsdp.training.sdp_regularizer.SDPDualRegularizer`).
Unweighted: all 1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from certsdp.attacks.engine import score_margin
from certsdp.errors import InputError, TrainingDiverged
from certsdp.network.torch_model import TwoLayerNet, load_checkpoint, save_checkpoint
from certsdp.training.config import TrainConfig
from certsdp.training.graphed_step import GraphedStep, set_capturable

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
WEIGHTS_NAME = "weights.npz"
FORK_POINT_NAME = "checkpoint_before_refresh.pt"
NUM_CLASSES = 10
INPUT_DIM = 784
_EVAL_BATCH = 2000

# independent random streams per epoch
_STREAM_ORDER, _STREAM_CLASS, _STREAM_PGD = 0, 1, 2


def _epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, stream)`` (independent streams via SeedSequence)."""
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device`` for ``device``; :class:`InputError` if it is unknown or CUDA is unavailable."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda: CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device must be cpu or cuda, got {device!r}")
    return dev


def machine_description(device: torch.device) -> dict[str, Any]:
    """Where the run happened (recorded in the checkpoint next to the timings)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": str(torch.__version__),
        "device": str(device),
    }
    if device.type == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(device)
    return info


# ---------------------------------------------------------------------------------------------
# random states in a form torch.load(weights_only=True) accepts


def _rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state({  # noqa: NPY002
        "bit_generator": npst["bit_generator"],
        "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
        "has_gauss": npst["has_gauss"],
        "gauss": npst["gauss"],
    })
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ---------------------------------------------------------------------------------------------
# the pieces of one step


def _make_regularizer(config: TrainConfig, device: torch.device) -> torch.nn.Module | None:
    if config.reg != "sdp":
        return None
    try:
        from certsdp.training.sdp_regularizer import SDPDualRegularizer
    except ModuleNotFoundError as exc:
        if exc.name == "certsdp.training.sdp_regularizer":
            raise InputError("reg='sdp' needs certsdp.training.sdp_regularizer (SDPDualRegularizer), "
                             "which is not installed") from None
        raise
    return SDPDualRegularizer(INPUT_DIM, config.hidden, NUM_CLASSES, iters=config.sdp_iters).to(device)


def _step_loss(
    config: TrainConfig,
    net: TwoLayerNet,
    xb: torch.Tensor,
    yb: torch.Tensor,
    i: int,
    regularizer: torch.nn.Module | None,
    pair_weights: torch.Tensor,
    spectral_state: dict,
    pgd_noise: torch.Tensor | None,
) -> torch.Tensor:
    """The training loss of one batch (see the table in :mod:`certsdp.training.config`).

    ``pgd_noise`` (reg ``at``): uniform [0, 1) float64 noise shaped like ``xb``, the PGD random start.
    """
    from certsdp.training import losses as O

    if config.reg == "lp":
        return O.wong_kolter_robust_loss(net, xb, yb, config.lp_eps)
    objective = O.cross_entropy if config.objective == "ce" else O.multiclass_hinge
    extra = None
    if config.reg == "at":
        extra = config.at_weight * O.at_loss(net, xb, yb, config.at_eps, config.at_step, config.at_steps,
                                             noise=pgd_noise)
    loss = objective(net(xb), yb, reduction=config.loss_reduction)
    if config.reg == "fro":
        extra = config.reg_lambda * O.frobenius_reg(net, i)
    elif config.reg == "spectral":
        extra = config.reg_lambda * O.spectral_reg(net, i, spectral_state)
    elif config.reg == "sdp":
        assert regularizer is not None
        extra = config.reg_lambda * regularizer(net, i, pair_weights[i])
    return loss if extra is None else loss + extra


@torch.no_grad()
def _scores(net: TwoLayerNet, X: torch.Tensor) -> torch.Tensor:
    if len(X) == 0:
        return torch.zeros(0, NUM_CLASSES, device=X.device)
    return torch.cat([net(X[s:s + _EVAL_BATCH]) for s in range(0, len(X), _EVAL_BATCH)])


def _sdp_margins(scores: np.ndarray, y: np.ndarray, bounds: np.ndarray, eps: float) -> np.ndarray:
    """``f_j - f_y + eps/4 B[j, y]`` (n x k) in float64, ``-inf`` at ``j = y`` (eq. 12)."""
    n = len(y)
    B = np.where(np.isnan(bounds), 0.0, bounds)
    S = scores.astype(np.float64)
    out = S - S[np.arange(n), y][:, None] + eps / 4.0 * B[:, y].T
    out[np.arange(n), y] = -np.inf
    return out


def pair_weights_from_bounds(scores: np.ndarray, y: np.ndarray, bounds: np.ndarray, eps: float) -> np.ndarray:
    """Pair weights (k x k, zero diagonal, mean 1 off the diagonal) from the pairs attaining eq. 12.

    For each example the wrong class ``i`` maximising ``f_i - f_y + eps/4 B[i, y]`` is found; the
    count of each unordered pair ``{i, y}`` is symmetrised and normalised to mean 1 over the ordered
    pairs ``i != j``. With no examples all weights are 1.
    """
    k = bounds.shape[0]
    off = ~np.eye(k, dtype=bool)
    if len(y) == 0:
        return off.astype(np.float64)
    worst = _sdp_margins(scores, y, bounds, eps).argmax(axis=1)
    counts = np.zeros((k, k))
    np.add.at(counts, (worst, y), 1.0)
    counts = counts + counts.T
    return np.where(off, counts / counts[off].mean(), 0.0)


def _atomic_write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")
    tmp.replace(path)


def _json_matrix(a: np.ndarray) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else float(v) for v in row] for row in a]


def _check_fork(saved: dict[str, Any], config: TrainConfig, epoch: int, path: Path) -> None:
    """A weighted/unweighted SDP pair before the first pair-weight refresh (see ``train(fork_from=)``)."""
    if config.reg != "sdp" or saved.get("reg") != "sdp":
        raise InputError(f"cannot fork from {path}: forking is for the weighted and unweighted SDP runs")
    if epoch > config.weight_refresh_epochs:
        raise InputError(f"cannot fork from {path}: it has {epoch} epochs, past the first pair-weight "
                         f"refresh (after epoch {config.weight_refresh_epochs}), where the runs part")
    same = dataclasses.replace(config, name=saved.get("name"), sdp_weighted=bool(saved.get("sdp_weighted")))
    _check_resume_config(saved, same, path)


_FINITE_CHECK_STEPS = 50
_NOISE_CHUNK_STEPS = 100

GRAPH_REGS = ("none", "at")
"""Configurations whose training step can be captured as a CUDA graph (:mod:`certsdp.training.graphed_step`):
their loss waits for nothing on the host. The others (the SDP regularizer's LOBPCG, the spectral power
iteration's state, ...) run eagerly on every device."""


class _ChunkedNoise:
    """Uniform [0, 1) float64 rows ``(n, INPUT_DIM)`` from ``gen``, drawn ahead ``_NOISE_CHUNK_STEPS``
    batches at a time and moved to ``device`` once per chunk.

    Rows are asked for in order, one batch at a time; they are the numbers that drawing each batch's
    rows from ``gen`` in turn would give (the CPU generator fills a tensor sequentially).
    """

    def __init__(self, gen: torch.Generator, n: int, batch_size: int, device: torch.device) -> None:
        self.gen, self.n, self.device = gen, n, device
        self.chunk_rows = _NOISE_CHUNK_STEPS * batch_size
        self.base, self.chunk = 0, torch.empty(0, INPUT_DIM, dtype=torch.float64, device=device)

    def rows(self, start: int, stop: int) -> torch.Tensor:
        if stop > self.base + len(self.chunk):
            self.base += len(self.chunk)
            if start != self.base:
                raise ValueError("rows must be asked for in order")
            count = min(self.chunk_rows, self.n - start)
            drawn = torch.rand((count, INPUT_DIM), generator=self.gen, dtype=torch.float64)
            self.chunk = drawn.to(self.device)
        return self.chunk[start - self.base:stop - self.base]


def _save_fork_point(ckpt_path: Path, out: Path) -> None:
    """Copy the checkpoint to ``FORK_POINT_NAME`` atomically: the last epoch that the weighted and
    unweighted SDP runs share, from which ``fork_from`` starts the other one."""
    tmp = out / (FORK_POINT_NAME + ".tmp")
    shutil.copyfile(ckpt_path, tmp)
    tmp.replace(out / FORK_POINT_NAME)


def _check_finite(loss_sum: torch.Tensor, epoch: int, step: int, ckpt_path: Path) -> None:
    """Raise :class:`TrainingDiverged` once the running loss sum of the epoch is NaN or infinite."""
    if not bool(torch.isfinite(loss_sum)):
        kept = f"; {ckpt_path} (the last finished epoch) is unchanged" if ckpt_path.exists() else ""
        raise TrainingDiverged(f"training diverged: the loss became {float(loss_sum)} in epoch {epoch + 1} "
                               f"by step {step + 1}{kept}")


def _check_resume_config(saved: dict[str, Any], config: TrainConfig, path: Path) -> None:
    wanted = dataclasses.asdict(config)
    # a field added after the checkpoint was written counts at its default
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                if f.default is not dataclasses.MISSING}
    saved = {**{key: val for key, val in defaults.items() if key not in saved}, **saved}
    keys = (set(saved) | set(wanted)) - {"epochs"}
    differ = sorted(key for key in keys if saved.get(key) != wanted.get(key))
    if differ:
        detail = ", ".join(f"{key}: checkpoint {saved.get(key)!r} vs requested {wanted.get(key)!r}"
                           for key in differ)
        raise InputError(f"cannot resume {path}: it was trained with another config ({detail})")


# ---------------------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    progress: bool = True,
    step_callback: Callable[[int, int, float], None] | None = None,
    fork_from: str | Path | None = None,
    cuda_graphs: bool = True,
) -> Path:
    """Train ``config`` on MNIST, checkpointing every epoch to ``out_dir``; returns the checkpoint path.

    Args:
        config: the run (see :mod:`certsdp.training.config`).
        out_dir: output folder (created); holds ``checkpoint.pt``, ``metrics.json``, ``weights.npz``.
        data_dir: MNIST folder (see :func:`certsdp.data.mnist.resolve_data_dir`).
        device: ``"cpu"`` or ``"cuda"``.
        resume: continue from ``out_dir/checkpoint.pt`` after its last finished epoch (start afresh if
            there is none). The checkpoint's config must equal ``config`` except for ``epochs``, which
            may be raised to train longer.
        progress: tqdm bars over epochs and batches.
        step_callback: if given, called as ``step_callback(epoch, step, loss)`` after every step
            (forces a device synchronisation per step on CUDA).
        fork_from: start from the checkpoint of a *weighted* SDP run instead of from scratch, for the
            unweighted one (or the other way round). Until the first refresh of the pair weights (at
            the start of epoch ``weight_refresh_epochs + 1``) all weights are 1 and the two runs are
            the same computation, so a checkpoint of one at epoch ``<= weight_refresh_epochs`` is a
            checkpoint of the other (bitwise, on CPU; tested); this saves those epochs (20 of 90 for
            the paper's SDP-NN). The configs must differ only in ``name``, ``sdp_weighted`` and
            ``epochs``. Ignored when ``resume`` finds a checkpoint in ``out_dir`` (an interrupted
            forked run continues from its own checkpoint).
        cuda_graphs: on CUDA, for the configurations in :data:`GRAPH_REGS` (NT-NN, AT-NN), capture
            the training step as a CUDA graph and replay it (:class:`certsdp.training.graphed_step.
            GraphedStep`; captured again when the learning rate changes). Same computation as the
            eager step, up to the order of floating-point operations; no effect on the CPU.

    Raises:
        InputError: CUDA unavailable, a checkpoint exists and ``resume`` is false, the checkpoint
            belongs to another config, ``out_dir`` is not a folder, missing or corrupt MNIST, ...
    """
    from tqdm import tqdm

    from certsdp.bounds.certify import certified_error_curve
    from certsdp.data.mnist import load_mnist

    if not isinstance(config, TrainConfig):
        raise InputError(f"config must be a TrainConfig, got {type(config).__name__}")
    dev = resolve_device(device)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output path {out} exists and is not a folder")
    ckpt_path = out / CHECKPOINT_NAME
    if ckpt_path.exists() and not resume:
        raise InputError(f"{ckpt_path} already exists: pass --resume (resume=True) to continue that run, "
                         "or choose another output folder")

    X_np, y_np = load_mnist("train", data_dir=data_dir, limit=config.train_limit)
    Xt_np, yt_np = load_mnist("test", data_dir=data_dir, limit=config.eval_limit)
    if len(y_np) == 0:
        raise InputError("no training examples")
    X = torch.tensor(X_np, device=dev)
    y = torch.tensor(y_np, device=dev)
    Xt = torch.tensor(Xt_np, device=dev)
    yt = torch.tensor(yt_np, device=dev)

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)  # noqa: NPY002 (legacy global state, for any code using it)
    net = TwoLayerNet(INPUT_DIM, config.hidden, NUM_CLASSES).to(dev)
    regularizer = _make_regularizer(config, dev)
    params = list(net.parameters()) + (list(regularizer.parameters()) if regularizer is not None else [])
    use_graphs = bool(cuda_graphs) and dev.type == "cuda" and config.reg in GRAPH_REGS
    optimizer = torch.optim.Adam(params, lr=config.lr, capturable=use_graphs)
    k = NUM_CLASSES
    pair_weights = torch.ones(k, k, device=dev) - torch.eye(k, device=dev)
    spectral_state: dict[str, torch.Tensor] = {}
    start_epoch, seconds, metrics = 0, 0.0, []
    forked: dict[str, Any] | None = None

    source = None
    if resume and ckpt_path.exists():  # also a forked run that was interrupted: fork_from is then ignored
        source, fork_from = ckpt_path, None
    elif fork_from is not None:
        source = Path(fork_from)
        if not source.is_file():
            raise InputError(f"checkpoint to fork from not found: {source}")
    if source is not None:
        saved_net, saved_config, extra = load_checkpoint(source)
        if fork_from is not None:
            _check_fork(saved_config, config, int(extra["epoch"]), source)
        else:
            _check_resume_config(saved_config, config, source)
        if saved_net.dims != net.dims:
            raise InputError(f"cannot resume {source}: network dims {saved_net.dims} != {net.dims}")
        net.load_state_dict(saved_net.state_dict())
        if regularizer is not None:
            if "log_c" not in (extra.get("regularizer") or {}):
                raise InputError(f"cannot resume {source}: it was written by an earlier SDP regularizer "
                                 "(dual vectors c trained directly, which stalled); train it again")
            regularizer.load_state_dict(extra["regularizer"])
        optimizer.load_state_dict(extra["optimizer"])
        set_capturable(optimizer, use_graphs)  # the checkpoint may come from the other kind of device
        pair_weights = extra["pair_weights"].to(dev)
        spectral_state = {key: val.to(dev) for key, val in extra.get("spectral_state", {}).items()}
        start_epoch, seconds, metrics = int(extra["epoch"]), float(extra["seconds"]), list(extra["metrics"])
        if start_epoch > config.epochs:
            raise InputError(f"cannot resume {source}: it has {start_epoch} epochs already, more than the "
                             f"{config.epochs} requested")
        _set_rng_state(extra["rng"], dev)
        forked = extra.get("forked_from")
        if fork_from is not None:
            forked = {"checkpoint": str(source), "config": saved_config["name"], "epoch": start_epoch}

    out.mkdir(parents=True, exist_ok=True)
    if (config.reg == "sdp" and source == ckpt_path and start_epoch == config.weight_refresh_epochs
            and not (out / FORK_POINT_NAME).exists()):
        # a run stopped right at the fork point (--epochs 20, or killed before the copy): keep it
        # before the next epoch overwrites the checkpoint
        _save_fork_point(ckpt_path, out)
    machine = machine_description(dev)
    n = len(y)
    n_batches = (n + config.batch_size - 1) // config.batch_size
    graphed: GraphedStep | None = None
    graphed_lr: float | None = None

    def step_loss(xb: torch.Tensor, yb: torch.Tensor, i: int, pgd_noise: torch.Tensor | None) -> torch.Tensor:
        return _step_loss(config, net, xb, yb, i, regularizer, pair_weights, spectral_state, pgd_noise)

    with tqdm(total=config.epochs, initial=start_epoch, desc=config.name, unit="epoch",
              disable=not progress) as epoch_bar:
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            lr = config.lr_at(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            order_gen = _epoch_generator(config.seed, epoch, _STREAM_ORDER)
            class_gen = _epoch_generator(config.seed, epoch, _STREAM_CLASS)
            order = torch.randperm(n, generator=order_gen).to(dev)
            classes = torch.randint(k, (n_batches,), generator=class_gen)
            pgd_noise = None
            if config.reg == "at":  # PGD random starts
                pgd_gen = _epoch_generator(config.seed, epoch, _STREAM_PGD)
                pgd_noise = _ChunkedNoise(pgd_gen, n, config.batch_size, dev)
            refreshed = None
            if config.sdp_weighted and epoch > 0 and epoch % config.weight_refresh_epochs == 0:
                # the bounds of the network as it is now, certified at the end of the previous epoch
                bounds = np.array(metrics[-1]["sdp_bounds"], dtype=np.float64)
                net.eval()
                train_scores = _scores(net, X).cpu().double().numpy()
                refreshed = pair_weights_from_bounds(train_scores, y_np, bounds, config.sdp_eps)
                pair_weights = torch.tensor(refreshed, dtype=pair_weights.dtype, device=dev)
            net.train()
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
            with tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False,
                      disable=not progress) as batch_bar:
                for step in range(n_batches):
                    start, stop = step * config.batch_size, min((step + 1) * config.batch_size, n)
                    idx = order[start:stop]
                    noise = pgd_noise.rows(start, stop) if pgd_noise is not None else None
                    batch = {"xb": X[idx], "yb": y[idx]} | ({} if noise is None else {"pgd_noise": noise})
                    if use_graphs and (graphed is None or graphed_lr != lr) and len(idx) == config.batch_size:
                        graphed = loss = None  # free the old graph first
                        # the class argument is unused by the GRAPH_REGS losses
                        graphed = GraphedStep(lambda xb, yb, pgd_noise=None: step_loss(xb, yb, 0, pgd_noise),
                                              optimizer, batch)
                        graphed_lr = lr
                    if graphed is not None and graphed.shapes_match(**batch):
                        loss = graphed(**batch)
                    else:
                        xb, yb = batch["xb"], batch["yb"]
                        loss = step_loss(xb, yb, int(classes[step]), noise)
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                        # keep no autograd graph alive: its AccumulateGrad nodes live on this stream,
                        # and a CUDA graph captured later on another stream would fail
                        loss = loss.detach()
                    loss_sum += loss.detach().double()
                    if step % _FINITE_CHECK_STEPS == 0 or step == n_batches - 1:  # one sync per 50 steps
                        _check_finite(loss_sum, epoch, step, ckpt_path)
                    if step_callback is not None:
                        step_callback(epoch, step, float(loss.detach()))
                    if progress and (step % 50 == 0 or step == n_batches - 1):
                        batch_bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
                    batch_bar.update(1)

            # evaluation
            net.eval()
            record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "train_loss": float(loss_sum) / n_batches}
            if refreshed is not None:
                record["pair_weights"] = _json_matrix(refreshed)
            # the attacks' rule: a tie with a wrong class is a mistake (argmax would break it by index)
            wrong = (score_margin(_scores(net, Xt), yt) >= 0).double()
            record["test_error"] = float(wrong.mean()) if len(yt) else None
            if regularizer is not None:
                bounds = regularizer.certificate_bounds(net)
                off = ~np.eye(k, dtype=bool)
                record["sdp_bound_max"] = float(np.max(bounds[off]))
                record["sdp_bound_mean"] = float(np.mean(bounds[off]))
                record["sdp_bounds"] = _json_matrix(bounds)
                if len(yt_np):  # rigorous: float64 margins rounded up (certsdp.bounds.certify)
                    record["sdp_cert_error"] = float(certified_error_curve(
                        net.to_weights(), Xt_np, yt_np, [config.sdp_eps], bounds)[0])
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            epoch_seconds = time.perf_counter() - t0
            seconds += epoch_seconds
            record["seconds"] = epoch_seconds
            record["seconds_total"] = seconds
            metrics.append(record)

            extra = {
                "epoch": epoch + 1,
                "optimizer": optimizer.state_dict(),
                "regularizer": regularizer.state_dict() if regularizer is not None else None,
                "spectral_state": {key: val.detach().cpu() for key, val in spectral_state.items()},
                "pair_weights": pair_weights.detach().cpu(),
                "rng": _rng_state(dev),
                "metrics": metrics,
                "seconds": seconds,
                "machine": machine,
                "forked_from": forked,
            }
            save_checkpoint(ckpt_path, net, dataclasses.asdict(config), extra)
            if config.reg == "sdp" and epoch + 1 == config.weight_refresh_epochs:
                _save_fork_point(ckpt_path, out)
            _atomic_write_json(out / METRICS_NAME, metrics)
            err = record["test_error"]
            epoch_bar.set_postfix(loss=f"{record['train_loss']:.4f}",
                                  err="-" if err is None else f"{err:.4f}")
            epoch_bar.update(1)

    if not metrics or start_epoch >= config.epochs:
        _atomic_write_json(out / METRICS_NAME, metrics)
    tmp = out / "weights.tmp.npz"
    net.to_weights().save(tmp)
    tmp.replace(out / WEIGHTS_NAME)
    return ckpt_path
