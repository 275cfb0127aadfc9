"""``reg = "lp"`` (LP-NN): the robust loss of Wong & Kolter (2017) at ``lp_eps``, alone.

``CE(U, y)`` with ``U`` the LP upper bounds on ``f_j - f_y`` over the box
(:func:`certsdp.training.losses.wong_kolter_robust_loss`); ``objective`` must be ``ce``.
"""

from __future__ import annotations

import torch
from torch import nn

from certsdp.training.config import TrainConfig
from certsdp.training.losses import wong_kolter_robust_loss
from certsdp.training.regularizers.base import Regularizer, StepContext


class LPRobustLoss(Regularizer):
    """Wong & Kolter's robust training."""

    name = "lp"
    eps_field = "lp_eps"

    @classmethod
    def describe(cls, config: TrainConfig) -> str:
        return f"Wong-Kolter robust loss eps {config.lp_eps:g}"

    def loss(self, net: nn.Module, xb: torch.Tensor, yb: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return wong_kolter_robust_loss(net, xb, yb, self.config.lp_eps)
