"""One optimisation step: launched eagerly, or replayed from a captured CUDA graph.

On CUDA, for a regularizer whose step is capturable (:data:`certsdp.training.regularizers.
GRAPH_REGS`: NT-NN, AT-NN), the step (loss, backward, Adam) is captured once as a CUDA graph
(:class:`certsdp.training.graphed_step.GraphedStep`) and replayed; it is captured again when the
learning rate changes (a float baked into the graph), and a batch of another size (the last one of
an epoch) runs eagerly. Same computation as the eager step, up to the order of floating-point
operations. On the CPU every step is eager.
"""

from __future__ import annotations

import torch
from torch import nn

from certsdp.training.graphed_step import GraphedStep
from certsdp.training.regularizers import Regularizer, StepContext


class StepRunner:
    """``runner(batch, i, lr)`` takes one step on ``batch`` (``xb``, ``yb`` and the regularizer's step
    inputs) for class ``i`` and returns the detached loss (a graph's loss tensor is overwritten by the
    next replay: read or accumulate it before)."""

    def __init__(self, net: nn.Module, regularizer: Regularizer, optimizer: torch.optim.Optimizer,
                 use_graphs: bool, batch_size: int) -> None:
        self.net, self.regularizer, self.optimizer = net, regularizer, optimizer
        self.use_graphs, self.batch_size = use_graphs, batch_size
        self.graphed: GraphedStep | None = None
        self.graphed_lr: float | None = None

    def _loss(self, xb: torch.Tensor, yb: torch.Tensor, i: int, **inputs: torch.Tensor) -> torch.Tensor:
        return self.regularizer.loss(self.net, xb, yb, StepContext(i, **inputs))

    def _capture(self, batch: dict[str, torch.Tensor], lr: float) -> None:
        self.graphed = None  # free the old graph first
        # the class argument is unused by the capturable losses
        self.graphed = GraphedStep(lambda xb, yb, **inputs: self._loss(xb, yb, 0, **inputs),
                                   self.optimizer, batch)
        self.graphed_lr = lr

    def __call__(self, batch: dict[str, torch.Tensor], i: int, lr: float) -> torch.Tensor:
        full = len(batch["yb"]) == self.batch_size
        if self.use_graphs and full and (self.graphed is None or self.graphed_lr != lr):
            self._capture(batch, lr)
        if self.graphed is not None and self.graphed.shapes_match(**batch):
            return self.graphed(**batch).detach()
        inputs = {key: val for key, val in batch.items() if key not in ("xb", "yb")}
        loss = self._loss(batch["xb"], batch["yb"], i, **inputs)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        # keep no autograd graph alive: its AccumulateGrad nodes live on this stream, and a CUDA
        # graph captured later on another stream would fail
        return loss.detach()
