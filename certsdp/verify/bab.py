"""Rigorous confirmation: branch and bound over the unstable ReLUs' phases, every leaf closed in float64.

For one target ``i`` the box is split on the phase of unstable units (``z_h >= 0`` / ``z_h <= 0``);
the leaves always cover the box. Each leaf is bounded by :func:`certsdp.verify.leaf_bound.leaf_bound`
(a rigorous float64 upper bound with directed rounding), first with the cheap CROWN slopes, then,
if that is not below 0, with better slopes: the LP-optimal ones suggested by HiGHS
(:func:`certsdp.verify.slopes.best_slopes`) on small problems, or a few warm-started gradient steps
(:func:`certsdp.verify.slopes.descend_slopes`) on MNIST-size ones, where an LP costs a second. A
leaf is *closed* when its bound is ``< 0``; the target is proved (``max_{x~ in B} g_i(x~) < 0``)
when every leaf is closed, and the largest leaf bound is then a rigorous upper bound below 0.
Search is best-first (the open leaf with the largest bound next), so on a timeout the largest open
bound is the best rigorous upper bound found.

Branching is guided by the relaxation: the free unit whose linear bound strays furthest from
``v_h relu(z)`` on its interval (:func:`certsdp.verify.leaf_bound.relaxation_gaps`). Once every
unstable unit of a leaf is fixed its LP bound is the exact maximum over the leaf (up to rounding), so
the search is complete: a leaf that cannot be closed holds a point of the LP's optimum, which is tried
as a witness (re-checked in float64, like every maximiser met on the way). A leaf whose exact
maximum is 0 up to rounding can neither be closed nor give a witness: the verdict is then unknown.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from certsdp.network.weights import Weights
from certsdp.verify.leaf_bound import (
    ACTIVE,
    FREE,
    INACTIVE,
    TargetProblem,
    crown_slopes,
    leaf_bound,
    relaxation_gaps,
)
from certsdp.verify.region import worst_margin
from certsdp.verify.slopes import best_slopes, descend_slopes

MAX_NODES = 200_000
SMALL_LP = 20_000
"""Up to this many (unstable units x inputs) every leaf gets the LP's slopes; above, gradient steps."""
DESCENT_STEPS = 20
"""Adam steps per leaf on large problems, warm-started from the parent's slopes."""


@dataclass
class TargetOutcome:
    """What the branch and bound established for one target."""

    closed: bool  # every leaf's rigorous bound is < 0
    upper: float  # rigorous upper bound on max g_i over the box (max of the leaf bounds)
    witness: np.ndarray | None = None  # a float64 point of the box that the network misclassifies
    best_margin: float = -math.inf  # the largest float64 worst-class margin among the points tried
    nodes: int = 0


@dataclass(order=True)
class _Leaf:
    priority: float  # -bound: the heap pops the largest bound first
    order: int
    phases: np.ndarray = field(compare=False)
    bound: float = field(compare=False)
    slopes: np.ndarray = field(compare=False)


class TargetSearch:
    """One target's branch and bound; :meth:`run` may be called again later with a new deadline and
    continues the same tree (the verifier runs a short search, the MILP, then the rest)."""

    def __init__(self, weights: Weights, problem: TargetProblem) -> None:
        self.weights = weights
        self.problem = problem
        self.deadline = -math.inf
        self.outcome = TargetOutcome(closed=False, upper=math.inf)
        self.closed_max = -math.inf
        self.stuck: list[float] = []
        self.heap: list[_Leaf] = []
        self.count = 0
        self.started = False

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def try_point(self, z: np.ndarray | None) -> None:
        """Keep ``z`` (projected into the box) as the witness if the network misclassifies it."""
        if z is None or self.outcome.witness is not None:
            return
        point = self.problem.box.project(z)
        margin = worst_margin(self.weights, point, self.problem.label)
        self.outcome.best_margin = max(self.outcome.best_margin, margin)
        if margin >= 0:
            self.outcome.witness = point

    def evaluate(self, phases: np.ndarray, start: np.ndarray | None) -> tuple[float, np.ndarray]:
        """The leaf's rigorous bound and the slopes that gave it: CROWN's first, then better slopes,
        from the LP (small problems, and leaves with every unstable unit fixed, where it is exact) or
        from :func:`~certsdp.verify.slopes.descend_slopes` warm-started at the parent's ``start``."""
        p = self.problem
        lo, hi = p.intervals(phases)
        slopes = crown_slopes(p.v, lo, hi)
        bound = leaf_bound(p, lo, hi, slopes)
        self.outcome.nodes += 1
        if bound < 0 or self.time_left() <= 0:
            return bound, slopes
        full = not np.any((phases == FREE) & p.unstable)
        if full or p.n_unstable * p.box.x.size <= SMALL_LP:
            better, point = best_slopes(p, lo, hi, self.time_left())
        else:
            better, point = descend_slopes(p, lo, hi, slopes if start is None else start, DESCENT_STEPS)
        self.try_point(point)
        if np.all(np.isfinite(better)):
            better_bound = leaf_bound(p, lo, hi, better)
            if better_bound < bound:
                return better_bound, better
        return bound, slopes

    def push(self, phases: np.ndarray, start: np.ndarray | None = None) -> None:
        bound, slopes = self.evaluate(phases, start)
        if bound < 0:
            self.closed_max = max(self.closed_max, bound)
            return
        self.count += 1
        heapq.heappush(self.heap, _Leaf(-bound, self.count, phases, bound, slopes))

    def branch_unit(self, leaf: _Leaf) -> int | None:
        """The free unstable unit to split next, or None when every unstable unit is fixed."""
        p = self.problem
        free = (leaf.phases == FREE) & p.unstable
        if not free.any():
            return None
        lo, hi = p.intervals(leaf.phases)
        gaps = np.where(free, relaxation_gaps(p, lo, hi, leaf.slopes), -1.0)
        if gaps.max() <= 0:
            gaps = np.where(free, np.abs(p.v) * np.minimum(-lo, hi), -1.0)
        return int(np.argmax(gaps))

    def run(self, deadline: float) -> TargetOutcome:
        """Search until proved, refuted by a witness, or ``deadline`` (``time.monotonic()`` seconds)."""
        self.deadline = deadline
        if not self.started:
            self.started = True
            self.push(np.full(self.problem.v.size, FREE, dtype=np.int8))
        while self.heap and self.outcome.witness is None:
            if self.time_left() <= 0 or self.outcome.nodes >= MAX_NODES:
                break
            leaf = heapq.heappop(self.heap)
            unit = self.branch_unit(leaf)
            if unit is None:  # exact leaf that stays >= 0 without a float64 witness: a tie at 0
                self.stuck.append(leaf.bound)
                continue
            for phase in (ACTIVE, INACTIVE):
                child = leaf.phases.copy()
                child[unit] = phase
                start = leaf.slopes.copy()
                start[unit] = self.problem.v[unit] if phase == ACTIVE else 0.0
                self.push(child, start)
        open_bounds = [leaf.bound for leaf in self.heap] + self.stuck
        self.outcome.closed = not open_bounds and self.outcome.witness is None
        self.outcome.upper = max([self.closed_max, *open_bounds])
        return self.outcome

