"""A Carlini-Wagner style l_inf attack: signed-gradient ascent on the CW margin loss."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from certsdp.attacks.base import Attack
from certsdp.attacks.settings import DEFAULT_RESTARTS, DEFAULT_STEPS, SPECS, AttackSpec, check_kappa


class CW(Attack):
    """Projected signed-gradient ascent on ``min(max_{i != y} f_i - f_y, kappa)``.

    Carlini & Wagner 2017, loss f6 with confidence ``kappa``: once a point is misclassified with
    margin ``kappa`` it is not pushed further. The first run starts at ``x``, the other
    ``restarts - 1`` at uniformly random points of the box. Points are ranked by the raw margin;
    ``kappa = inf`` maximises the margin itself.
    """

    spec: ClassVar[AttackSpec] = SPECS["cw"]
    starts_at_x: ClassVar[bool] = True

    def __init__(
        self,
        eps: float,
        clip: tuple[float, float] | None = None,
        *,
        steps: int | None = None,
        step_size: float | None = None,
        restarts: int | None = None,
        kappa: float = 0.0,
    ) -> None:
        self.kappa = check_kappa(kappa)
        super().__init__(eps, clip, steps=steps, step_size=step_size, restarts=restarts)

    def objective(
        self, logits: torch.Tensor, y: torch.Tensor, margin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return margin, margin.clamp(max=self.kappa)


def cw(
    net: nn.Module,
    X: Any,
    y: Any,
    eps: float,
    steps: int = DEFAULT_STEPS,
    step_size: float | None = None,
    restarts: int = DEFAULT_RESTARTS["cw"],
    clip: tuple[float, float] | None = None,
    kappa: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Carlini-Wagner style l_inf attack: projected signed-gradient ascent on the CW margin loss.

    Ascends ``min(max_{i != y} f_i - f_y, kappa)`` (:class:`CW`); the first run starts at ``x``, the
    other ``restarts - 1`` at uniformly random points of the box (drawn from ``generator``).
    """
    attack = CW(eps, clip, steps=steps, step_size=step_size, restarts=restarts, kappa=kappa)
    return attack(net, X, y, generator=generator)
