"""The training objectives of the paper's networks (section 6), one class per ``TrainConfig.reg``.

* ``none`` (:class:`NoRegularizer`): ``objective``;
* ``fro`` (:class:`FrobeniusRegularizer`): ``objective + lambda (||W||_F + mean_j ||V_i - V_j||)`` (eq. 17);
* ``spectral`` (:class:`SpectralRegularizer`): ``objective + lambda (||W||_2 + mean_j ||V_i - V_j||)``
  (eq. 18);
* ``sdp`` (:class:`SDPRegularizer`): ``objective + lambda sum_j w_ij (D lambda_max^+(M_ij - diag c_ij)
  + 1^T max(c_ij, 0))`` (eq. 15), certified after every epoch by eq. 16;
* ``at`` (:class:`AdversarialTraining`): ``objective + at_weight CE(f(x_adv), y)``, ``x_adv`` from PGD;
* ``lp`` (:class:`LPRobustLoss`): the Wong & Kolter robust loss alone.

``i`` is the class drawn for the step. :func:`make_regularizer` is the one place that dispatches on
``config.reg``.
"""

from __future__ import annotations

import torch

from certsdp.training.config import TrainConfig
from certsdp.training.regularizers.adversarial import AdversarialTraining
from certsdp.training.regularizers.base import Regularizer, StepContext
from certsdp.training.regularizers.frobenius import FrobeniusRegularizer
from certsdp.training.regularizers.lp import LPRobustLoss
from certsdp.training.regularizers.plain import NoRegularizer
from certsdp.training.regularizers.sdp import SDPRegularizer, pair_weights_from_bounds, unit_pair_weights
from certsdp.training.regularizers.spectral import SpectralRegularizer

REGULARIZERS: dict[str, type[Regularizer]] = {
    cls.name: cls
    for cls in (NoRegularizer, FrobeniusRegularizer, SpectralRegularizer, SDPRegularizer,
                AdversarialTraining, LPRobustLoss)
}

GRAPH_REGS = tuple(name for name, cls in REGULARIZERS.items() if cls.graph_capturable)
"""Configurations whose training step can be captured as a CUDA graph (:mod:`certsdp.training.
graphed_step`): their loss waits for nothing on the host. The others (the SDP regularizer's LOBPCG,
the spectral power iteration's state, ...) run eagerly on every device."""


def regularizer_class(config: TrainConfig) -> type[Regularizer]:
    """The class of ``config.reg``."""
    return REGULARIZERS[config.reg]


def make_regularizer(config: TrainConfig, dims: tuple[int, int, int],
                     device: torch.device | str = "cpu") -> Regularizer:
    """The regularizer of ``config`` for a ``d-m-k`` network (``dims``) on ``device``."""
    return regularizer_class(config)(config, dims, torch.device(device))


__all__ = [
    "GRAPH_REGS",
    "REGULARIZERS",
    "AdversarialTraining",
    "FrobeniusRegularizer",
    "LPRobustLoss",
    "NoRegularizer",
    "Regularizer",
    "SDPRegularizer",
    "SpectralRegularizer",
    "StepContext",
    "make_regularizer",
    "pair_weights_from_bounds",
    "regularizer_class",
    "unit_pair_weights",
]
