"""FGSM, PGD and a CW-style l_inf attack (torch), their reports and their on-disk cache.

======================  =================================================================
``settings``            the attacks' names, defaults and options; :func:`attack_settings` (no torch)
``box``                 the attack box of :mod:`certsdp.numerics.box` in torch, rounded inward
``inputs``              the attacked batch and the network's clean scores, checked where they enter
``base``                :class:`Attack`: the shared signed-gradient ascent keeping the worst point
``gradient_sign``       :class:`FGSM` and :func:`fgsm`
``projected_gradient``  :class:`PGD`, :func:`pgd` and :func:`pgd_unchecked` (adversarial training)
``carlini_wagner``      :class:`CW` and :func:`cw`
``registry``            :data:`ATTACKS`, name -> class
``report``              :func:`attack_report` (per-example seeds), :func:`misclassified`
``cache``               :func:`cached_attack_report`: reports stored on disk
======================  =================================================================

The margins the attacks rank and step by are pure functions of the scores, shared with training:
:mod:`certsdp.network.margins`.

Names are loaded on first use (PEP 562), so that :mod:`certsdp.attacks.settings` can be imported
without torch: the command line builds its ``--attack`` choices from it for every subcommand,
including the numpy-only ``certsdp certify``. (That is also why the modules are not named after the
functions: a submodule ``pgd`` would replace the function ``pgd`` as the package's attribute as soon
as anything imported it.)
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_EXPORTS = {
    "Attack": "certsdp.attacks.base",
    "FGSM": "certsdp.attacks.gradient_sign",
    "PGD": "certsdp.attacks.projected_gradient",
    "CW": "certsdp.attacks.carlini_wagner",
    "ATTACKS": "certsdp.attacks.registry",
    "attack_class": "certsdp.attacks.registry",
    "fgsm": "certsdp.attacks.gradient_sign",
    "pgd": "certsdp.attacks.projected_gradient",
    "cw": "certsdp.attacks.carlini_wagner",
    "pgd_unchecked": "certsdp.attacks.projected_gradient",
    "attack_settings": "certsdp.attacks.settings",
    "SPECS": "certsdp.attacks.settings",
    "attack_report": "certsdp.attacks.report",
    "report_attack": "certsdp.attacks.report",
    "make_attack": "certsdp.attacks.report",
    "misclassified": "certsdp.attacks.report",
    "cached_attack_report": "certsdp.attacks.cache",
    "score_margin": "certsdp.network.margins",
    "soft_margin": "certsdp.network.margins",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first access (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'certsdp.attacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
