"""A pair table is only ever used with the weights it was certified for (:mod:`certsdp.sdp.table`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from certsdp.bounds.certify import certify
from certsdp.bounds.lipschitz import add_lipschitz_slack
from certsdp.bounds.sdp import sdp_constants
from certsdp.errors import InputError
from certsdp.sdp import acquire_pair_table, certify_dual, load_pair_table, save_pair_table, solve_pairs
from certsdp.sdp.matrix import coupling_block


@pytest.fixture(scope="module")
def two_nets():
    a = random_weights(7, 6, 5, 3, scale=0.3)
    b = random_weights(8, 6, 5, 3, scale=0.3)  # same shapes, other values
    return a, b, solve_pairs(a, progress=False)


def _inputs(weights, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(0).uniform(0, 1, (n, weights.d))
    return X, weights.scores(X).argmax(axis=1)


def test_table_of_other_weights_is_refused(two_nets) -> None:
    a, b, table = two_nets
    X, y = _inputs(b)
    certify(a, *_inputs(a), 0.1, "sdp", table=table, progress=False)  # its own weights: fine
    with pytest.raises(InputError, match="other weights"):
        certify(b, X, y, 0.1, "sdp", table=table, progress=False)


def test_table_of_another_class_count_is_refused(two_nets) -> None:
    a, _, _ = two_nets
    four = random_weights(9, 6, 5, 4, scale=0.3)
    X, y = _inputs(a)
    with pytest.raises(InputError, match="k = 4"):
        certify(a, X, y, 0.1, "sdp", table=solve_pairs(four, progress=False), progress=False)


def test_pair_constants_must_match_the_class_count() -> None:
    margins = np.zeros((2, 3))
    y = np.array([0, 1])
    with pytest.raises(InputError, match="3 x 3"):
        add_lipschitz_slack(margins, y, 0.1, np.zeros((1, 1)))
    with pytest.raises(InputError, match="square"):
        sdp_constants(np.zeros((3, 2)))


def _tamper(src: Path, dst: Path, **changes) -> Path:
    with np.load(src) as z:
        data = {key: z[key] for key in z.files}
    data.update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del data[key]
    np.savez(dst, **data)
    return dst


def test_tampered_table_files_are_refused(two_nets, tmp_path: Path) -> None:
    a, _, table = two_nets
    path = tmp_path / "table.npz"
    save_pair_table(table, str(path))
    np.testing.assert_allclose(load_pair_table(str(path), a).upper, table.upper, rtol=1e-6)
    with np.load(path) as z:
        pairs, duals = z["pairs"], z["duals"]
    cases = {
        "k = 2": {"k": np.array(2)},
        "distinct": {"pairs": np.r_[pairs[:1], pairs[:1], pairs[2:]]},
        "0 <= i < j": {"pairs": -pairs[:, ::-1]},
        "duals must have shape": {"duals": duals[:, :-1]},
        "one entry per pair": {"seconds": np.zeros(1)},
        "primal_rank must hold": {"primal_rank": np.full(len(pairs), 10**6)},
        "lacks the entry": {"duals": None},
    }
    for n, (message, change) in enumerate(cases.items()):
        bad = _tamper(path, tmp_path / f"bad{n}.npz", **change)
        with pytest.raises(InputError, match=message):
            load_pair_table(str(bad), a)


def test_a_malformed_cache_is_refused_not_solved_again(two_nets, tmp_path: Path) -> None:
    """One policy (:func:`acquire_pair_table`): a damaged file is an error, never silently replaced."""
    a, _, table = two_nets
    path = tmp_path / "table.npz"
    save_pair_table(table, str(path))
    with np.load(path) as z:
        duals = z["duals"]
    _tamper(path, path, duals=duals[:, :-1])
    before = path.read_bytes()
    with pytest.raises(InputError, match="duals must have shape"):
        acquire_pair_table(a, path)
    assert path.read_bytes() == before


def test_certify_dual_refuses_mismatched_or_nonfinite_input(two_nets) -> None:
    a, _, _ = two_nets
    B = coupling_block(a.W, a.V[0] - a.V[1])
    c_T, c_U = np.ones(B.shape[0]), np.ones(B.shape[1])
    upper64, _, _ = certify_dual(B, c_T, c_U, 0.0)
    upper32, _, _ = certify_dual(B.astype(np.float32), c_T, c_U, 0.0)  # promoted to float64
    assert np.isfinite(upper64) and np.isfinite(upper32)
    with pytest.raises(InputError, match="splits"):
        certify_dual(B, c_T[:-1], c_U, 0.0)
    bad = B.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="finite"):
        certify_dual(bad, c_T, c_U, 0.0)


def test_a_loaded_table_reports_its_stored_solve_time(two_nets, tmp_path: Path) -> None:
    """Table 1's "SDP seconds" for a cached table is the time the pairs took to solve, not 0."""
    a, _, table = two_nets
    path = tmp_path / "table.npz"
    save_pair_table(table, str(path))
    loaded = load_pair_table(str(path), a)
    per_pair = [c.seconds for c in table.certificates.values()]
    assert loaded.seconds == pytest.approx(sum(per_pair)) and loaded.seconds > 0
