"""Margins of a classifier's scores: pure functions of ``(logits, labels)``, used by attacks and training.

For scores ``f(x) in R^k`` and true class ``y``:

* the score margin ``max_{i != y} f_i - f_y``; ``>= 0`` is a mistake (a tie with a wrong class counts
  against the network, as a certificate needs a strictly negative bound);
* the soft margin ``L = log sum_{j != y} exp f_j - f_y``, a smooth upper bound of the score margin
  (within ``log(k - 1)``), with ``CE = log(1 + e^L)``: the cross-entropy is an increasing function of
  ``L``, so the two have gradients of the same sign in every coordinate.

Computed through the softmax, the cross-entropy's gradient ``softmax - e_y`` loses its true-class term
once ``p_y`` rounds to 1 (a logit gap above ~17 in float32, ~37 in float64). ``L``'s gradient,
``w - e_y`` with ``w`` the softmax over the wrong classes only, keeps it exactly (-1) at any confidence:
that is the direction the attacks' sign steps follow.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def score_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``max_{i != y} f_i - f_y`` per row; ``>= 0`` is a mistake (ties count against the network)."""
    correct = logits.gather(1, y[:, None]).squeeze(1)
    # scatter, not F.one_hot: one kernel instead of three, and no label check on the host (one_hot
    # makes one on the CPU, which a CUDA graph cannot capture)
    wrong = logits.scatter(1, y[:, None], -math.inf)
    return wrong.amax(dim=1) - correct


def soft_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``L = log sum_{j != y} exp f_j - f_y`` per row: a smooth :func:`score_margin`.

    The cross-entropy is ``log(1 + exp(L))``. The gradient of ``L`` is exact in the true class (-1)
    at any confidence.
    """
    correct = logits.gather(1, y[:, None]).squeeze(1)
    return logits.scatter(1, y[:, None], -math.inf).logsumexp(dim=1) - correct


class CrossEntropySoftMarginStep(torch.autograd.Function):
    """Per-row cross-entropy whose backward is the gradient of :func:`soft_margin`, for sign steps.

    Forward: ``F.cross_entropy(logits, y, reduction="none")`` (the value attacks rank points by).
    Backward: ``grad * (w - e_y)`` with ``w`` the softmax over the wrong classes, i.e. the gradient of
    ``L`` (the cross-entropy's gradient divided by ``1 - p_y > 0``: the same signs, without the
    cancellation in ``p_y - 1``). It is not the derivative of the forward value: use it only where the
    direction matters. Four kernels in the backward, against about twenty for autograd through
    :func:`soft_margin`.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(logits, y)
        return F.cross_entropy(logits, y, reduction="none")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        logits, y = ctx.saved_tensors
        wrong = torch.softmax(logits.scatter(1, y[:, None], -math.inf), dim=1)
        return grad[:, None] * wrong.scatter(1, y[:, None], -1.0), None


def cross_entropy_soft_margin_step(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy, differentiated as :func:`soft_margin` (:class:`CrossEntropySoftMarginStep`)."""
    return CrossEntropySoftMarginStep.apply(logits, y)
