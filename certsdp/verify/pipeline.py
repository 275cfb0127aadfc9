"""One point, cheapest evidence first: robust, not_robust, misclassified or unknown.

For a point ``x`` with label ``y`` and box ``B`` (:mod:`certsdp.verify.region`), with
``g_i = f_i - f_y``: the point is *robust* iff ``max_{x~ in B} max_{i != y} g_i(x~) < 0``; a point
with ``g_i(x~) >= 0`` somewhere in ``B`` is *not robust* (ties count as errors, the attacks' rule),
and *misclassified* when that already holds at ``x``. The stages:

1. clean: the float64 margins at ``x`` (misclassified: done);
2. the instant certificates (:attr:`certsdp.bounds.base.Bound.instant`: the global SDP, Frobenius
   and spectral bounds, the LP bound, CROWN; about a millisecond each): target ``i`` is proved where
   some bound gives ``U_i < 0``, and a point with every target proved is robust without an attack
   (an attack could not find a witness there; on the paper's LP-NN this skips the attacks, 85% of
   the time, on most points);
3. attacks (:mod:`certsdp.verify.adversary`): any point the network misclassifies in float64, once
   projected into the inner box, is a witness;
4. the other selected certificates of the registry (:data:`certsdp.bounds.BOUNDS`: alpha-CROWN, the
   triangle LP, the per-example SDP, ``best``), on the targets still open;
5. exact, for the targets still open (largest bound first, each with an equal share of the time
   left): a short branch and bound (:mod:`certsdp.verify.bab`, :data:`QUICK_SHARE` of the share;
   it proves the easy targets), the MILP (:mod:`certsdp.verify.milp`) for a witness, then the rest
   of the same branch and bound for a rigorous proof. The MILP's "below 0" is never a proof.

``decided_by`` names the attack or the stage that found the witness (``pgd-ce``, ``pgd-margin``,
``milp``, ``bab``), ``clean`` for a misclassified point, and for a robust point every stage that
proved a target: the certificates' names, then ``milp`` (if a target needed it) and ``bab``, joined
by ``+``; ``none`` for unknown.

The verdict is robust only when every target is proved by a certificate or by a closed branch and
bound; ``upper`` is then ``max_i U_i < 0``. ``lower`` is the best float64 margin of any point of the
box that was looked at (a witness has ``lower >= 0``; a point proved by the instant certificates has
only been looked at in ``x`` itself, so its ``lower`` is the clean margin).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from certsdp.bounds import Bound, get_bound
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp.pairs import PairTable
from certsdp.verify.adversary import attack_points, torch_twin
from certsdp.verify.bab import TargetSearch
from certsdp.verify.leaf_bound import TargetProblem
from certsdp.verify.milp import search_target
from certsdp.verify.region import PointBox, worst_margin

VERDICTS = ("robust", "not_robust", "misclassified", "unknown")
QUICK_SHARE = 0.1
"""Fraction of a target's time for the branch and bound before the MILP (it closes easy targets)."""


@dataclass(frozen=True)
class VerifyConfig:
    """What a run checks (``eps``, ``clip``, ``time_limit`` per point) and how (attack effort, bounds)."""

    eps: float
    clip: tuple[float, float] | None = None
    time_limit: float = 60.0
    attack_steps: int = 100
    attack_restarts: int = 2
    seed: int = 0
    bounds: tuple[str, ...] = ()


@dataclass
class PointResult:
    """One verdict: a row of ``verdicts.csv`` and, for ``not_robust``, the witness."""

    index: int
    label: int
    verdict: str
    decided_by: str
    upper: float
    lower: float
    seconds: float
    witness: np.ndarray | None = field(default=None, repr=False)
    stages: dict[str, float] = field(default_factory=dict, repr=False)  # seconds per stage (benchmarks)


def prepare_bounds(weights: Weights, names: tuple[str, ...],
                   table: PairTable | None) -> list[tuple[Bound, Any]]:
    """The registry's bounds ``names`` with their eps-independent state (SDP: the pair ``table``)."""
    prepared = []
    for name in names:
        bound = get_bound(name)
        given = {"table": table, "progress": False}
        options = {key: value for key, value in given.items() if key in bound.options}
        if name == "sdp" and table is None:
            raise InputError("the sdp bound needs the network's pair table (pass --sdp-table, or leave "
                             "sdp out)")
        prepared.append((bound, bound.prepare(weights, **options)))
    return prepared


class Verifier:
    """The per-point work of a run; picklable (the torch network is rebuilt in each process)."""

    def __init__(self, weights: Weights, config: VerifyConfig, bounds: list[tuple[Bound, Any]]) -> None:
        self.weights = weights
        self.config = config
        self.bounds = bounds
        self._net: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_net"] = None
        return state

    def torch_net(self) -> Any:
        """The float64 torch twin of the weights, built once per process (not pickled)."""
        if self._net is None:
            self._net = torch_twin(self.weights)
        return self._net

    def __call__(self, index: int, x: np.ndarray, label: int) -> PointResult:
        return _Point(self, index, x, label).run()


class _Point:
    """The stages of one point, sharing its box, its best margin so far and its per-target bounds."""

    def __init__(self, verifier: Verifier, index: int, x: np.ndarray, label: int) -> None:
        self.v = verifier
        self.cfg = verifier.config
        self.index, self.x, self.label = int(index), np.asarray(x, dtype=np.float64), int(label)
        self.t0 = time.perf_counter()
        self.deadline = time.monotonic() + self.cfg.time_limit
        self.box = PointBox.around(verifier.weights, self.x, self.cfg.eps, self.cfg.clip)
        self.lower = -math.inf
        k = verifier.weights.k
        self.upper = np.full(k, math.inf)
        self.upper[self.label] = -math.inf
        self.proved_by: dict[int, str] = {}
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent in the block to ``stages[name]``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t0

    def result(self, verdict: str, decided_by: str, witness: np.ndarray | None = None) -> PointResult:
        others = np.delete(self.upper, self.label)
        return PointResult(self.index, self.label, verdict, decided_by, float(others.max()), self.lower,
                           time.perf_counter() - self.t0, witness, self.stages)

    def witness(self, points: np.ndarray) -> np.ndarray | None:
        """The first of ``points`` (rows) that, projected into the box, is misclassified in float64."""
        for z in np.atleast_2d(points):
            point = self.box.project(z)
            margin = worst_margin(self.v.weights, point, self.label)
            self.lower = max(self.lower, margin)
            if margin >= 0:
                return point
        return None

    def run(self) -> PointResult:
        clean = worst_margin(self.v.weights, self.x, self.label)
        self.lower = clean
        if clean >= 0:
            return self.result("misclassified", "clean")
        self.certificates(instant=True)
        if self.open_targets().size == 0:
            return self.exact()
        with self.stage("attacks"):
            for name, points in attack_points(self.v.weights, self.v.torch_net(), self.x, self.label,
                                              self.index, self.cfg.eps, self.cfg.clip, self.cfg.attack_steps,
                                              self.cfg.attack_restarts, self.cfg.seed):
                found = self.witness(points)
                if found is not None:
                    return self.result("not_robust", name, found)
        self.certificates(instant=False)
        return self.exact()

    def certificates(self, instant: bool) -> None:
        """Per target the least upper bound of the selected bounds that are (or are not) ``instant``;
        ``U_i < 0`` proves target ``i``. Each bound is asked only for the targets still open
        (:meth:`certsdp.bounds.base.Bound.upper_where`, whose entries on them are those of ``upper``):
        ``sdp-cert`` solves only those, ``lp-triangle`` stops after the last open class, the others
        (``alpha-crown`` optimises a point's classes as one batch) compute every target."""
        X, y = self.x[None, :], np.array([self.label])
        for bound, state in self.v.bounds:
            if bound.instant != instant:
                continue
            targets = self.open_targets()
            if targets.size == 0:
                return
            mask = np.zeros((1, self.upper.size), dtype=bool)
            mask[0, targets] = True
            with self.stage(bound.name):
                U = bound.upper_where(state, self.v.weights, X, y, self.cfg.eps, self.cfg.clip, mask)[0]
            for i in np.flatnonzero(U < self.upper):
                self.upper[i] = U[i]
                if U[i] < 0 and i not in self.proved_by:
                    self.proved_by[int(i)] = bound.name

    def open_targets(self) -> np.ndarray:
        """The targets without a proof, largest upper bound first."""
        targets = [i for i in range(self.upper.size) if i != self.label and i not in self.proved_by]
        return np.array(sorted(targets, key=lambda i: -self.upper[i]), dtype=np.intp)

    def exact(self) -> PointResult:
        """Every open target in turn, each with an equal share of the time left; robust iff every
        target is proved."""
        targets = self.open_targets()
        for n, target in enumerate(targets):
            share = max(self.deadline - time.monotonic(), 0.0) / (len(targets) - n)
            found = self.prove(int(target), share)
            if found is not None:
                return found
        if len(self.proved_by) < self.upper.size - 1:
            return self.result("unknown", "none")
        used = set(self.proved_by.values())
        stages = [bound.name for bound, _ in self.v.bounds if bound.name in used]
        exact = (["milp"] if "milp+bab" in used else []) + (["bab"] if used & {"bab", "milp+bab"} else [])
        return self.result("robust", "+".join(stages + exact))

    def prove(self, target: int, share: float) -> PointResult | None:
        """A short branch and bound, the MILP, then the rest of the same branch and bound, within
        ``share`` seconds; the not_robust result if a witness turns up, else None."""
        start = time.monotonic()
        problem = TargetProblem.build(self.v.weights, self.box, target, self.label)
        search = TargetSearch(self.v.weights, problem)
        found = self.branch_and_bound(search, target, start + QUICK_SHARE * share, "bab")
        if found is not None or target in self.proved_by:
            return found
        with self.stage("milp"):
            milp = search_target(self.v.weights, problem, start + (1 + QUICK_SHARE) * share / 2)
        self.lower = max(self.lower, milp.best_margin)
        if milp.witness is not None:
            return self.result("not_robust", "milp", milp.witness)
        return self.branch_and_bound(search, target, start + share, "milp+bab")

    def branch_and_bound(self, search: TargetSearch, target: int, until: float,
                         label: str) -> PointResult | None:
        """Run ``search`` until ``until``; record its bound (and the proof, as ``label``) or return
        the not_robust result of its witness."""
        with self.stage("bab"):
            outcome = search.run(until)
        self.lower = max(self.lower, outcome.best_margin)
        if outcome.witness is not None:
            return self.result("not_robust", "bab", outcome.witness)
        self.upper[target] = min(self.upper[target], outcome.upper)
        if outcome.closed:
            self.proved_by[target] = label
        return None


def verify_point(verifier: Verifier, index: int, x: np.ndarray, label: int) -> PointResult:
    """The verdict of one point (a module-level function, so that Dask can ship it to workers)."""
    return verifier(index, x, label)

