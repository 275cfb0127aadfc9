"""``reg = "at"`` (AT-NN): ``objective + at_weight * CE(f(x_adv), y)``, ``x_adv`` from PGD.

PGD (``at_eps``, ``at_step``, ``at_steps``, one random start) in the unclipped box
(:func:`certsdp.training.losses.at_loss`). The random starts are drawn ahead from the epoch's PGD
stream (:class:`certsdp.training.randomness.ChunkedNoise`) and enter the step as an input tensor, so
the step draws nothing and waits for nothing: on CUDA it is captured as a CUDA graph.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from certsdp.training.config import TrainConfig
from certsdp.training.data import DeviceData
from certsdp.training.losses import at_loss
from certsdp.training.randomness import STREAM_PGD, ChunkedNoise, epoch_generator
from certsdp.training.regularizers.base import Regularizer, StepContext


class AdversarialTraining(Regularizer):
    """Adversarial training (Madry et al.) with the package's PGD."""

    name = "at"
    graph_capturable = True
    eps_field = "at_eps"

    def __init__(self, config: TrainConfig, dims: tuple[int, int, int], device: torch.device) -> None:
        super().__init__(config, dims, device)
        self.noise: ChunkedNoise | None = None

    @classmethod
    def describe(cls, config: TrainConfig) -> str:
        ablation = (", box clipped to [0, 1]" if config.at_clip else "") + (
            ", last iterate" if config.at_keep == "last" else "")
        return (f"at x {config.at_weight:g} (PGD eps {config.at_eps:g}, "
                f"{config.at_steps} x {config.at_step:g}{ablation})")

    def on_epoch_start(self, epoch: int, net: nn.Module, data: DeviceData,
                       history: list[dict[str, Any]]) -> dict[str, Any]:
        gen = epoch_generator(self.config.seed, epoch, STREAM_PGD)
        self.noise = ChunkedNoise(gen, len(data.y), self.config.batch_size, self.device, data.X.shape[1])
        return {}

    def step_inputs(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        assert self.noise is not None, "on_epoch_start draws the epoch's PGD starts"
        return {"pgd_noise": self.noise.rows(start, stop)}

    def loss(self, net: nn.Module, xb: torch.Tensor, yb: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        cfg = self.config
        adversarial = cfg.at_weight * at_loss(net, xb, yb, cfg.at_eps, cfg.at_step, cfg.at_steps,
                                              noise=ctx.pgd_noise, clip=cfg.at_clip, keep=cfg.at_keep)
        return self.data_loss(net, xb, yb) + adversarial
