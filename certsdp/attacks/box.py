"""The attack box of :func:`certsdp.numerics.box.attack_box` as torch tensors, rounded inward.

The box is ``[x - eps, x + eps]`` computed in float64, then (with ``clip = (a, b)``) clamped to
``[a, b]``: ``lo = min(max(x - eps, a), b)``, ``hi = max(min(x + eps, b), a)``, the rule of
:func:`certsdp.numerics.box.attack_box` (numpy, and torch-free by design) done with the same IEEE
operations in torch, on the device of ``x`` and with nothing copied to the host, so that it also runs
inside a CUDA graph. The float64 corners are then rounded *inward* to ``x``'s dtype, so that every
point of ``[lo, hi]`` lies in the exact real box.

Nothing is validated here: ``eps`` and ``clip`` are checked where they enter
(:func:`certsdp.numerics.box.check_eps`, :func:`~certsdp.numerics.box.check_clip`), ``x`` is finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

BOX_TOL = 1e-6
"""Relative tolerance of the final check that an attack's points lie in the box (before projecting)."""


def round_inward(bound64: torch.Tensor, dtype: torch.dtype, up: bool) -> torch.Tensor:
    """``bound64`` in ``dtype``, rounded toward the inside of the box (up for lo, down for hi)."""
    out = bound64.to(dtype)
    back = out.to(torch.float64)
    if up:
        bad = back < bound64
        return torch.where(bad, torch.nextafter(out, torch.full_like(out, math.inf)), out)
    bad = back > bound64
    return torch.where(bad, torch.nextafter(out, torch.full_like(out, -math.inf)), out)


def box_corners64(
    x: torch.Tensor, eps: float, clip: tuple[float, float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The float64 corners ``(lo, hi)`` of :func:`certsdp.numerics.box.attack_box`, bitwise, in torch."""
    x64 = x.detach().to(torch.float64)
    lo, hi = x64 - eps, x64 + eps
    if clip is not None:
        lo, hi = lo.clamp(clip[0], clip[1]), hi.clamp(clip[0], clip[1])
    return lo, hi


def box_bounds(
    x: torch.Tensor, eps: float, clip: tuple[float, float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The attack box around the rows of ``x``, in ``x``'s dtype and device, rounded inward.

    For ``x`` inside the clip range the rounded box always contains ``x``. Where it would be empty (an
    input more than ``eps`` outside a clip bound that the dtype cannot represent; attacks refuse such
    inputs) both corners are that bound rounded to nearest.
    """
    lo64, hi64 = box_corners64(x, eps, clip)
    lo = round_inward(lo64, x.dtype, up=True)
    hi = round_inward(hi64, x.dtype, up=False)
    if clip is not None:  # without clip lo <= x <= hi: no check needed (and none inside a CUDA graph)
        empty = lo > hi
        nearest = lo64.to(x.dtype)
        lo, hi = torch.where(empty, nearest, lo), torch.where(empty, nearest, hi)
    return lo, hi


@dataclass(frozen=True)
class Box:
    """Corners ``lo <= hi`` of an attack box, in the network's dtype and device."""

    lo: torch.Tensor
    hi: torch.Tensor

    @classmethod
    def around(cls, x: torch.Tensor, eps: float, clip: tuple[float, float] | None = None) -> Box:
        """The box :func:`box_bounds` of ``x``."""
        return cls(*box_bounds(x, eps, clip))

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` clamped into the box, coordinate-wise."""
        return torch.clamp(z, self.lo, self.hi)

    def uniform(self, noise: torch.Tensor) -> list[torch.Tensor]:
        """Points ``lo + u (hi - lo)`` of the box for ``u`` in ``noise`` ([0, 1), ``(starts, n, d)``).

        Computed in float64 and rounded to the box's dtype, then clamped (rounding may leave it).
        """
        lo64, hi64 = self.lo.to(torch.float64), self.hi.to(torch.float64)
        noise = noise.to(device=self.lo.device, dtype=torch.float64)
        return [self.project((lo64 + u * (hi64 - lo64)).to(self.lo.dtype)) for u in noise]

    def checked(self, x_adv: torch.Tensor) -> torch.Tensor:
        """``x_adv`` projected exactly onto the box, after checking it lies in it (tiny tolerance).

        An attack's iterates are clamped into the box at every step; a point outside it is a bug
        (:class:`AssertionError`), not bad input.
        """
        lo, hi = self.lo, self.hi
        scale = 1.0 + float(torch.maximum(lo.abs().max(), hi.abs().max())) if lo.numel() else 1.0
        tol = BOX_TOL * scale
        if x_adv.numel() and not bool(((x_adv >= lo - tol) & (x_adv <= hi + tol)).all()):
            worst = float(torch.maximum(lo - x_adv, x_adv - hi).max())
            raise AssertionError(f"attack left the eps-box by {worst:.3g} (tolerance {tol:.1g})")
        return self.project(x_adv.detach())
