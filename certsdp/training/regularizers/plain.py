"""``reg = "none"`` (NT-NN): the data term alone, ``objective(f(x), y)``."""

from __future__ import annotations

import torch
from torch import nn

from certsdp.training.regularizers.base import Regularizer, StepContext


class NoRegularizer(Regularizer):
    """Normal training: cross-entropy or hinge loss, nothing added."""

    name = "none"
    graph_capturable = True

    def loss(self, net: nn.Module, xb: torch.Tensor, yb: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return self.data_loss(net, xb, yb)
