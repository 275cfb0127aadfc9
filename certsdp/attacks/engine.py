"""Batched l_inf attacks on a classifier (paper section 6): FGSM, PGD and a Carlini-Wagner style attack.

Attack model
    The adversary may move each input ``x`` anywhere in the box ``|x~ - x|_inf <= eps``. The box is
    *not* clipped to the pixel range by default (the certificates bound this unclipped box); with
    ``clip=(lo, hi)`` it is intersected with ``[lo, hi]^d``. The box is that of
    :func:`certsdp.numerics.box.attack_box`, computed in float64 around ``x`` (as cast to the network's dtype)
    and then rounded *inward* to the network's dtype, so every returned point lies exactly inside the
    real-valued box.

Outcome
    An example counts as *fooled* when at the returned point ``x~`` some wrong class scores at least as
    high as the true one, ``max_{i != y} f_i(x~) - f_y(x~) >= 0`` (ties count against the network, as
    a certificate needs a strictly negative bound). The clean point ``x`` is always one of the
    candidates, so a clean mistake is always counted as fooled: the adversary may leave ``x`` alone.
    With a clip range, inputs outside it are refused (:func:`certsdp.numerics.box.check_inside_clip`): the
    clipped box would not contain ``x``, and the attack error would mean nothing.

Every attack keeps, per example, the worst point it visited (every iterate of every restart, plus
``x``): a misclassifying point is preferred; among equals the one with the highest attack objective.
At the end the points are checked to lie in the box (up to a tiny tolerance), projected exactly onto
it, and "fooled" is recomputed from them with the network in its own dtype.

Attacks work on any ``torch.nn.Module`` mapping an ``(n, d)`` batch to ``(n, k)`` scores (e.g.
:class:`certsdp.network.torch_model.TwoLayerNet`), on the device and in the dtype of its
parameters. The network
is put in eval mode for the attack (its previous mode is restored afterwards) and its parameters are
never modified; gradients are taken with respect to the input only.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from certsdp.errors import InputError
from certsdp.numerics.box import check_clip, check_eps, check_inside_clip

ATTACKS = ("fgsm", "pgd", "cw")
LOSSES = ("ce", "margin")

DEFAULT_STEPS = 100
DEFAULT_RESTARTS = {"fgsm": 1, "pgd": 5, "cw": 1}
STEP_SIZE_FACTOR = 2.5
"""Default step size is ``2.5 * eps / steps`` (Madry et al. 2018): the iterates can travel 2.5 box
half-widths, enough to cross the whole box (2 half-widths) from any start, with sign steps fine
enough to settle near a vertex or a face."""

_BOX_TOL = 1e-6


# ----------------------------------------------------------------------------------------------
# validation and set-up


def attack_settings(
    attack: str,
    eps: float,
    steps: int | None = None,
    step_size: float | None = None,
    restarts: int | None = None,
) -> dict[str, Any]:
    """Validated ``{"steps", "restarts", "step_size"}`` of ``attack`` with defaults filled in.

    FGSM is one step of size ``eps`` from ``x`` (``steps=1, restarts=1, step_size=eps``) and takes no
    other values; PGD and CW default to 100 steps of size ``2.5 * eps / steps``, with 5 restarts
    for PGD (as in the paper) and 1 for CW.
    """
    if attack not in ATTACKS:
        raise InputError(f"unknown attack {attack!r}; choose one of {', '.join(ATTACKS)}")
    eps = check_eps(eps)
    if attack == "fgsm":
        if steps not in (None, 1) or restarts not in (None, 1) or step_size not in (None, eps):
            raise InputError("fgsm is a single step of size eps; it takes no steps, restarts or step size")
        return {"steps": 1, "restarts": 1, "step_size": eps}
    steps = DEFAULT_STEPS if steps is None else steps
    restarts = DEFAULT_RESTARTS[attack] if restarts is None else restarts
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"steps must be an integer >= 1, got {steps!r}")
    if isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) or restarts < 1:
        raise InputError(f"restarts must be an integer >= 1, got {restarts!r}")
    if step_size is None:
        step_size = STEP_SIZE_FACTOR * eps / int(steps)
    else:
        try:
            step_size = float(step_size)
        except (TypeError, ValueError):
            raise InputError(f"step_size must be a number, got {step_size!r}") from None
        if not math.isfinite(step_size) or step_size < 0:
            raise InputError(f"step_size must be finite and >= 0, got {step_size!r}")
    return {"steps": int(steps), "restarts": int(restarts), "step_size": float(step_size)}


def _net_place(net: nn.Module) -> tuple[torch.device, torch.dtype]:
    for p in net.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def _prepare(
    net: nn.Module, X: Any, y: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.device, torch.dtype]:
    device, dtype = _net_place(net)
    if isinstance(X, np.ndarray) and not X.flags.writeable:
        X = X.copy()  # e.g. the read-only cached MNIST arrays; torch warns on read-only memory
    if isinstance(y, np.ndarray) and not y.flags.writeable:
        y = y.copy()
    X = torch.as_tensor(X)
    y = torch.as_tensor(y)
    if X.ndim != 2:
        raise InputError(f"inputs: X must be 2-dimensional (n, d), got shape {tuple(X.shape)}")
    if not X.is_floating_point():
        X = X.to(torch.float64)
    if not bool(torch.isfinite(X).all()):
        raise InputError("inputs: X has NaN or infinite entries")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise InputError(f"inputs: y must have shape ({X.shape[0]},), got {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise InputError(f"inputs: labels must be integers, got dtype {y.dtype}")
    X = X.to(device=device, dtype=dtype)
    y = y.to(device=device, dtype=torch.long)
    return X, y, device, dtype


def _round_inward(bound64: torch.Tensor, dtype: torch.dtype, up: bool) -> torch.Tensor:
    """``bound64`` in ``dtype``, rounded toward the inside of the box (up for lo, down for hi)."""
    out = bound64.to(dtype)
    back = out.to(torch.float64)
    if up:
        bad = back < bound64
        return torch.where(bad, torch.nextafter(out, torch.full_like(out, math.inf)), out)
    bad = back > bound64
    return torch.where(bad, torch.nextafter(out, torch.full_like(out, -math.inf)), out)


def box_bounds(
    X: torch.Tensor, eps: float, clip: tuple[float, float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The attack box of :func:`certsdp.numerics.box.attack_box` in ``X``'s dtype and device, rounded inward.

    The float64 corners are rounded toward the inside of the box, so that every point of
    ``[lo, hi]`` lies in the exact real box. Where the box is a single float64 point that the dtype
    cannot represent (the input lies more than ``eps`` outside a clip bound that is not representable)
    the corner is rounded to nearest instead.
    """
    from certsdp.numerics.box import attack_box

    lo_np, hi_np = attack_box(X.detach().cpu().to(torch.float64).numpy(), eps, clip)
    lo64 = torch.from_numpy(lo_np).to(X.device)
    hi64 = torch.from_numpy(hi_np).to(X.device)
    lo = _round_inward(lo64, X.dtype, up=True)
    hi = _round_inward(hi64, X.dtype, up=False)
    empty = lo > hi
    if bool(empty.any()):
        nearest = lo64.to(X.dtype)
        lo = torch.where(empty, nearest, lo)
        hi = torch.where(empty, nearest, hi)
    return lo, hi


def unclipped_box(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The unclipped box of :func:`box_bounds` (``clip=None``) in torch operations alone.

    The same corners, bitwise: ``x -/+ eps`` in float64, rounded inward to ``x``'s dtype. Nothing is
    validated and nothing is copied to the host, so it runs inside a CUDA graph; ``x`` must be finite
    and ``eps`` a checked float (:func:`certsdp.numerics.box.check_eps`).
    """
    x64 = x.detach().to(torch.float64)
    return _round_inward(x64 - eps, x.dtype, up=True), _round_inward(x64 + eps, x.dtype, up=False)


def score_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max_{i != y} f_i - f_y`` per row; ``>= 0`` is a mistake (ties count against the network)."""
    correct = logits.gather(1, y[:, None]).squeeze(1)
    # scatter, not F.one_hot: one kernel instead of three (the PGD inner loop of adversarial training
    # runs it 41 times a step), and no label check on the host (one_hot makes one on the CPU)
    wrong = logits.scatter(1, y[:, None], -math.inf)
    return wrong.amax(dim=1) - correct


def _clean_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)``, with InputError for an input width the network does not take or non-finite scores.

    A NaN score would make every comparison false, so that no example could ever count as fooled:
    an attack on a network with NaN weights would silently report 0% error.
    """
    try:
        logits = net(x)
    except RuntimeError as exc:
        raise InputError(f"the network does not accept inputs of shape {tuple(x.shape)}: {exc}") from None
    if not bool(torch.isfinite(logits).all()):
        raise InputError("the network's scores at the clean inputs are NaN or infinite (NaN/inf weights?)")
    return logits


def _check_labels(logits: torch.Tensor, y: torch.Tensor) -> None:
    if logits.ndim != 2 or logits.shape[0] != y.shape[0]:
        raise InputError(f"network output has shape {tuple(logits.shape)}, expected ({y.shape[0]}, k)")
    k = logits.shape[1]
    if k < 2:
        raise InputError(f"network has {k} output(s); need at least 2 classes")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        raise InputError(f"labels must lie in [0, {k - 1}], got range [{int(y.min())}, {int(y.max())}]")


def soft_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``log sum_{j != y} exp f_j - f_y`` per row: a smooth :func:`score_margin`, and the cross-entropy
    is ``log(1 + exp(soft_margin))``. Its gradient is exact in the true class (-1) at any confidence."""
    correct = logits.gather(1, y[:, None]).squeeze(1)
    return logits.scatter(1, y[:, None], -math.inf).logsumexp(dim=1) - correct


class _CrossEntropySoftMarginStep(torch.autograd.Function):
    """Per-row cross-entropy whose backward is the gradient of :func:`soft_margin`, for sign steps.

    Forward: ``F.cross_entropy(logits, y, reduction="none")`` (the ranking objective). Backward:
    ``grad * (w - e_y)`` with ``w`` the softmax over the wrong classes, i.e. the gradient of ``L`` (the
    cross-entropy's gradient divided by ``1 - p_y > 0``: the same signs, without the cancellation in
    ``p_y - 1``). Not a derivative of the forward value: use it only where the direction matters. It
    costs four kernels in the backward, where autograd through :func:`soft_margin` costs about twenty
    (the PGD of adversarial training runs it 40 times a step).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, y)
        return F.cross_entropy(logits, y, reduction="none")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, y = ctx.saved_tensors
        wrong = torch.softmax(logits.scatter(1, y[:, None], -math.inf), dim=1)
        return grad[:, None] * wrong.scatter(1, y[:, None], -1.0), None


def _set_eval(net: nn.Module) -> bool:
    was_training = net.training
    net.eval()
    return was_training


# ----------------------------------------------------------------------------------------------
# the attack engine


def _attack_batch(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    starts: Sequence[torch.Tensor],
    steps: int,
    step_size: float,
    loss: str,
    kappa: float | None,
) -> torch.Tensor:
    """Signed-gradient ascent from each start, keeping per row the worst point visited (and ``x``).

    ``loss`` is the objective used to rank points and whose gradient sign gives the steps ("ce" or
    "margin"); with ``kappa`` (CW) the ascended objective is ``min(margin, kappa)`` while points are
    ranked by the raw margin.

    For "ce" the steps follow the gradient of :func:`soft_margin` instead, ``L = log sum_{j != y}
    exp f_j - f_y`` (:class:`_CrossEntropySoftMarginStep`): the cross-entropy is ``log(1 + exp L)``,
    an increasing function of ``L``, so the two gradients have the same sign in every coordinate.
    Computed through the softmax, the cross-entropy's gradient loses its true-class term once
    ``p_y`` rounds to 1 (a logit gap above ~17 in float32, ~37 in float64). On our NT-NN, FGSM at
    eps 0.05 fooled 56.2% of the first 1,000 test images that way (63.9% with a float64 network),
    and 81.4% with ``L`` (in either precision): ``L``'s gradient keeps the true-class term, -1,
    exactly.
    """

    def evaluate(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = net(z)
        margin = score_margin(logits, y)
        if loss == "ce":
            rank = ascend = _CrossEntropySoftMarginStep.apply(logits, y)
        else:
            rank = margin
            ascend = margin if kappa is None else margin.clamp(max=kappa)
        return margin, rank, ascend

    with torch.no_grad():
        margin, rank, _ = evaluate(x)
    best = {"x": x.clone(), "fooled": margin >= 0, "rank": rank.detach().clone()}

    def keep(z: torch.Tensor, margin: torch.Tensor, rank: torch.Tensor) -> None:
        fooled = margin.detach() >= 0
        rank = rank.detach()
        # torch.where rather than boolean indexing: no host-device synchronisation on CUDA; new
        # tensors rather than in-place copies: fewer kernels (the inner loop of adversarial training)
        better = (fooled > best["fooled"]) | ((fooled == best["fooled"]) & (rank > best["rank"]))
        best["x"] = torch.where(better[:, None], z, best["x"])
        best["fooled"] = best["fooled"] | fooled  # where(better, fooled, best): a fooled point is kept
        best["rank"] = torch.where(better, rank, best["rank"])

    for start in starts:
        z = torch.clamp(start, lo, hi)
        for t in range(steps + 1):
            if t == steps:
                with torch.no_grad():
                    margin, rank, _ = evaluate(z)
                keep(z, margin, rank)
                break
            z = z.detach().requires_grad_(True)
            with torch.enable_grad():
                margin, rank, ascend = evaluate(z)
                (grad,) = torch.autograd.grad(ascend.sum(), z)
            z = z.detach()
            keep(z, margin, rank)
            z = torch.clamp(torch.add(z, grad.sign(), alpha=step_size), lo, hi)
    return best["x"]


def _finalize(x_adv: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Check that ``x_adv`` lies in ``[lo, hi]`` (tiny tolerance), then project it exactly."""
    scale = 1.0 + float(torch.maximum(lo.abs().max(), hi.abs().max())) if lo.numel() else 1.0
    tol = _BOX_TOL * scale
    if x_adv.numel() and not bool(((x_adv >= lo - tol) & (x_adv <= hi + tol)).all()):
        worst = float(torch.maximum(lo - x_adv, x_adv - hi).max())
        raise AssertionError(f"attack left the eps-box by {worst:.3g} (tolerance {tol:.1g})")
    return torch.clamp(x_adv.detach(), lo, hi)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=device)


def _random_starts(noise: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> list[torch.Tensor]:
    """Uniform points of the box from ``noise`` in [0, 1) of shape ``(restarts, n, d)``."""
    lo64, hi64 = lo.to(torch.float64), hi.to(torch.float64)
    noise = noise.to(device=lo.device, dtype=torch.float64)
    return [torch.clamp((lo64 + u * (hi64 - lo64)).to(lo.dtype), lo, hi) for u in noise]


def _run(
    attack: str,
    net: nn.Module,
    X: Any,
    y: Any,
    eps: float,
    *,
    clip: Sequence[float] | None,
    steps: int | None,
    step_size: float | None,
    restarts: int | None,
    loss: str,
    kappa: float | None,
    noise: torch.Tensor | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``attack`` on one batch; returns ``(x_adv, fooled)``."""
    eps = check_eps(eps)
    clip = check_clip(clip)
    settings = attack_settings(attack, eps, steps, step_size, restarts)
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    x, y, _, _ = _prepare(net, X, y)
    check_inside_clip(x.detach().cpu().numpy(), clip)
    lo, hi = box_bounds(x, eps, clip)
    was_training = _set_eval(net)
    try:
        with torch.no_grad():
            _check_labels(_clean_logits(net, x) if len(x) else torch.zeros(0, 2, device=x.device), y)
        # the clean point as a candidate: x itself, unless a clip range excludes it (then its projection)
        x0 = torch.clamp(x, lo, hi)
        if eps == 0 or len(x) == 0:
            x_adv = x0
        else:
            n_random = settings["restarts"] - (1 if attack in ("fgsm", "cw") else 0)
            starts = [x0] if attack in ("fgsm", "cw") else []
            if n_random > 0:
                if noise is None:
                    noise = _uniform((n_random, *x.shape), generator)
                starts += _random_starts(noise, lo, hi)
            x_adv = _attack_batch(
                net, x0, y, lo, hi, starts, settings["steps"], settings["step_size"], loss, kappa
            )
        x_adv = _finalize(x_adv, lo, hi)
        with torch.no_grad():
            fooled = score_margin(net(x_adv), y) >= 0
    finally:
        net.train(was_training)
    return x_adv, fooled


# ----------------------------------------------------------------------------------------------
# public attacks


def fgsm(
    net: nn.Module, X: Any, y: Any, eps: float, clip: tuple[float, float] | None = None
) -> torch.Tensor:
    """Fast gradient sign method: ``x + eps * sign(grad_x CE(f(x), y))``, projected on the box.

    Per example the clean point ``x`` is returned instead if it is misclassified and the FGSM point
    is not. Returns the points as a tensor on the network's device and in its dtype.
    """
    return _run(
        "fgsm", net, X, y, eps, clip=clip, steps=None, step_size=None, restarts=None,
        loss="ce", kappa=None, noise=None, generator=None,
    )[0]


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
    ``2.5 * eps / steps``. Per example the worst point visited is returned (see module docstring).
    """
    return _run(
        "pgd", net, X, y, eps, clip=clip, steps=steps, step_size=step_size, restarts=restarts,
        loss=loss, kappa=None, noise=None, generator=generator,
    )[0]


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

    Ascends ``min(max_{i != y} f_i - f_y, kappa)`` (Carlini & Wagner 2017, loss f6 with confidence
    ``kappa``: once a point is misclassified with margin ``kappa`` it is not pushed further). The first
    run starts at ``x``, the other ``restarts - 1`` at uniformly random points of the box. Points are
    ranked by the raw margin; ``kappa = inf`` maximises the margin itself.
    """
    try:
        kappa = float(kappa)
    except (TypeError, ValueError):
        raise InputError(f"kappa must be a number, got {kappa!r}") from None
    if math.isnan(kappa):
        raise InputError("kappa must not be NaN")
    return _run(
        "cw", net, X, y, eps, clip=clip, steps=steps, step_size=step_size, restarts=restarts,
        loss="margin", kappa=kappa, noise=None, generator=generator,
    )[0]


def pgd_unchecked(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    noise: torch.Tensor,
) -> torch.Tensor:
    """PGD on the cross-entropy from one random start, for the inner loop of adversarial training.

    The points of ``pgd(net, x, y, eps, steps, step_size, restarts=1)`` in the unclipped box whose
    random start is drawn from ``noise`` (uniform [0, 1), float64, shape ``x.shape``; :func:`pgd` draws
    the same from its generator): the worst point visited, bitwise the same on the CPU. Without
    :func:`pgd`'s checks (shapes, finite inputs and scores, labels, the final box check), which copy
    to the host: nothing here waits for the device, so that a training step can be captured as a
    CUDA graph. ``x`` must be a finite ``(n, d)`` batch in the network's dtype and device, ``y`` its
    labels and ``eps`` a checked float.
    """
    if eps == 0:
        return x.detach().clone()
    lo, hi = unclipped_box(x, eps)
    was_training = _set_eval(net)
    try:
        start = _random_starts(noise[None], lo, hi)[0]
        return _attack_batch(net, x.detach(), y, lo, hi, [start], steps, step_size, "ce", None)
    finally:
        net.train(was_training)


def misclassified(net: nn.Module, X: Any, y: Any) -> np.ndarray:
    """Per example, whether ``max_{i != y} f_i(x) - f_y(x) >= 0`` (the rule attacks use for "fooled")."""
    x, yy, _, _ = _prepare(net, X, y)
    was_training = _set_eval(net)
    try:
        with torch.no_grad():
            logits = _clean_logits(net, x)
            _check_labels(logits, yy)
            return (score_margin(logits, yy) >= 0).cpu().numpy()
    finally:
        net.train(was_training)


def _example_noise(seed: int, start: int, stop: int, restarts: int, d: int) -> torch.Tensor:
    """Uniform [0, 1) noise of shape ``(restarts, stop - start, d)`` seeded per example index.

    Seeding per ``(seed, index)`` makes reports independent of the batch size and of the device.
    """
    rows = [np.random.default_rng([seed, i]).random((restarts, d)) for i in range(start, stop)]
    return torch.from_numpy(np.stack(rows, axis=1))


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or :class:`InputError` unless it is an integer >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def attack_report(
    net: nn.Module,
    X: Any,
    y: Any,
    eps: float,
    attack: str,
    *,
    clip: tuple[float, float] | None = None,
    batch_size: int = 500,
    seed: int = 0,
    progress: bool = True,
    **kw: Any,
) -> dict[str, Any]:
    """Attack every example of ``X`` (rows) with labels ``y``; return a JSON-ready summary.

    ``attack`` is "fgsm", "pgd" or "cw"; ``kw`` are that attack's options (``steps``, ``step_size``,
    ``restarts``; ``loss`` for PGD; ``kappa`` for CW). Random starts are drawn per example from
    ``seed``, so the result does not depend on ``batch_size``. Returns ``{"attack", "eps", "n",
    "error", "seconds", "fooled", "clip"}``: ``fooled`` per example (clean mistakes included),
    ``error`` the fraction fooled, ``seconds`` the wall time of the attack.
    """
    from tqdm import tqdm

    eps = check_eps(eps)
    clip = check_clip(clip)
    allowed = {"fgsm": set(), "pgd": {"steps", "step_size", "restarts", "loss"},
               "cw": {"steps", "step_size", "restarts", "kappa"}}
    if attack not in ATTACKS:
        raise InputError(f"unknown attack {attack!r}; choose one of {', '.join(ATTACKS)}")
    unknown = set(kw) - allowed[attack]
    if unknown:
        raise InputError(f"{attack} takes no option(s) {', '.join(sorted(unknown))}")
    settings = attack_settings(attack, eps, kw.get("steps"), kw.get("step_size"), kw.get("restarts"))
    loss = kw.get("loss", "ce") if attack == "pgd" else ("ce" if attack == "fgsm" else "margin")
    kappa = None
    if attack == "cw":
        try:
            kappa = float(kw.get("kappa", 0.0))
        except (TypeError, ValueError):
            raise InputError(f"kappa must be a number, got {kw.get('kappa')!r}") from None
        if math.isnan(kappa):
            raise InputError("kappa must not be NaN")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    check_seed(seed)
    x_all, y_all, device, _ = _prepare(net, X, y)
    n, d = x_all.shape
    if n == 0:
        raise InputError("inputs: no examples to attack")
    n_random = settings["restarts"] - (1 if attack in ("fgsm", "cw") else 0)

    fooled = np.zeros(n, dtype=bool)
    show = progress and sys.stderr.isatty()
    t0 = time.perf_counter()
    with tqdm(total=n, desc=f"{attack} eps={eps:g}", unit="ex", disable=not show) as bar:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            noise = _example_noise(int(seed), start, stop, n_random, d) if n_random > 0 and eps > 0 else None
            _, f = _run(
                attack, net, x_all[start:stop], y_all[start:stop], eps, clip=clip,
                steps=settings["steps"] if attack != "fgsm" else None,
                step_size=settings["step_size"] if attack != "fgsm" else None,
                restarts=settings["restarts"] if attack != "fgsm" else None,
                loss=loss, kappa=kappa, noise=noise, generator=None,
            )
            fooled[start:stop] = f.cpu().numpy()
            bar.update(stop - start)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    return {
        "attack": attack,
        "eps": eps,
        "n": int(n),
        "error": float(fooled.mean()),
        "seconds": seconds,
        "fooled": [bool(v) for v in fooled],
        "clip": list(clip) if clip is not None else None,
    }
