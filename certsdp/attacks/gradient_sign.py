"""The fast gradient sign method (Goodfellow et al. 2015), one step of size eps."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from certsdp.attacks.base import Attack
from certsdp.attacks.settings import SPECS, AttackSpec
from certsdp.network.margins import cross_entropy_soft_margin_step


def cross_entropy_objective(
    logits: torch.Tensor, y: torch.Tensor, margin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank by the cross-entropy; step along the sign of the soft margin's gradient.

    The steps follow the gradient of ``L = log sum_{j != y} exp f_j - f_y``
    (:class:`certsdp.network.margins.CrossEntropySoftMarginStep`): the cross-entropy is
    ``log(1 + e^L)``, an increasing function of ``L``, so the two gradients have the same sign in every
    coordinate, and ``L``'s keeps the true-class term (-1) exactly once ``p_y`` rounds to 1.
    """
    step = cross_entropy_soft_margin_step(logits, y)
    return step, step


class FGSM(Attack):
    """``x + eps * sign(grad_x CE(f(x), y))``, projected on the box; ``x`` itself if that is worse.

    One step of size ``eps`` from ``x`` (steps, restarts and step size are fixed).
    """

    spec: ClassVar[AttackSpec] = SPECS["fgsm"]
    starts_at_x: ClassVar[bool] = True

    def objective(
        self, logits: torch.Tensor, y: torch.Tensor, margin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return cross_entropy_objective(logits, y, margin)


def fgsm(
    net: nn.Module, X: Any, y: Any, eps: float, clip: tuple[float, float] | None = None
) -> torch.Tensor:
    """Fast gradient sign method: ``x + eps * sign(grad_x CE(f(x), y))``, projected on the box.

    Per example the clean point ``x`` is returned instead if it is misclassified and the FGSM point
    is not. Returns the points as a tensor on the network's device and in its dtype.
    """
    return FGSM(eps, clip)(net, X, y)
