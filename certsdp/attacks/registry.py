"""The attacks by name: ``ATTACKS["pgd"]`` is :class:`certsdp.attacks.projected_gradient.PGD`."""

from __future__ import annotations

from certsdp.attacks.base import Attack
from certsdp.attacks.carlini_wagner import CW
from certsdp.attacks.gradient_sign import FGSM
from certsdp.attacks.projected_gradient import PGD
from certsdp.attacks.settings import check_attack

ATTACKS: dict[str, type[Attack]] = {cls.spec.name: cls for cls in (FGSM, PGD, CW)}


def attack_class(name: str) -> type[Attack]:
    """The class of attack ``name``, or :class:`certsdp.errors.InputError` for an unknown name."""
    return ATTACKS[check_attack(name).name]
