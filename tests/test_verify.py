"""``certsdp.verify``: exact verdicts on tiny networks, rigorous bounds, witnesses that are real.

References: :mod:`certsdp.bounds.exact` (the scipy/HiGHS MILP maximum of each margin, a float
reference, compared with a 1e-6 slack; points within it of a tie are skipped).
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

import certsdp.verify.pipeline as pipeline
from certsdp.bounds.exact import lp_relaxation_max_pair, milp_max_pair
from certsdp.bounds.lp import lp_pair_upper
from certsdp.network.weights import Weights
from certsdp.verify import Verifier, VerifyConfig, verify
from certsdp.verify.bab import TargetOutcome
from certsdp.verify.leaf_bound import ACTIVE, FREE, INACTIVE, TargetProblem, crown_slopes, leaf_bound
from certsdp.verify.milp import MilpOutcome
from certsdp.verify.pipeline import prepare_bounds
from certsdp.verify.region import PointBox, inner_box, margins
from certsdp.verify.slopes import best_slopes

CLIPS = [None, (0.0, 1.0)]
TIE = 1e-6


def _reference(weights, x, y, eps, clip) -> float:
    """The exact ``max_{i != y} max_box g_i`` (MILP reference)."""
    return max(milp_max_pair(weights, x, i, y, eps, clip) for i in range(weights.k) if i != y)


def _expected(weights, x, y, eps, clip) -> str | None:
    """The true verdict, or None for a point within TIE of a tie (not checked)."""
    if float(np.max(margins(weights, x, y))) >= 0:
        return "misclassified"
    ref = _reference(weights, x, y, eps, clip)
    if abs(ref) < TIE:
        return None
    return "not_robust" if ref >= 0 else "robust"


def _rows(out: Path) -> dict[int, list[str]]:
    lines = (out / "verdicts.csv").read_text().splitlines()
    assert lines[0] == "index,label,verdict,decided_by,upper,lower,seconds"
    return {int(line.split(",")[0]): line.split(",") for line in lines[1:]}


def _in_real_box(z: np.ndarray, x: np.ndarray, eps: float, clip) -> bool:
    """Exact (rational) check of ``|z - x|_inf <= eps`` and, with clip, ``z in [0, 1]^d``."""
    e = Fraction(eps)
    for zt, xt in zip(z.tolist(), x.tolist(), strict=True):
        if abs(Fraction(zt) - Fraction(xt)) > e:
            return False
        if clip is not None and not clip[0] <= zt <= clip[1]:
            return False
    return True


def _points(weights, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).uniform(0, 1, (n, weights.d))
    y = weights.scores(X).argmax(axis=1)
    y[0] = (y[0] + 1) % weights.k  # one misclassified point
    return X, y


def test_inner_box_lies_in_the_real_box_and_outer_contains_it() -> None:
    rng = np.random.default_rng(0)
    for clip in CLIPS:
        x = rng.uniform(0, 1, 50)
        x[:5] = [0.0, 1.0, 0.1, 0.7, 1e-17]
        for eps in (0.1, 0.3, 1e-9):
            lo, hi = inner_box(x, eps, clip)
            assert np.all(lo <= x) and np.all(x <= hi)
            assert _in_real_box(lo, x, eps, clip) and _in_real_box(hi, x, eps, clip)
            box = PointBox.around(random_weights(0, 50, 4, 3), x, eps, clip)
            assert np.all(box.c - box.r <= lo) and np.all(hi <= box.c + box.r)


@pytest.mark.parametrize("clip", CLIPS)
def test_leaf_bound_is_sound_for_any_slopes_and_tight_with_lp_slopes(clip) -> None:
    rng = np.random.default_rng(1)
    for seed in range(6):
        w = random_weights(seed, 3, 7, 3)
        x, eps = rng.uniform(0, 1, 3), 0.3
        box = PointBox.around(w, x, eps, clip)
        samples = box.project(rng.uniform(box.lo_in, box.hi_in, (4000, 3)))
        Z = samples @ w.W.T + w.b
        for target in (1, 2):
            p = TargetProblem.build(w, box, target, 0)
            g = margins(w, samples, 0)[:, target]
            lo, hi = p.intervals(np.full(p.v.size, FREE))
            s, _ = best_slopes(p, lo, hi, None)
            root = leaf_bound(p, lo, hi, s)
            assert lp_relaxation_max_pair(w, x, target, 0, eps, clip) - 1e-9 <= root
            assert root <= lp_relaxation_max_pair(w, x, target, 0, eps, clip) + 1e-6
            assert root <= lp_pair_upper(w, x, target, 0, eps, clip) + 1e-9
            for _ in range(20):  # random leaves, random (even absurd) slopes: still upper bounds
                phases = np.where(p.unstable, rng.choice([FREE, ACTIVE, INACTIVE], p.v.size), FREE)
                lo, hi = p.intervals(phases)
                z = Z[:, p.live]
                inside = np.all(np.where(phases == ACTIVE, z >= 0, True)
                                & np.where(phases == INACTIVE, z <= 0, True), axis=1)
                top = g[inside].max() if inside.any() else -np.inf
                for slopes in (crown_slopes(p.v, lo, hi), rng.normal(0, 3, p.v.size),
                               best_slopes(p, lo, hi, None)[0]):
                    assert leaf_bound(p, lo, hi, slopes) >= top


@pytest.mark.parametrize("clip", CLIPS)
def test_exact_verdicts_and_real_witnesses(clip, tmp_path: Path) -> None:
    """MILP + branch and bound alone (no attacks, no certificates) decide every point exactly."""
    eps = 0.15
    checked = 0
    for seed in range(4):
        w = random_weights(seed, 5, 8, 3)
        X, y = _points(w, 10, seed)
        out = tmp_path / f"run{seed}"
        summary = verify(w, X, y, eps, out, clip=clip, attack_restarts=0, bounds=(), time_limit=30)
        assert summary["counts"]["unknown"] == 0
        rows = _rows(out)
        found = np.load(out / "witnesses.npz")
        witnesses = dict(zip(found["index"].tolist(), found["X"], strict=True))
        for i in range(len(y)):
            verdict = rows[i][2]
            expected = _expected(w, X[i], int(y[i]), eps, clip)
            if expected is not None:
                assert verdict == expected, (seed, i, rows[i])
                checked += 1
            upper, lower = float(rows[i][4]), float(rows[i][5])
            assert lower <= upper
            if verdict == "robust":
                assert upper < 0 and rows[i][3] in ("bab", "milp+bab")
            if verdict == "not_robust":
                z = witnesses[i]
                assert _in_real_box(z, X[i], eps, clip)
                scores = w.scores(z[None, :])[0]  # the network's own float64 forward pass
                assert np.max(np.delete(scores, y[i])) >= scores[y[i]] and lower >= 0
        assert set(witnesses) == {i for i in rows if rows[i][2] == "not_robust"}
    assert checked >= 35


@pytest.mark.parametrize("clip", CLIPS)
def test_full_pipeline_agrees_with_the_reference(clip, tmp_path: Path) -> None:
    """Attacks, every registered certificate, MILP and branch and bound, at a larger radius."""
    w = random_weights(7, 4, 6, 3)
    X, y = _points(w, 8, 7)
    summary = verify(w, X, y, 0.25, tmp_path, clip=clip, attack_steps=10, attack_restarts=2, time_limit=30)
    rows = _rows(tmp_path)
    for i in range(len(y)):
        expected = _expected(w, X[i], int(y[i]), 0.25, clip)
        assert expected is None or rows[i][2] == expected
    assert summary["done"] == summary["n"] == 8


def test_points_the_instant_certificates_prove_are_never_attacked(tmp_path: Path, monkeypatch) -> None:
    """The instant bounds (lp, crown, ...) run before the attacks: a point they prove is robust without
    an attack (the verdicts are those of attacking first), and only the other points are attacked."""
    w = random_weights(4, 5, 8, 3)
    X, y = _points(w, 10, 4)
    eps = 0.02
    first = verify(w, X, y, eps, tmp_path / "all", attack_steps=10, bounds=("lp", "crown"))
    attacked: list[int] = []
    real = pipeline.attack_points

    def counted(weights, net, x, label, index, *args):
        attacked.append(index)
        return real(weights, net, x, label, index, *args)

    monkeypatch.setattr(pipeline, "attack_points", counted)
    again = verify(w, X, y, eps, tmp_path / "counted", attack_steps=10, bounds=("lp", "crown"))
    rows = _rows(tmp_path / "counted")
    instant = {i for i, row in rows.items() if row[2] == "robust" and "milp" not in row[3]
               and "bab" not in row[3]}
    assert instant and not instant & set(attacked)  # proved ones never attacked
    assert set(attacked) == {i for i, row in rows.items() if row[2] != "misclassified"} - instant
    assert {i: r[2] for i, r in rows.items()} == {i: r[2] for i, r in _rows(tmp_path / "all").items()}
    assert first["counts"] == again["counts"]
    for i in instant:  # looked at x only: the clean margin
        assert float(rows[i][5]) == pytest.approx(float(np.max(margins(w, X[i], int(y[i])))))


def test_an_expensive_bound_is_asked_only_for_the_open_targets(tmp_path: Path, monkeypatch) -> None:
    """After lp and crown, sdp-cert is asked (upper_where) for exactly the targets they left open, and
    the verdicts and decided_by are those of asking it for every target."""
    from certsdp.bounds import certify
    from certsdp.bounds.sdp_cert import SDPCertBound

    w = random_weights(8, 5, 8, 4)
    X, y = _points(w, 10, 8)
    eps, bounds = 0.2, ("lp", "crown", "sdp-cert")
    cheap = np.minimum(certify(w, X, y, eps, "lp", progress=False).upper,
                       certify(w, X, y, eps, "crown", progress=False).upper)
    asked: dict[int, np.ndarray] = {}
    real = SDPCertBound.upper_where

    def spy(self, state, weights, X1, y1, eps1, clip, mask):
        index = int(np.flatnonzero(np.all(X == X1[0], axis=1))[0])
        asked[index] = mask[0].copy()
        return real(self, state, weights, X1, y1, eps1, clip, mask)

    monkeypatch.setattr(SDPCertBound, "upper_where", spy)
    masked = verify(w, X, y, eps, tmp_path / "masked", attack_restarts=0, bounds=bounds, workers=0)
    assert asked and any(0 < m.sum() < w.k - 1 for m in asked.values())  # some targets were skipped
    for index, mask in asked.items():
        assert np.array_equal(mask, cheap[index] >= 0), index  # exactly the open targets (label: -inf)
    monkeypatch.setattr(SDPCertBound, "upper_where", lambda self, state, weights, X1, y1, eps1, clip, mask:
                        self.upper(state, weights, X1, y1, eps1, clip))
    full = verify(w, X, y, eps, tmp_path / "full", attack_restarts=0, bounds=bounds, workers=0)
    rows, rows_full = _rows(tmp_path / "masked"), _rows(tmp_path / "full")
    assert {i: r[2:4] for i, r in rows.items()} == {i: r[2:4] for i, r in rows_full.items()}
    assert any("sdp-cert" in r[3] for r in rows.values())  # the expensive bound proved something
    assert masked["counts"] == full["counts"]


def test_robust_is_never_taken_on_the_milps_word(tmp_path: Path, monkeypatch) -> None:
    """A MILP that always answers "below 0" (a wrong HiGHS) cannot make a point robust: the branch and
    bound finds the witnesses; and without a closed branch and bound nothing is robust."""
    w = random_weights(2, 5, 8, 3)
    X, y = _points(w, 10, 2)
    expected = [_expected(w, X[i], int(y[i]), 0.15, None) for i in range(len(y))]
    assert "not_robust" in expected and "robust" in expected
    monkeypatch.setattr(pipeline, "search_target", lambda *args: MilpOutcome(status="below"))
    verify(w, X, y, 0.15, tmp_path / "lying_milp", attack_restarts=0, bounds=())
    rows = _rows(tmp_path / "lying_milp")
    for i, exp in enumerate(expected):
        assert exp is None or rows[i][2] == exp
        assert rows[i][2] != "not_robust" or rows[i][3] == "bab"
    monkeypatch.setattr(pipeline.TargetSearch, "run",
                        lambda self, deadline: TargetOutcome(closed=False, upper=math.inf))
    verify(w, X, y, 0.15, tmp_path / "open_bab", attack_restarts=0, bounds=())
    rows = _rows(tmp_path / "open_bab")
    assert all(row[2] != "robust" for row in rows.values())
    assert {row[2] for row in rows.values()} <= {"unknown", "not_robust", "misclassified"}


def test_unknown_reports_a_rigorous_upper_bound(tmp_path: Path) -> None:
    """With almost no time the verdict is unknown, and ``upper`` is still a true upper bound."""
    w = random_weights(3, 5, 8, 3)
    X, y = _points(w, 8, 3)
    summary = verify(w, X, y, 0.3, tmp_path, attack_restarts=0, bounds=(), time_limit=1e-6)
    assert summary["counts"]["unknown"] >= 1
    for i, row in _rows(tmp_path).items():
        if row[2] == "unknown":
            assert float(row[4]) >= _reference(w, X[i], int(y[i]), 0.3, None) - 1e-9
            assert row[3] == "none"


def test_an_overflowing_score_is_no_witness() -> None:
    """A score that overflows to +inf in float64 proves nothing (review finding): the point below is
    robust in exact arithmetic (g_1(t) = -0.4e308 t - 1 < 0 on the box), and was reported not_robust."""
    w = Weights(W=np.ones((3, 1)), b=np.zeros(3),
                V=np.array([[0.9e308, 0.0, 0.0], [1e308, 1e308, -1.5e308]]), c=np.array([1.0, 0.0]))
    with np.errstate(over="ignore", invalid="ignore"):
        assert margins(w, np.array([1.0]), 0)[1] == -np.inf  # float64 says +inf; no evidence
        cfg = VerifyConfig(eps=0.5, time_limit=2.0, attack_restarts=2, bounds=("lp", "crown"))
        result = Verifier(w, cfg, prepare_bounds(w, cfg.bounds, None))(0, np.array([0.5]), 0)
    assert result.verdict != "not_robust" and result.witness is None


def test_a_tie_within_rounding_is_not_a_mistake() -> None:
    """Float64 rounds the clean margin to 0 (a 'tie') while the exact margin is -2^-60: not misclassified."""
    w = Weights(W=np.ones((1, 1)), b=np.array([-(2.0**-60)]), V=np.array([[0.0], [1.0]]),
                c=np.array([1.0, 0.0]))
    x = np.array([1.0])
    scores = w.scores(x[None])[0]
    assert scores[1] - scores[0] == 0.0  # float64 sees a tie, which the attacks' rule counts as a mistake
    assert margins(w, x, 0)[1] < 0  # the rigorous lower bound does not claim a mistake
    cfg = VerifyConfig(eps=2.0**-70, time_limit=2.0, attack_restarts=0, bounds=("lp",))
    result = Verifier(w, cfg, prepare_bounds(w, cfg.bounds, None))(0, x, 0)
    assert result.verdict in ("robust", "unknown")


def test_the_default_bounds_leave_out_the_combination_best() -> None:
    """``best`` would repeat the per-example SDP on the targets that bound already left open."""
    from certsdp.bounds import BOUNDS
    from certsdp.verify.api import check_bounds

    default = check_bounds(None)
    assert "best" in BOUNDS and "best" not in default
    assert set(default) == set(BOUNDS) - {"best"} and "sdp-cert" in default
    assert check_bounds(["best", "lp", "best"]) == ("best", "lp")  # still available when asked for
