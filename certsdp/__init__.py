"""certsdp: certified defenses against adversarial examples for one-hidden-layer ReLU networks.

Reproduces Raghunathan, Steinhardt & Liang, *Certified Defenses against Adversarial Examples*
(ICLR 2018, https://arxiv.org/abs/1801.09344) for ``f(x) = V relu(W x + b) + c`` and goes beyond it.

Where each concept lives (``ls certsdp``):

==================  =====================================================================
``numerics``        directed rounding, rigorous PSD checks, the attack box (numpy only)
``network``         the network as float64 :class:`Weights`, its torch twin, checkpoints
``data``            MNIST and user input files
``sdp``             the SDP of eq. 8-14: matrix, fast and reference solvers, dual certificate,
                    pair tables
``bounds``          certificates behind one interface (a registry: fro, spectral, sdp, lp, ...)
                    and :func:`certify`
``attacks``         FGSM, PGD, CW (torch) and their cache
``training``        the paper's training objectives and the epoch loop
``verify``          complete verification: attacks, certificates, MILP and a rigorous branch and bound
``experiments``     the figures and tables of the paper, the notebooks' shared logic
``cli``             the ``certsdp`` command
==================  =====================================================================

The names below are the public API; they are loaded on first use, so certifying a network
(numpy) never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from certsdp.errors import InputError, TrainingDiverged

__version__ = "0.2.0.dev0"

#: public name -> the module that defines it
_EXPORTS = {
    "Weights": "certsdp.network.weights",
    "load_network": "certsdp.network.loading",
    "TwoLayerNet": "certsdp.network.torch_model",
    "load_mnist": "certsdp.data",
    "load_inputs": "certsdp.data",
    "solve_pairs": "certsdp.sdp",
    "acquire_pair_table": "certsdp.sdp",
    "PairTable": "certsdp.sdp",
    "certify": "certsdp.bounds",
    "CertifyResult": "certsdp.bounds",
    "BOUNDS": "certsdp.bounds",
    "fgsm": "certsdp.attacks",
    "pgd": "certsdp.attacks",
    "cw": "certsdp.attacks",
    "attack_report": "certsdp.attacks",
    "train": "certsdp.training",
    "get_config": "certsdp.training",
    "TrainConfig": "certsdp.training",
    "verify": "certsdp.verify",
}

__all__ = ["InputError", "TrainingDiverged", "__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first access (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'certsdp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
