"""The shared l_inf attack (paper section 6): signed-gradient ascent in the box, keeping the worst point.

Attack model
    The adversary may move each input ``x`` anywhere in the box ``|x~ - x|_inf <= eps``. The box is
    *not* clipped to the pixel range by default (the certificates bound this unclipped box); with
    ``clip=(lo, hi)`` it is intersected with ``[lo, hi]^d`` (:mod:`certsdp.attacks.box`: the box of
    :func:`certsdp.numerics.box.attack_box`, rounded inward to the network's dtype, so every returned
    point lies exactly inside the real-valued box). With a clip range, inputs outside it are refused
    (:func:`certsdp.numerics.box.check_inside_clip`): the clipped box would not contain ``x``, and the
    attack error would mean nothing.

Outcome
    An example counts as *fooled* when at the returned point ``x~`` some wrong class scores at least as
    high as the true one, ``max_{i != y} f_i(x~) - f_y(x~) >= 0`` (ties count against the network, as
    a certificate needs a strictly negative bound). The clean point ``x`` is always one of the
    candidates, so a clean mistake is always counted as fooled: the adversary may leave ``x`` alone.

Every attack runs ``steps`` steps ``z <- proj(z + step_size * sign(grad objective(z)))`` from each of
its starts and keeps, per example, the worst point it visited (every iterate of every restart, plus
``x``): a misclassifying point is preferred; among equals the one with the highest ranking value. At
the end the points are checked to lie in the box (up to a tiny tolerance) and projected exactly onto
it. Settings are validated once, when an :class:`Attack` is built; inputs when it is called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from certsdp.attacks.box import Box
from certsdp.attacks.inputs import as_batch, clean_scores, eval_mode
from certsdp.attacks.settings import AttackSpec, resolve_settings
from certsdp.network.margins import score_margin
from certsdp.numerics.box import check_clip, check_eps, check_inside_clip

Objective = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``(logits, y, margin) -> (rank, ascend)``: the value points are ranked by and the one ascended."""


class _Worst:
    """Per row, the worst point seen so far: fooled first, then the highest ranking value."""

    def __init__(self, x: torch.Tensor, margin: torch.Tensor, rank: torch.Tensor) -> None:
        self.x = x.clone()
        self.fooled = margin >= 0
        self.rank = rank.detach().clone()

    def keep(self, z: torch.Tensor, margin: torch.Tensor, rank: torch.Tensor) -> None:
        fooled = margin.detach() >= 0
        rank = rank.detach()
        # torch.where rather than boolean indexing: no host-device synchronisation on CUDA; new
        # tensors rather than in-place copies: fewer kernels (the inner loop of adversarial training)
        better = (fooled > self.fooled) | ((fooled == self.fooled) & (rank > self.rank))
        self.x = torch.where(better[:, None], z, self.x)
        self.fooled = self.fooled | fooled  # where(better, fooled, best): a fooled point is kept
        self.rank = torch.where(better, rank, self.rank)


def ascend(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    box: Box,
    starts: Sequence[torch.Tensor],
    steps: int,
    step_size: float,
    objective: Objective,
    keep_last: bool = False,
) -> torch.Tensor:
    """Signed-gradient ascent of ``objective`` from each start; per row the worst point visited (or ``x``),
    or with ``keep_last`` the last iterate of the last start (Madry et al.'s adversarial training).

    Trusted arguments: ``net`` in eval mode, ``x`` inside ``box``, labels in range. Nothing here
    copies to the host, so that a training step using it can be captured as a CUDA graph.
    """

    def evaluate(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = net(z)
        margin = score_margin(logits, y)
        return (margin, *objective(logits, y, margin))

    with torch.no_grad():
        margin, rank, _ = evaluate(x)
    worst = _Worst(x, margin, rank)
    for start in starts:
        z = box.project(start)
        for _ in range(steps):
            z = z.detach().requires_grad_(True)
            with torch.enable_grad():
                margin, rank, up = evaluate(z)
                (grad,) = torch.autograd.grad(up.sum(), z)
            z = z.detach()
            worst.keep(z, margin, rank)
            z = box.project(torch.add(z, grad.sign(), alpha=step_size))
        if keep_last:
            continue
        with torch.no_grad():
            margin, rank, _ = evaluate(z)
        worst.keep(z, margin, rank)
    return z.detach() if keep_last and starts else worst.x


def uniform_noise(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """Uniform [0, 1) float64 noise from ``generator`` (on its device) or torch's global generator."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=device)


class Attack:
    """An l_inf attack with validated settings; ``attack(net, X, y)`` returns the adversarial points.

    Subclasses set :attr:`spec` (name, defaults, options), :attr:`starts_at_x` (whether the first run
    starts at ``x``; the other ``restarts`` start at uniformly random points of the box) and
    :meth:`objective`.
    """

    spec: ClassVar[AttackSpec]
    starts_at_x: ClassVar[bool]

    def __init__(
        self,
        eps: float,
        clip: tuple[float, float] | None = None,
        *,
        steps: int | None = None,
        step_size: float | None = None,
        restarts: int | None = None,
    ) -> None:
        self.eps = check_eps(eps)
        self.clip = check_clip(clip)
        settings = resolve_settings(self.spec, self.eps, steps, step_size, restarts)
        self.steps: int = settings["steps"]
        self.restarts: int = settings["restarts"]
        self.step_size: float = settings["step_size"]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def settings(self) -> dict[str, Any]:
        """``{"steps", "restarts", "step_size"}`` (those of :func:`certsdp.attacks.attack_settings`)."""
        return {"steps": self.steps, "restarts": self.restarts, "step_size": self.step_size}

    @property
    def n_random(self) -> int:
        """Number of random starts per example."""
        return self.restarts - (1 if self.starts_at_x else 0)

    def objective(
        self, logits: torch.Tensor, y: torch.Tensor, margin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rank, ascend)`` per row at scores ``logits`` with margins ``margin`` (:data:`Objective`)."""
        raise NotImplementedError

    def __call__(
        self, net: nn.Module, X: Any, y: Any, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Adversarial points of the rows of ``X``, on the network's device and in its dtype.

        Random starts are drawn in float64 from ``generator`` (on its device), or from torch's global
        generator; the network is left in the mode it was in.
        """
        x, y = self.check_batch(net, X, y)
        return self.run(net, x, y, generator=generator)

    def check_batch(
        self, net: nn.Module, X: Any, y: Any, batch_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, y)`` as checked tensors (:mod:`certsdp.attacks.inputs`), inside the clip range, with
        finite clean scores (computed ``batch_size`` rows at a time) and labels in range."""
        x, y = as_batch(net, X, y)
        check_inside_clip(x.detach().cpu().numpy(), self.clip)
        step = batch_size or max(len(x), 1)
        with eval_mode(net):
            for i in range(0, max(len(x), 1), step):
                clean_scores(net, x[i : i + step], y[i : i + step])
        return x, y

    def run(
        self,
        net: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The attack on a checked batch (:meth:`check_batch`); ``noise`` ([0, 1), float64, shape
        ``(n_random, n, d)``) gives the random starts, else they are drawn from ``generator``."""
        box = Box.around(x, self.eps, self.clip)
        # the clean point as a candidate: x itself, unless a clip range excludes it (then its projection)
        x0 = box.project(x)
        if self.eps == 0 or len(x) == 0:
            return box.checked(x0)
        starts = [x0] if self.starts_at_x else []
        if self.n_random > 0:
            if noise is None:
                noise = uniform_noise((self.n_random, *x.shape), generator)
            starts += box.uniform(noise)
        with eval_mode(net):
            x_adv = ascend(net, x0, y, box, starts, self.steps, self.step_size, self.objective)
        return box.checked(x_adv)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(eps={self.eps!r}, clip={self.clip!r}, steps={self.steps}, "
                f"restarts={self.restarts}, step_size={self.step_size!r})")
