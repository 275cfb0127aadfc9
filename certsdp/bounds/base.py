"""The interface every certificate implements: :class:`Bound`.

A bound turns a network ``f(x) = V relu(W x + b) + c`` and an attack box around each example into
upper bounds on the margins ``f^{iy}(x~) = f_i(x~) - f_y(x~)`` (paper section 2). It works in two
steps, so that a sweep over eps or over data sets pays the network-only work once:

* :meth:`Bound.prepare` does everything that depends on the weights alone (the SDP pair table of
  eq. 12, the constants of eq. 17-18, derived arrays) and returns an opaque *state*;
* :meth:`Bound.upper` bounds every (example, class) pair for one eps from that state;
  :meth:`Bound.upper_where` only the pairs of a boolean ``(n, k)`` mask (the cascade of
  :mod:`certsdp.bounds.best` asks an expensive bound only for the pairs no cheaper bound certified).

Array convention: ``U = upper(...)`` has shape ``(n, k)``; ``U[n, i]`` is a rigorous float64 upper
bound on ``max_{x~ in box(x_n)} f_i(x~) - f_{y_n}(x~)`` and ``U[n, y_n] = -inf``. Example ``n`` is
certified iff ``max_i U[n, i] < 0``. The box is ``|x~ - x_n|_inf <= eps``, intersected with
``[clip_lo, clip_hi]^d`` when ``clip`` is given; a bound may ignore ``clip`` (the unclipped box
contains the clipped one, so its bound stays valid).

Inputs reach :meth:`Bound.upper` already validated (:func:`certsdp.bounds.certify.certify` checks
them once): ``X`` finite float64 ``(n, d)``, ``y`` int64 in ``[0, k)``, ``eps`` a finite float >= 0,
``clip`` ``None`` or an ordered pair, and, for a bound with ``uses_clip``, every input inside the
clip range. A new bound is one module that subclasses :class:`Bound`, decorates it with
:func:`certsdp.bounds.registry.register` and is imported in ``certsdp/bounds/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from certsdp.network.weights import Weights

if TYPE_CHECKING:  # typing only: certsdp.sdp is not needed to define the interface
    from certsdp.sdp.pairs import PairTable


class Bound(ABC):
    """One certificate: upper bounds on ``f_i(x~) - f_y(x~)`` over the attack box of every example."""

    #: the method's name (``certify(..., method=name)``, ``certsdp certify --method name``)
    name: ClassVar[str]
    #: one line, shown in ``certsdp certify --help``
    description: ClassVar[str]
    #: keyword options :meth:`prepare` accepts (``certify(..., **options)``; others are refused)
    options: ClassVar[frozenset[str]] = frozenset()
    #: True if :meth:`upper` bounds the *clipped* box: inputs outside the clip range are then refused,
    #: since that box does not contain them (:func:`certsdp.numerics.box.check_inside_clip`)
    uses_clip: ClassVar[bool] = False
    #: True for a bound with no optimisation (a closed form, a table lookup or one backward pass:
    #: about a millisecond per example); ``certsdp verify`` tries these before its attacks
    instant: ClassVar[bool] = False

    def prepare(self, weights: Weights, **options: Any) -> Any:
        """Work that depends on the weights only (not on eps or the data); returns the state."""
        return None

    @abstractmethod
    def upper(self, state: Any, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        """``(n, k)`` float64 upper bounds ``U[n, i] >= max_box f_i - f_{y_n}``, ``U[n, y_n] = -inf``."""

    def upper_where(self, state: Any, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
                    clip: tuple[float, float] | None, mask: np.ndarray) -> np.ndarray:
        """Like :meth:`upper`, but only the pairs ``(n, i)`` with ``mask[n, i]`` True need a bound.

        ``mask`` is boolean ``(n, k)`` (its column ``y_n`` is ignored). Where ``mask`` is True the entry
        is exactly (bit for bit) the one :meth:`upper` gives for the same ``X``; elsewhere it is a
        valid upper bound or ``+inf``; ``U[n, y_n] = -inf``. This default computes every pair; a bound
        whose work splits by pair overrides it to skip the others (``alpha-crown``, ``lp-triangle``).
        To leave out whole examples, slice ``X`` and ``y`` instead.
        """
        return self.upper(state, weights, X, y, eps, clip)

    def pair_table(self, state: Any) -> PairTable | None:
        """The SDP pair table behind the bounds, reported as ``pairs``/``sdp_seconds``; None if none."""
        return None

    def report(self, state: Any) -> dict[str, Any]:
        """Extra fields of the JSON report of the last :meth:`upper` with ``state`` ({} for most bounds;
        ``best`` gives ``decided_by``)."""
        return {}
