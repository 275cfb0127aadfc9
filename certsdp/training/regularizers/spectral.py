"""``reg = "spectral"`` (Spe-NN): the factors of the spectral bound (eq. 18) for the pairs of one class.

``objective + reg_lambda * (||W||_2 + mean_{j != i} ||V_i - V_j||_2)``, with ``||W||_2`` from power
iterations warm-started at the previous step's singular vector (:func:`certsdp.training.losses.
spectral_reg`); that vector is the regularizer's state and is checkpointed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from certsdp.training.config import TrainConfig
from certsdp.training.losses import spectral_reg
from certsdp.training.regularizers.base import Regularizer, StepContext


class SpectralRegularizer(Regularizer):
    """The spectral-bound regularizer of Spe-NN; keeps the power iteration's vector between steps."""

    name = "spectral"

    def __init__(self, config: TrainConfig, dims: tuple[int, int, int], device: torch.device) -> None:
        super().__init__(config, dims, device)
        self.power_state: dict[str, torch.Tensor] = {}

    @classmethod
    def describe(cls, config: TrainConfig) -> str:
        return f"spectral x {config.reg_lambda:g}"

    def loss(self, net: nn.Module, xb: torch.Tensor, yb: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        data = self.data_loss(net, xb, yb)
        return data + self.config.reg_lambda * spectral_reg(net, ctx.i, self.power_state)

    def state_dict(self) -> dict[str, Any]:
        return {"spectral_state": {key: val.detach().cpu() for key, val in self.power_state.items()}}

    def load_state_dict(self, extra: dict[str, Any], source: str) -> None:
        self.power_state = {key: val.to(self.device) for key, val in extra.get("spectral_state", {}).items()}
