"""Errors that describe bad user input.

Every check that guards a certificate against malformed input raises :class:`InputError`; the
command line turns it into a one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input (missing or malformed file, wrong shape, NaN/inf, negative eps, ...)."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the last checkpoint (previous epoch) is left intact."""
