"""``reg = "fro"`` (Fro-NN): the factors of the Frobenius bound (eq. 17) for the pairs of one class.

``objective + reg_lambda * (||W||_F + mean_{j != i} ||V_i - V_j||_2)``
(:func:`certsdp.training.losses.frobenius_reg`).
"""

from __future__ import annotations

import torch
from torch import nn

from certsdp.training.config import TrainConfig
from certsdp.training.losses import frobenius_reg
from certsdp.training.regularizers.base import Regularizer, StepContext


class FrobeniusRegularizer(Regularizer):
    """The Frobenius-bound regularizer of Fro-NN."""

    name = "fro"

    @classmethod
    def describe(cls, config: TrainConfig) -> str:
        return f"fro x {config.reg_lambda:g}"

    def loss(self, net: nn.Module, xb: torch.Tensor, yb: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return self.data_loss(net, xb, yb) + self.config.reg_lambda * frobenius_reg(net, ctx.i)
