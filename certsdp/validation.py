"""Validation of plain values where they enter certsdp (the CLI and the public API).

Inside the package, typed objects (:class:`certsdp.network.weights.Weights`, validated arrays) are
trusted; these helpers are the one place a count, an index or a seed is checked.
"""

from __future__ import annotations

import numbers

from certsdp.errors import InputError


def is_int(value: object) -> bool:
    """True for Python and numpy integers, False for booleans (``True`` is not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: object, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either end optional), else :class:`InputError`."""
    if not is_int(value):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)  # type: ignore[arg-type]
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be <= {maximum}, got {value}")
    return value
