"""Differentiable training losses and regularizers (torch) for
:class:`certsdp.network.torch_model.TwoLayerNet`.

The network is ``f(x) = V relu(W x + b) + c`` with ``W = net.hidden.weight`` (m x d) and
``V = net.out.weight`` (k x m). Every function returns a scalar tensor that autograd can
differentiate with respect to the network's parameters.

* :func:`cross_entropy`, :func:`multiclass_hinge`: the data terms.
* :func:`frobenius_reg`, :func:`spectral_reg`: the regularizers of Fro-NN and Spe-NN, built from the
  Frobenius and spectral bounds (eq. 17-18) for the pairs ``(i, j)`` of one class ``i``.
* :func:`wong_kolter_robust_loss`: the robust loss of Wong & Kolter (2017) from their LP bound.
* :func:`at_loss`: the loss at PGD adversarial examples (adversarial training).

The SDP regularizer (eq. 15) is :class:`certsdp.training.sdp_regularizer.SDPDualRegularizer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from certsdp.attacks import attack_settings, pgd_unchecked
from certsdp.errors import InputError

__all__ = [
    "OBJECTIVES",
    "cross_entropy",
    "multiclass_hinge",
    "frobenius_reg",
    "spectral_reg",
    "wong_kolter_bounds",
    "wong_kolter_robust_loss",
    "at_loss",
]


def _reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Softmax cross-entropy, averaged (``reduction="mean"``) or summed over the batch."""
    return _reduce(F.cross_entropy(logits, y, reduction="none"), reduction)


def multiclass_hinge(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Crammer-Singer multiclass hinge loss ``max(0, 1 + max_{j != y} f_j - f_y)``, averaged or summed."""
    correct = logits.gather(1, y[:, None]).squeeze(1)
    wrong = logits.scatter(1, y[:, None], -math.inf).amax(dim=1)  # one kernel; one_hot needs three
    return _reduce(torch.relu(1.0 + wrong - correct), reduction)


OBJECTIVES: dict[str, Callable[..., torch.Tensor]] = {"ce": cross_entropy, "hinge": multiclass_hinge}
"""The data terms by :attr:`certsdp.training.config.TrainConfig.objective`."""


def _pair_v_norms(net: torch.nn.Module, i: int) -> torch.Tensor:
    """``mean_{j != i} ||V_i - V_j||_2``."""
    V = net.out.weight
    k = V.shape[0]
    others = [j for j in range(k) if j != i]
    return torch.linalg.vector_norm(V[i][None, :] - V[others], dim=1).mean()


def frobenius_reg(net: torch.nn.Module, i: int) -> torch.Tensor:
    """``||W||_F + mean_{j != i} ||V_i - V_j||_2``.

    The paper regularizes ``lambda (||W||_F + ||V_i - V_j||_2)`` for the pairs of a sampled class
    ``i`` (the factors of the Frobenius bound, eq. 17); averaging over the ``k - 1`` pairs keeps one
    ``||W||_F`` term per step.
    """
    return torch.linalg.matrix_norm(net.hidden.weight, ord="fro") + _pair_v_norms(net, i)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.linalg.vector_norm(x).clamp_min(torch.finfo(x.dtype).tiny)


def spectral_reg(net: torch.nn.Module, i: int, state: dict, iters: int = 3) -> torch.Tensor:
    """``||W||_2 + mean_{j != i} ||V_i - V_j||_2`` (the factors of the spectral bound, eq. 18).

    ``||W||_2`` is estimated by ``iters`` power iterations per call from a persistent right singular
    vector ``state["v"]`` (created on first use from a fixed seed, so no global random state is
    used; keep ``state`` between calls and in checkpoints). The value returned is the Rayleigh
    quotient ``u^T W v`` with ``u, v`` detached, whose gradient ``u v^T`` is the gradient of the top
    singular value when ``u, v`` are exact.
    """
    W = net.hidden.weight
    with torch.no_grad():
        Wd = W.detach()
        v = state.get("v")
        if v is None or v.shape != (W.shape[1],):
            gen = torch.Generator().manual_seed(0)
            v = torch.randn(W.shape[1], generator=gen, dtype=torch.float64)
        v = _unit(v.to(device=W.device, dtype=W.dtype))
        u = _unit(Wd @ v)
        for _ in range(iters):
            v = _unit(Wd.T @ u)
            u = _unit(Wd @ v)
        state["v"] = v
    sigma = u @ (W @ v)
    return sigma + _pair_v_norms(net, i)


def wong_kolter_bounds(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Wong & Kolter LP upper bounds ``U[n, j] >= max_{|x~ - x_n|_inf <= eps} f_j(x~) - f_{y_n}(x~)``.

    Same formulas as :mod:`certsdp.bounds.lp` (one hidden layer, unclipped box), in the network's
    dtype and differentiable, without the rounding margins: interval bounds ``l, u = W x + b -/+ eps
    |W| 1``; dead units (``u <= 0``) drop out, active units (``l >= 0``) keep slope 1; an unstable unit
    gets slope ``a = u / (u - l)`` and, where ``v_h = V_j - V_y`` is positive, the upper-chord
    intercept ``-v_h a l``; the affine upper bound ``g^T z + sum t`` with ``g = v a`` is maximised over
    the box in closed form, ``q^T x + eps ||q||_1 + g^T b + sum t + (c_j - c_y)`` with ``q = W^T g``.
    Returns ``(n, k)`` with ``U[n, y_n] = 0``.
    """
    W, b = net.hidden.weight, net.hidden.bias
    V, c = net.out.weight, net.out.bias
    x = x.flatten(1).to(W.dtype)
    z = x @ W.T + b
    r = eps * W.abs().sum(dim=1)
    lo, hi = z - r, z + r
    unstable = (lo < 0) & (hi > 0)
    active = lo >= 0
    denom = torch.where(unstable, hi - lo, torch.ones_like(hi))
    a = torch.where(unstable, hi / denom, active.to(W.dtype))  # (n, m)
    Dv = V[None, :, :] - V[y][:, None, :]  # (n, k, m): v = V_j - V_y
    Dc = c[None, :] - c[y][:, None]  # (n, k)
    G = Dv * a[:, None, :]
    chord = torch.where(unstable[:, None, :] & (Dv > 0), -G * lo[:, None, :], torch.zeros_like(G))
    q = G @ W  # (n, k, d)
    value = (q * x[:, None, :]).sum(dim=2) + eps * q.abs().sum(dim=2) + G @ b + chord.sum(dim=2) + Dc
    return value


def wong_kolter_robust_loss(
    net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float
) -> torch.Tensor:
    """Wong & Kolter's robust loss: cross-entropy with the LP upper bounds as logits.

    The logits are the upper bounds on ``f_j - f_y`` over the box (:func:`wong_kolter_bounds`),
    i.e. the negated dual objectives ``-J`` of Wong & Kolter, with 0 for ``j = y``; the loss is
    ``CE(U, y)``, an upper bound on the worst-case cross-entropy in the box.
    """
    return F.cross_entropy(wong_kolter_bounds(net, x, y, eps), y)


#: which PGD point adversarial training uses: the worst visited (this package's attacks) or the last
AT_KEEP = ("worst", "last")


def at_loss(
    net: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    step: float,
    steps: int,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    clip: bool = False,
    keep: str = "worst",
) -> torch.Tensor:
    """Cross-entropy at PGD adversarial examples (one random start; the points of :func:`certsdp.
    attacks.pgd` with ``restarts=1``, computed by :func:`certsdp.attacks.pgd_unchecked`).

    The attack ascends the cross-entropy with ``steps`` signed steps of size ``step`` in the unclipped
    box ``|x~ - x|_inf <= eps`` (the package's attack model) and keeps the worst point visited. The
    random start comes from ``noise`` (uniform [0, 1), float64, shaped like ``x``) or, without it, is
    drawn from ``generator`` (on the generator's device; nothing is drawn when ``eps`` is 0). Nothing
    waits for the device, so a training step using it can be captured as a CUDA graph
    (:mod:`certsdp.training.graphed_step`). The adversarial points are detached: the gradient is that of the
    loss at fixed ``x_adv``. The ablations of AT-NN's training (:class:`~certsdp.training.config.
    TrainConfig`'s ``at_clip`` and ``at_keep``): ``clip`` intersects the box with ``[0, 1]^d``, and
    ``keep="last"`` takes PGD's last iterate instead of the worst point visited.

    Checked (from Python values and shapes alone, so also inside a capture): ``eps``, ``step``,
    ``steps`` and the shapes of ``x``, ``y`` and ``noise`` (:class:`InputError`). Not checked, since
    that would need the values on the host: finite inputs and labels in range (the training loop
    takes them from validated MNIST).
    """
    settings = attack_settings("pgd", eps, steps, step, 1)
    eps = float(eps)
    x = x.flatten(1).to(net.hidden.weight.dtype)
    if y.shape != (x.shape[0],):
        raise InputError(f"at_loss: y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    if noise is None:
        device = generator.device if generator is not None else torch.device("cpu")
        noise = (torch.rand(x.shape, generator=generator, dtype=torch.float64, device=device) if eps > 0
                 else torch.zeros(x.shape, dtype=torch.float64))
    elif noise.shape != x.shape:  # a broadcast noise would give every row the same random start
        raise InputError(f"at_loss: noise must have the shape of x, {tuple(x.shape)}, "
                         f"got {tuple(noise.shape)}")
    noise = noise.to(device=x.device, dtype=torch.float64)
    if keep not in AT_KEEP:
        raise InputError(f"at_loss: keep must be one of {', '.join(AT_KEEP)}, got {keep!r}")
    x_adv = pgd_unchecked(net, x, y, eps, settings["steps"], settings["step_size"], noise,
                          clip=(0.0, 1.0) if clip else None, keep_last=keep == "last").detach()
    return F.cross_entropy(net(x_adv), y)
