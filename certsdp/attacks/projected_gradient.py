"""Projected gradient descent (Madry et al. 2018): signed steps from random starts in the box."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from certsdp.attacks.base import Attack, ascend
from certsdp.attacks.box import Box
from certsdp.attacks.gradient_sign import cross_entropy_objective
from certsdp.attacks.inputs import eval_mode
from certsdp.attacks.settings import DEFAULT_RESTARTS, DEFAULT_STEPS, SPECS, AttackSpec, check_loss


def margin_objective(
    logits: torch.Tensor, y: torch.Tensor, margin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank by and ascend the score margin ``max_{i != y} f_i - f_y``."""
    return margin, margin


class PGD(Attack):
    """Projected signed-gradient ascent on ``loss`` ("ce" or "margin") from uniformly random starts.

    Each of ``restarts`` runs starts at a uniformly random point of the box and takes ``steps`` steps
    ``z <- proj(z + step_size * sign(grad))``, ``step_size`` defaulting to ``2.5 * eps / steps``.
    """

    spec: ClassVar[AttackSpec] = SPECS["pgd"]
    starts_at_x: ClassVar[bool] = False

    def __init__(
        self,
        eps: float,
        clip: tuple[float, float] | None = None,
        *,
        steps: int | None = None,
        step_size: float | None = None,
        restarts: int | None = None,
        loss: str = "ce",
    ) -> None:
        super().__init__(eps, clip, steps=steps, step_size=step_size, restarts=restarts)
        self.loss = check_loss(loss)

    def objective(
        self, logits: torch.Tensor, y: torch.Tensor, margin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.loss == "ce":
            return cross_entropy_objective(logits, y, margin)
        return margin_objective(logits, y, margin)


def pgd(
    net: nn.Module,
    X: Any,
    y: Any,
    eps: float,
    steps: int = DEFAULT_STEPS,
    step_size: float | None = None,
    restarts: int = DEFAULT_RESTARTS["pgd"],
    clip: tuple[float, float] | None = None,
    loss: str = "ce",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected (signed) gradient ascent on ``loss`` ("ce" or "margin") in the l_inf box.

    Each of ``restarts`` runs starts from a uniformly random point of the box (drawn in float64 from
    ``generator``, on the generator's device, or from torch's global generator) and takes ``steps``
    steps ``z <- proj(z + step_size * sign(grad))``, with ``step_size`` defaulting to
    ``2.5 * eps / steps``. Per example the worst point visited is returned
    (:mod:`certsdp.attacks.base`).
    """
    attack = PGD(eps, clip, steps=steps, step_size=step_size, restarts=restarts, loss=loss)
    return attack(net, X, y, generator=generator)


def pgd_unchecked(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    noise: torch.Tensor,
    clip: tuple[float, float] | None = None,
    keep_last: bool = False,
) -> torch.Tensor:
    """PGD on the cross-entropy from one random start, for the inner loop of adversarial training.

    The points of ``pgd(net, x, y, eps, steps, step_size, restarts=1)`` in the unclipped box whose
    random start is drawn from ``noise`` (uniform [0, 1), float64, shape ``x.shape``; :func:`pgd` draws
    the same from its generator): the worst point visited, bitwise the same on the CPU. Without
    :func:`pgd`'s checks (shapes, finite inputs and scores, labels, the final box check), which copy
    to the host: nothing here waits for the device, so that a training step can be captured as a
    CUDA graph. ``x`` must be a finite ``(n, d)`` batch in the network's dtype and device, ``y`` its
    labels, ``eps`` a checked float and ``steps``, ``step_size`` as :func:`certsdp.attacks.
    attack_settings` returns them. Options of adversarial training's ablations: ``clip`` intersects the
    box with ``[clip[0], clip[1]]^d`` (``x`` must lie in it), ``keep_last`` returns the last iterate
    instead of the worst point visited.
    """
    if eps == 0:
        return x.detach().clone()
    box = Box.around(x, eps, clip)
    with eval_mode(net):
        start = box.uniform(noise[None])[0]
        return ascend(net, x.detach(), y, box, [start], steps, step_size, cross_entropy_objective,
                      keep_last=keep_last)
