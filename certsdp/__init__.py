"""certsdp: certified defenses against adversarial examples for one-hidden-layer ReLU networks.

Reproduces Raghunathan, Steinhardt & Liang, *Certified Defenses against Adversarial Examples*
(ICLR 2018): SDP, LP (Wong & Kolter 2017), Frobenius and spectral certificates, attacks and
certified training.
"""

from certsdp.errors import InputError
from certsdp.weights import Weights

__all__ = ["InputError", "Weights"]
__version__ = "0.1.0"
