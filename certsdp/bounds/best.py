"""``best``: per example the minimum of every bound, cheapest first (the paper's "combining the approaches").

Every registered bound gives rigorous upper bounds ``U_m[n, i] >= max_box f_i - f_{y_n}``, so their
elementwise minimum is one too, and an example is certified iff ``max_{i != y} min_m U_m[n, i] < 0``:
it may be certified although no single bound certifies it (one class pair by the SDP bound of eq. 12,
another by a per-example linear relaxation).

The cascade runs the bounds from the cheapest: ``fro`` (eq. 17), ``spectral`` (eq. 18), ``sdp``
(eq. 12, from the pair table), ``lp``, ``crown``, ``alpha-crown``, then, where they are registered and
``skip_expensive`` is not set, ``lp-triangle`` and ``sdp-cert``. A (point, target) pair stays *open*
until a bound gives it a value ``< 0``; each bound is asked only for the open pairs
(:meth:`~certsdp.bounds.base.Bound.upper_where`): ``alpha-crown`` and ``lp-triangle`` skip the work of
the others themselves, with the bits of their full run; an expensive bound without its own
``upper_where`` gets only the examples that still have an open pair. The pairs of an example that
is provably misclassified (``f_p(x) - f_y(x) >= 0`` for its predicted class ``p``, evaluated with
rigorous rounding) are not opened at all: the box contains ``x``, so no sound bound can certify it.

The result is the elementwise minimum of every value returned (all are valid bounds); an example is
*decided by* the method after which all its pairs were ``< 0`` (the cheapest prefix of the cascade
that certifies it), or by none. :meth:`BestBound.report` gives ``decided_by`` per example and the
work of every method for the report of :func:`certsdp.bounds.certify.certify`. The certified set is
the one of the minimum over all bounds run on everything, and so is the value of every pair left
open at the end (``tests/test_best.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from certsdp.bounds.base import Bound
from certsdp.bounds.registry import BOUNDS, get_bound, register
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.rounding import scores_upper_margins
from certsdp.sdp.pairs import PairTable

__all__ = ["CASCADE", "EXPENSIVE", "BestBound", "BestState", "CascadeRun", "provably_misclassified"]

#: the default order of the cascade, cheapest first (methods not registered are left out)
CASCADE = ("fro", "spectral", "sdp", "lp", "crown", "alpha-crown", "lp-triangle", "sdp-cert")
#: the methods ``skip_expensive`` leaves out
EXPENSIVE = frozenset({"lp-triangle", "sdp-cert"})
#: options of the bounds that ``best`` passes on to every method of the cascade that accepts them
FORWARDED = frozenset({"table", "progress", "solver", "batch_size", "iters", "lr", "time_limit"})


@dataclass
class Step:
    """One method of the cascade with its prepared state."""

    name: str
    bound: Bound
    state: Any


@dataclass
class CascadeRun:
    """What one :meth:`BestBound.upper` call did: per example the deciding method (None: not certified),
    and per method the pairs it was asked for, the examples it was given, its seconds and the number of
    examples certified once it had run."""

    decided_by: list[str | None]
    methods: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"decided_by": self.decided_by, "cascade": self.methods}


@dataclass
class BestState:
    """The prepared methods of the cascade, in order, and the record of the last run."""

    steps: list[Step]
    last: CascadeRun | None = None


def check_methods(methods: str | Sequence[str] | None, skip_expensive: bool) -> list[str]:
    """The cascade: ``methods`` (names, or one comma-separated string) or :data:`CASCADE`'s registered
    methods, without :data:`EXPENSIVE` ones when ``skip_expensive``; InputError for an unknown,
    repeated or recursive method, or an empty list."""
    if methods is None:
        names = [name for name in CASCADE if name in BOUNDS]
    else:
        if isinstance(methods, str):
            methods = [part.strip() for part in methods.split(",") if part.strip()]
        names = list(methods)
        for name in names:
            if name == BestBound.name:
                raise InputError("methods of 'best' cannot include 'best' itself")
            get_bound(name)  # InputError for an unknown method
        if len(set(names)) != len(names):
            raise InputError(f"methods of 'best' must not repeat a method, got {', '.join(names)}")
    if skip_expensive:
        names = [name for name in names if name not in EXPENSIVE]
    if not names:
        raise InputError("'best' needs at least one method")
    return names


def check_flag(name: str, value: Any) -> bool:
    """``value`` as a bool (True/False, 1/0, or "true"/"false"), InputError otherwise."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise InputError(f"{name} must be true or false, got {value!r}")


def _step_options(bound: Bound, forwarded: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``bound``'s prepare options: the forwarded ones it accepts, then its own (InputError if unknown)."""
    unknown = sorted(set(own) - bound.options)
    if unknown:
        accepted = ", ".join(sorted(bound.options)) or "none"
        raise InputError(f"method {bound.name!r} has no option {', '.join(unknown)} "
                         f"(its options: {accepted})")
    return {**{key: value for key, value in forwarded.items() if key in bound.options}, **own}


def provably_misclassified(weights: Weights, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(n,)`` True where ``f_p(x) - f_y(x) >= 0`` holds for the predicted class ``p != y`` despite
    rounding (``-U >= 0`` for the rigorous upper bound ``U >= f_y - f_p``): no bound can certify them."""
    with np.errstate(over="ignore", invalid="ignore"):
        predicted = weights.scores(X).argmax(axis=1) if X.shape[0] else np.zeros(0, dtype=np.int64)
        upper = scores_upper_margins(weights.W, weights.b, weights.V, weights.c, X, predicted)
    rows = np.arange(X.shape[0])
    return (predicted != y) & (upper[rows, y] <= 0)


@register
class BestBound(Bound):
    """Per example the minimum of every bound, cheapest first, each only for the pairs still open."""

    name = "best"
    description = ("per example the minimum of every bound (fro, spectral, sdp, lp, crown, alpha-crown, "
                   "then lp-triangle, sdp-cert), cheapest first, each only on the pairs not yet certified")
    options = FORWARDED | {"methods", "skip_expensive", "method_options"}
    uses_clip = True

    def prepare(self, weights: Weights, methods: str | Sequence[str] | None = None,
                skip_expensive: bool = False, method_options: dict[str, dict[str, Any]] | None = None,
                **options: Any) -> BestState:
        """Prepare every method of the cascade (:func:`check_methods`).

        ``table``, ``progress``, ``solver``, ``batch_size``, ``iters``, ``lr``, ``time_limit`` go to
        every method that accepts them (``table``: the SDP pair table of ``weights``, solved here when
        absent and ``sdp`` is in the cascade); ``method_options`` maps a method to its own options.
        """
        names = check_methods(methods, check_flag("skip_expensive", skip_expensive))
        own = {} if method_options is None else dict(method_options)
        if not all(isinstance(value, dict) for value in own.values()) or set(own) - set(names):
            raise InputError(f"method_options must map methods of the cascade ({', '.join(names)}) to dicts "
                             f"of their options, got {method_options!r}")
        forwarded = {key: value for key, value in options.items() if key in FORWARDED}
        steps = []
        for name in names:
            bound = get_bound(name)
            steps.append(Step(name, bound, bound.prepare(weights, **_step_options(bound, forwarded,
                                                                                  own.get(name, {})))))
        return BestState(steps=steps)

    def upper(self, state: BestState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        n, k = X.shape[0], weights.k
        rows = np.arange(n)
        U = np.full((n, k), np.inf)
        U[rows, y] = -np.inf
        open_pairs = np.ones((n, k), dtype=bool)
        open_pairs[rows, y] = False
        open_pairs[provably_misclassified(weights, X, y)] = False
        decided: list[str | None] = [None] * n
        run = CascadeRun(decided_by=decided)
        for step in state.steps:
            asked, seconds = _run_step(step, weights, X, y, eps, clip, U, open_pairs)
            certified = np.flatnonzero(np.all(U < 0, axis=1))
            for point in certified:
                if decided[point] is None:
                    decided[point] = step.name
            open_pairs &= ~(U < 0)
            run.methods.append({"method": step.name, "pairs": asked, "seconds": seconds,
                                "certified": int(certified.size)})
        state.last = run
        return U

    def pair_table(self, state: BestState) -> PairTable | None:
        """The SDP pair table of the ``sdp`` step, if the cascade has one."""
        for step in state.steps:
            table = step.bound.pair_table(step.state)
            if table is not None:
                return table
        return None

    def report(self, state: BestState) -> dict[str, Any]:
        """``decided_by`` (per example: the method after which it was certified, or null) and
        ``cascade`` (per method: pairs asked, seconds, examples certified so far)."""
        return {} if state.last is None else state.last.to_json()


def _run_step(step: Step, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None, U: np.ndarray, open_pairs: np.ndarray) -> tuple[int, float]:
    """Lower ``U`` (in place) by ``step``'s bounds on the open pairs; the pairs asked and the seconds.

    A method is given every example (so its bits are those of its run on all of ``X``) unless it is
    expensive and has no :meth:`~certsdp.bounds.base.Bound.upper_where` of its own: then only the
    examples with an open pair."""
    asked = int(open_pairs.sum())
    if asked == 0:
        return 0, 0.0
    own_where = type(step.bound).upper_where is not Bound.upper_where
    rows = (np.flatnonzero(open_pairs.any(axis=1)) if step.name in EXPENSIVE and not own_where
            else slice(None))
    t0 = time.perf_counter()
    values = step.bound.upper_where(step.state, weights, X[rows], y[rows], eps, clip, open_pairs[rows])
    U[rows] = np.minimum(U[rows], values)
    return asked, time.perf_counter() - t0
