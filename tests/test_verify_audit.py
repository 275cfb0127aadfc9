"""The skeptic's re-check of a verify folder (certsdp.verify.audit) against rationals and a real run."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from certsdp.errors import InputError
from certsdp.verify import Verifier, VerifyConfig, verify_point
from certsdp.verify.audit import audit_errors, within
from certsdp.verify.pipeline import prepare_bounds
from certsdp.verify.runner import open_store, run_verification


def test_the_box_test_is_exact_against_rationals() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 4000)
    eps = 0.1
    # candidates at and around the float corners x -/+ eps, where rounding decides
    z = np.concatenate([x + eps, x - eps, np.nextafter(x + eps, 2), np.nextafter(x - eps, -2),
                        np.nextafter(x + eps, -2), np.nextafter(x - eps, 2)])
    xs = np.tile(x, 6)
    got = within(z[:, None], xs[:, None], eps)
    truth = np.array([abs(Fraction(a) - Fraction(b)) <= Fraction(eps) for a, b in zip(z, xs, strict=True)])
    assert np.array_equal(got, truth)
    assert 0 < truth.sum() < truth.size  # both outcomes occur


def _run(tmp_path: Path, clip):
    w = random_weights(3, 5, 8, 3)
    X = np.random.default_rng(3).uniform(0, 1, (12, 5))
    y = w.scores(X).argmax(axis=1)
    y[:2] = (y[:2] + 1) % 3  # two clean mistakes
    config = VerifyConfig(eps=0.3, clip=clip, attack_restarts=1, bounds=("lp",), time_limit=30)
    verifier = Verifier(w, config, prepare_bounds(w, config.bounds, None))
    store = open_store(w, config, np.arange(12), X, y, tmp_path)
    try:
        run_verification(verifier, store, np.arange(12), X, y, solve=verify_point)
    finally:
        store.close()
    rows = [line.split(",") for line in (tmp_path / "verdicts.csv").read_text().splitlines()[1:]]
    verdicts = {int(r[0]): r[2] for r in rows}
    wit = np.load(tmp_path / "witnesses.npz")
    return w, X, y, verdicts, wit["index"], wit["X"]


@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
def test_a_real_run_passes_and_every_forgery_is_caught(tmp_path: Path, clip) -> None:
    w, X, y, verdicts, index, Z = _run(tmp_path, clip)
    assert len(index) > 0, "the test needs a not_robust point"
    audit = audit_errors(w, X, y, verdicts, index, Z, 0.3, clip)
    assert (audit.misclassified, audit.witnesses) == (2, len(index))
    outside = Z.copy()
    outside[0, 0] = np.nextafter(X[index[0], 0] + 0.3, 9)  # one float above x + eps (or above 1)
    with pytest.raises(InputError, match="outside its box"):
        audit_errors(w, X, y, verdicts, index, outside, 0.3, clip)
    correct = Z.copy()
    correct[0] = X[index[0]]  # the clean point: in the box, classified correctly
    with pytest.raises(InputError, match="classified correctly"):
        audit_errors(w, X, y, verdicts, index, correct, 0.3, clip)
    robust = next(i for i, v in verdicts.items() if v == "robust")
    with pytest.raises(InputError, match="without a not_robust row"):
        audit_errors(w, X, y, verdicts, np.append(index, robust), np.vstack([Z, X[robust]]), 0.3, clip)
    with pytest.raises(InputError, match="marked misclassified"):
        audit_errors(w, X, y, {**verdicts, robust: "misclassified"}, index, Z, 0.3, clip)
