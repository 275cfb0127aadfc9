"""A run's folder and the state it resumes from: its own checkpoint (``resume``) or another run's
(``fork_from``).

The folder holds ``checkpoint.pt`` (every epoch), ``metrics.json``, ``weights.npz`` (at the end)
and, for runs whose regularizer has a fork point (SDP), ``checkpoint_before_refresh.pt``. The
checkpoint's ``extra`` holds everything needed to continue: ``epoch`` (finished epochs),
``optimizer``, the regularizer's state (``regularizer``: the SDP dual vectors and warm-start
eigenvectors; ``spectral_state``: the power iteration's vector; ``pair_weights``), ``rng`` (global
torch/numpy/CUDA states), ``metrics``, ``seconds``, ``machine`` and ``forked_from``.

A run continues only from a checkpoint whose whole payload verifies against its recorded hash
(:func:`certsdp.network.checkpoint.read_checkpoint`): a corrupted byte anywhere (Adam moments, dual
vectors, pair weights, random state) is refused, and so is a format-1 checkpoint, which has no such
hash (its weights still load for evaluation).
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from certsdp.atomic import atomic_path, check_writable
from certsdp.errors import InputError
from certsdp.network.checkpoint import Checkpoint, read_checkpoint
from certsdp.network.torch_model import TwoLayerNet
from certsdp.training.config import TrainConfig
from certsdp.training.graphed_step import set_capturable
from certsdp.training.randomness import rng_state, set_rng_state
from certsdp.training.regularizers import Regularizer, regularizer_class, unit_pair_weights

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
WEIGHTS_NAME = "weights.npz"
FORK_POINT_NAME = "checkpoint_before_refresh.pt"


@dataclass(frozen=True)
class StartPoint:
    """A verified checkpoint that a run continues from, and what the run takes over from it."""

    checkpoint: Checkpoint
    forking: bool
    epoch: int
    seconds: float
    metrics: list[dict[str, Any]]
    forked_from: dict[str, Any] | None


def check_out_dir(out: Path, resume: bool) -> Path:
    """Refuse an output path that is not a folder, or that holds a run while ``resume`` is false."""
    if out.exists() and not out.is_dir():
        raise InputError(f"output path {out} exists and is not a folder")
    ckpt_path = out / CHECKPOINT_NAME
    if ckpt_path.exists() and not resume:
        raise InputError(f"{ckpt_path} already exists: pass --resume (resume=True) to continue that run, "
                         "or choose another output folder")
    return ckpt_path


def prepare_out_dir(out: Path) -> None:
    """Create ``out`` and check that files can be written in it, before any training."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    check_writable(out / CHECKPOINT_NAME, "a file in the output folder")


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


def _check_fork(saved: dict[str, Any], config: TrainConfig, epoch: int, path: Path) -> None:
    """Two runs of a regularizer with a fork point (weighted and unweighted SDP), before it."""
    fork_epoch = regularizer_class(config).fork_epoch(config)
    if fork_epoch is None or saved.get("reg") != config.reg:
        raise InputError(f"cannot fork from {path}: forking is for the weighted and unweighted SDP runs")
    if epoch > fork_epoch:
        raise InputError(f"cannot fork from {path}: it has {epoch} epochs, past the first pair-weight "
                         f"refresh (after epoch {fork_epoch}), where the runs part")
    # the configs may differ in name, sdp_weighted and epochs only
    same = dataclasses.replace(config, name=saved.get("name"), sdp_weighted=bool(saved.get("sdp_weighted")))
    _check_resume_config(saved, same, path)


def _source(out: Path, resume: bool, fork_from: str | Path | None) -> tuple[Path, bool] | None:
    """``(checkpoint, forking)`` to start from; an interrupted forked run resumes from its own."""
    if resume and (out / CHECKPOINT_NAME).exists():
        return out / CHECKPOINT_NAME, False
    if fork_from is None:
        return None
    source = Path(fork_from)
    if not source.is_file():
        raise InputError(f"checkpoint to fork from not found: {source}")
    return source, True


def find_start_point(config: TrainConfig, out: Path, resume: bool,
                     fork_from: str | Path | None) -> StartPoint | None:
    """The checkpoint the run continues from, verified and checked against ``config``; ``None`` to
    start afresh. Raises :class:`InputError` for a corrupt, unverifiable or unsuitable checkpoint."""
    found = _source(out, resume, fork_from)
    if found is None:
        return None
    source, forking = found
    ckpt = read_checkpoint(source)
    verb = "fork from" if forking else "resume"
    if not ckpt.verified:
        raise InputError(f"cannot {verb} {source}: it is a format-{ckpt.format} checkpoint, whose resume "
                         "state (optimizer, dual vectors, pair weights, random state) carries no hash and "
                         "cannot be verified; its weights still load (certsdp evaluate), but training "
                         "must start again")
    try:
        epoch = int(ckpt.extra["epoch"])
        if forking:
            _check_fork(ckpt.config, config, epoch, source)
        else:
            _check_resume_config(ckpt.config, config, source)
        seconds, metrics = float(ckpt.extra["seconds"]), list(ckpt.extra["metrics"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"cannot {verb} {source}: malformed resume state ({type(exc).__name__}: {exc})") \
            from None
    if epoch > config.epochs:
        raise InputError(f"cannot {verb} {source}: it has {epoch} epochs already, more than the "
                         f"{config.epochs} requested")
    forked = ({"checkpoint": str(source), "config": ckpt.config["name"], "epoch": epoch} if forking
              else ckpt.extra.get("forked_from"))
    return StartPoint(ckpt, forking, epoch, seconds, metrics, forked)


def restore(point: StartPoint, net: TwoLayerNet, regularizer: Regularizer,
            optimizer: torch.optim.Optimizer, capturable: bool, device: torch.device) -> None:
    """Load the network, regularizer, optimizer and global random states of ``point``."""
    ckpt = point.checkpoint
    if ckpt.net.dims != net.dims:
        raise InputError(f"cannot resume {ckpt.path}: network dims {ckpt.net.dims} != {net.dims}")
    try:
        net.load_state_dict(ckpt.net.state_dict())
        regularizer.load_state_dict(ckpt.extra, str(ckpt.path))
        optimizer.load_state_dict(ckpt.extra["optimizer"])
        set_capturable(optimizer, capturable)  # the checkpoint may come from the other kind of device
        set_rng_state(ckpt.extra["rng"], device)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"cannot resume {ckpt.path}: malformed resume state ({type(exc).__name__}: "
                         f"{exc})") from None


def checkpoint_extra(epoch: int, optimizer: torch.optim.Optimizer, regularizer: Regularizer, k: int,
                     device: torch.device, metrics: list[dict[str, Any]], seconds: float,
                     machine: dict[str, Any], forked_from: dict[str, Any] | None) -> dict[str, Any]:
    """The checkpoint's ``extra`` after ``epoch`` finished epochs.

    The three regularizer entries are present for every regularizer (their values for one without
    that state: ``None``, ``{}`` and all pair weights 1), as in every checkpoint since format 1.
    """
    extra: dict[str, Any] = {"epoch": epoch, "optimizer": optimizer.state_dict(), "regularizer": None,
                             "spectral_state": {}, "pair_weights": unit_pair_weights(k)}
    extra.update(regularizer.state_dict())
    extra.update(rng=rng_state(device), metrics=metrics, seconds=seconds, machine=machine,
                 forked_from=forked_from)
    return extra


def save_fork_point(ckpt_path: Path, out: Path) -> None:
    """Copy the checkpoint to ``FORK_POINT_NAME`` atomically: the last epoch that the weighted and
    unweighted SDP runs share, from which ``fork_from`` starts the other one."""
    with atomic_path(out / FORK_POINT_NAME, "checkpoint") as tmp:
        shutil.copyfile(ckpt_path, tmp)


def keep_fork_point(point: StartPoint | None, fork_epoch: int | None, ckpt_path: Path, out: Path) -> None:
    """A run resumed right at its fork point (stopped there, or killed before the copy) keeps that
    checkpoint before the next epoch overwrites it."""
    if (point is not None and not point.forking and fork_epoch is not None and point.epoch == fork_epoch
            and not (out / FORK_POINT_NAME).exists()):
        save_fork_point(ckpt_path, out)

