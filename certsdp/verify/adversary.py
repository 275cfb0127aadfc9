"""The attack stage: PGD from :mod:`certsdp.attacks` on the cross-entropy and on every target's margin.

Two runs per point, both :class:`certsdp.attacks.PGD` (random starts, signed steps, the worst point
kept) on the float64 twin of the network:

* ``pgd-ce``: the cross-entropy of the point (untargeted);
* ``pgd-margin``: one row per wrong class ``t``, each attacking ``g_t = f_t - f_y`` alone. PGD's
  ``margin`` loss on a two-class network whose scores are ``(f_y, f_t)`` (label 0) is exactly
  ``g_t``; :class:`PairScores` is that network for all targets at once, row ``r`` scoring
  ``(f_y, f_{t_r})``.

The attacks' points lie in the box by the attacks' own construction; the verifier still projects
them into its inner box and re-checks them in float64 (:mod:`certsdp.verify.region`). Random starts
are drawn from a generator seeded by ``(seed, index)``, so a point's attack does not depend on the
worker or the order it runs in. This is the one module of :mod:`certsdp.verify` that uses torch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from certsdp.attacks import PGD
from certsdp.network.weights import Weights


class PairScores(nn.Module):
    """Row ``r`` of a batch of ``len(targets)`` rows scores ``(f_y(x_r), f_{t_r}(x_r))``."""

    def __init__(self, weights: Weights, label: int, targets: np.ndarray) -> None:
        super().__init__()
        dt = torch.float64
        rows = np.stack([np.full(len(targets), label), targets], axis=1)
        self.register_buffer("W", torch.tensor(np.array(weights.W), dtype=dt))  # copies: Weights is read-only
        self.register_buffer("b", torch.tensor(np.array(weights.b), dtype=dt))
        self.register_buffer("P", torch.tensor(weights.V[rows], dtype=dt))  # (rows, 2, m)
        self.register_buffer("q", torch.tensor(weights.c[rows], dtype=dt))  # (rows, 2)
        # a parameter fixes the attacks' dtype and device (they read them from the first parameter)
        self.anchor = nn.Parameter(torch.zeros((), dtype=dt), requires_grad=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[0] != self.P.shape[0]:
            raise ValueError(f"PairScores takes exactly {self.P.shape[0]} rows, got {z.shape[0]}")
        hidden = torch.relu(z @ self.W.T + self.b)
        return torch.einsum("rm,rkm->rk", hidden, self.P) + self.q


def torch_twin(weights: Weights) -> nn.Module:
    """The network in float64 torch, for the attacks (points in float64, checked in float64)."""
    return weights.to_torch(torch.float64)


def _generator(seed: int, index: int) -> torch.Generator:
    """A torch generator seeded by ``(seed, index)`` alone."""
    state = int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(state)


def attack_points(weights: Weights, net: nn.Module, x: np.ndarray, label: int, index: int, eps: float,
                  clip: tuple[float, float] | None, steps: int, restarts: int,
                  seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """``(attack name, points (rows, d))`` of ``pgd-ce``, then of ``pgd-margin``, each run only when
    the caller asks for it (it stops at the first witness).

    ``net`` is the float64 torch twin of ``weights``; ``restarts = 0`` skips the attacks.
    """
    if restarts == 0 or eps == 0:
        return
    X = torch.as_tensor(x[None, :], dtype=torch.float64)
    gen = _generator(seed, index)
    ce = PGD(eps, clip, steps=steps, restarts=restarts, loss="ce")
    yield "pgd-ce", ce(net, X, torch.tensor([label]), generator=gen).detach().numpy()
    targets = np.array([t for t in range(weights.k) if t != label])
    pairs = PairScores(weights, label, targets)
    margin = PGD(eps, clip, steps=steps, restarts=restarts, loss="margin")
    rows = X.expand(len(targets), -1).contiguous()
    points = margin(pairs, rows, torch.zeros(len(targets), dtype=torch.long), generator=gen)
    yield "pgd-margin", points.detach().numpy()
