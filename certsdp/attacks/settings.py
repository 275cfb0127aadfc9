"""What each attack is and which settings it takes, validated where they enter (no torch here).

The command line builds its ``--attack`` choices and help from :data:`SPECS` without importing torch
(``certsdp certify`` and ``certsdp --help`` stay numpy-only); the attack classes
(:data:`certsdp.attacks.registry.ATTACKS`) take their names, defaults and options from the same specs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from certsdp.errors import InputError
from certsdp.numerics.box import check_eps
from certsdp.validation import check_int

DEFAULT_STEPS = 100
STEP_SIZE_FACTOR = 2.5
"""Default step size is ``2.5 * eps / steps`` (Madry et al. 2018): the iterates can travel 2.5 box
half-widths, enough to cross the whole box (2 half-widths) from any start, with sign steps fine
enough to settle near a vertex or a face."""

LOSSES = ("ce", "margin")


@dataclass(frozen=True)
class AttackSpec:
    """An attack's name, one-line summary, default number of restarts and keyword options."""

    name: str
    summary: str
    default_restarts: int
    options: tuple[str, ...]

    @property
    def single_step(self) -> bool:
        """True for FGSM: one step of size eps, no steps/restarts/step size to choose."""
        return not self.options


SPECS: dict[str, AttackSpec] = {
    spec.name: spec
    for spec in (
        AttackSpec("fgsm", "fast gradient sign method: one step of size eps from x", 1, ()),
        AttackSpec("pgd", "projected signed-gradient ascent on the cross-entropy (or the margin) from "
                   "random starts", 5, ("steps", "step_size", "restarts", "loss")),
        AttackSpec("cw", "Carlini-Wagner l_inf: signed-gradient ascent on min(margin, kappa), the first "
                   "run from x", 1, ("steps", "step_size", "restarts", "kappa")),
    )
}
DEFAULT_RESTARTS = {name: spec.default_restarts for name, spec in SPECS.items()}


def check_attack(attack: Any) -> AttackSpec:
    """The spec of ``attack`` ("fgsm", "pgd" or "cw"), or :class:`InputError`."""
    spec = SPECS.get(attack) if isinstance(attack, str) else None
    if spec is None:
        raise InputError(f"unknown attack {attack!r}; choose one of {', '.join(SPECS)}")
    return spec


def resolve_settings(
    spec: AttackSpec, eps: float, steps: Any, step_size: Any, restarts: Any
) -> dict[str, Any]:
    """``{"steps", "restarts", "step_size"}`` of ``spec`` at a checked ``eps``, defaults filled in."""
    if spec.single_step:
        if steps not in (None, 1) or restarts not in (None, 1) or step_size not in (None, eps):
            raise InputError(f"{spec.name} is a single step of size eps; it takes no steps, restarts or "
                             "step size")
        return {"steps": 1, "restarts": 1, "step_size": eps}
    steps = check_int("steps", DEFAULT_STEPS if steps is None else steps, minimum=1)
    restarts = check_int("restarts", spec.default_restarts if restarts is None else restarts, minimum=1)
    if step_size is None:
        step_size = STEP_SIZE_FACTOR * eps / steps
    else:
        try:
            step_size = float(step_size)
        except (TypeError, ValueError):
            raise InputError(f"step_size must be a number, got {step_size!r}") from None
        if not math.isfinite(step_size) or step_size < 0:
            raise InputError(f"step_size must be finite and >= 0, got {step_size!r}")
    return {"steps": steps, "restarts": restarts, "step_size": float(step_size)}


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
    return resolve_settings(check_attack(attack), check_eps(eps), steps, step_size, restarts)


def check_loss(loss: Any) -> str:
    """PGD's objective, "ce" (cross-entropy) or "margin", or :class:`InputError`."""
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    return loss


def check_kappa(kappa: Any) -> float:
    """CW's confidence ``kappa`` as a float (``inf`` allowed, NaN not), or :class:`InputError`."""
    try:
        value = float(kappa)
    except (TypeError, ValueError):
        raise InputError(f"kappa must be a number, got {kappa!r}") from None
    if math.isnan(value):
        raise InputError("kappa must not be NaN")
    return value
