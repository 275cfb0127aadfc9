"""The interface of a training regularizer: one step's loss, per-epoch hooks, its resumable state.

A :class:`Regularizer` is built from a :class:`certsdp.training.config.TrainConfig` and the network's
dimensions by :func:`certsdp.training.regularizers.make_regularizer`, the one place that looks at
``config.reg``. The loop calls, per epoch::

    entries = reg.on_epoch_start(epoch, net, data, history)   # e.g. the SDP pair-weight refresh
    for each batch:  loss = reg.loss(net, xb, yb, StepContext(i, **reg.step_inputs(start, stop)))
    record |= reg.epoch_metrics(net, data)                     # e.g. the SDP certificate (eq. 16)

and saves :meth:`Regularizer.state_dict` in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from certsdp.training.config import TrainConfig
from certsdp.training.data import DeviceData
from certsdp.training.losses import OBJECTIVES


@dataclass(frozen=True)
class StepContext:
    """What one step's loss needs besides the network and the batch.

    ``i``: the class whose pairs ``(i, j)`` a pairwise regularizer (fro, spectral, sdp) works on,
    drawn uniformly per step (paper section 6). ``pgd_noise``: the PGD random start of adversarial
    training, uniform [0, 1) float64 shaped like the batch.
    """

    i: int = 0
    pgd_noise: torch.Tensor | None = None


class Regularizer:
    """The training loss of one configuration (data term plus its regularizer) and the regularizer's
    state.

    Class attributes: ``name`` (the value of ``TrainConfig.reg``), ``graph_capturable`` (the step
    waits for nothing on the host and draws nothing, so on CUDA it can be captured as a CUDA graph,
    :mod:`certsdp.training.graphed_step`), ``eps_field`` (the config field holding the training
    radius, if any).
    """

    name: ClassVar[str] = ""
    graph_capturable: ClassVar[bool] = False
    eps_field: ClassVar[str | None] = None

    def __init__(self, config: TrainConfig, dims: tuple[int, int, int], device: torch.device) -> None:
        self.config, self.dims, self.device = config, dims, device
        self.objective = OBJECTIVES[config.objective]

    @classmethod
    def describe(cls, config: TrainConfig) -> str:
        """One line for ``certsdp train --list``."""
        return cls.name

    @classmethod
    def fork_epoch(cls, config: TrainConfig) -> int | None:
        """The last epoch that two runs of this regularizer share (so that one can start from the
        other's checkpoint, ``train(fork_from=)``); ``None`` if runs never share epochs."""
        return None

    def data_loss(self, net: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """``objective(f(x), y)``, averaged or summed over the batch (``config.loss_reduction``)."""
        return self.objective(net(xb), yb, reduction=self.config.loss_reduction)

    def loss(self, net: nn.Module, xb: torch.Tensor, yb: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        """The training loss of one batch (see the table in :mod:`certsdp.training.config`)."""
        raise NotImplementedError

    def parameters(self) -> list[nn.Parameter]:
        """Trainable parameters besides the network's (optimised with it by the same Adam)."""
        return []

    def on_epoch_start(self, epoch: int, net: nn.Module, data: DeviceData,
                       history: list[dict[str, Any]]) -> dict[str, Any]:
        """Prepare epoch ``epoch`` (0-based) from the metrics of the epochs before; returns entries
        for the epoch's metrics record."""
        return {}

    def step_inputs(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        """Tensors the step of batch rows ``start:stop`` takes as inputs (fields of :class:`StepContext`;
        inputs of a captured graph)."""
        return {}

    def epoch_metrics(self, net: nn.Module, data: DeviceData) -> dict[str, Any]:
        """Entries for the metrics record after an epoch."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The state to checkpoint, as entries of the checkpoint's ``extra``."""
        return {}

    def load_state_dict(self, extra: dict[str, Any], source: str) -> None:
        """Restore :meth:`state_dict` from a checkpoint's ``extra`` (``source`` names it in errors)."""
