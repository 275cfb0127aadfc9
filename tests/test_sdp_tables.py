"""SDP pair tables on disk: the one acquisition policy, and files that must never yield wrong numbers.

A stored table is re-certified on load: upper bounds from the stored dual vectors, primal values
from the stored primal points (:mod:`certsdp.sdp.table`). Every bad file is one line of
:class:`InputError` (exit code 2 from the command line).
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from certsdp.cli import main
from certsdp.errors import InputError
from certsdp.sdp import acquire_pair_table, load_pair_table, save_pair_table, solve_pairs
from certsdp.sdp.table import upgrade_pair_table


@pytest.fixture(scope="module")
def nets():
    """Two networks of the same shape (``a``, ``b``) and ``a``'s solved table."""
    a = random_weights(7, 6, 5, 3, scale=0.3)
    b = random_weights(8, 6, 5, 3, scale=0.3)
    return a, b, solve_pairs(a, progress=False)


def _rewrite(src: Path, dst: Path, **changes) -> Path:
    """Copy the table ``src`` to ``dst`` with some entries replaced (None: removed)."""
    with np.load(src) as z:
        data = {key: z[key] for key in z.files}
    data.update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del data[key]
    np.savez(dst, **data)
    return dst


def _assert_true_numbers(loaded, fresh) -> None:
    """Every reported primal value is a value of a feasible point: at most the certified S_ij."""
    for (i, j), cert in loaded.certificates.items():
        assert cert.upper >= fresh.upper[i, j] * (1 - 1e-9), "an upper bound below the optimum"
        if cert.lower is not None:
            assert cert.lower <= fresh.upper[i, j] * (1 + 1e-9), f"pair {(i, j)}: lower above S_ij"
            assert cert.gap >= -1e-9 * abs(cert.upper)
    assert loaded.max_gap is None or loaded.max_gap >= -1e-9


# --- one acquisition policy ---------------------------------------------------------------------


def test_acquire_solves_saves_and_loads(nets, tmp_path: Path) -> None:
    a, _, table = nets
    path = tmp_path / "sub" / "t.npz"
    first = acquire_pair_table(a, path)
    assert path.is_file()
    np.testing.assert_array_equal(first.upper, table.upper)

    def no_solver(*_):
        raise AssertionError("an existing table must be loaded, not solved")

    again = acquire_pair_table(a, path, solver=no_solver)
    np.testing.assert_allclose(again.upper, table.upper, rtol=1e-9)
    np.testing.assert_array_equal(again.lower, first.lower)  # recomputed from the stored primal points
    assert all(c.solver.endswith("+recheck") for c in again.certificates.values())
    np.testing.assert_array_equal(acquire_pair_table(a).upper, table.upper)  # no path: solved


def test_acquire_never_solves_over_a_table_of_other_weights(nets, tmp_path: Path) -> None:
    a, b, table = nets
    path = tmp_path / "t.npz"
    save_pair_table(table, path)
    before = path.read_bytes()
    with pytest.raises(InputError) as info:
        acquire_pair_table(b, path)
    message = str(info.value)
    assert message.startswith(f"SDP table {path} was computed for other weights (sha256 ")
    assert message.endswith("; delete it or pass another --sdp-table") and "malformed" not in message
    assert "\n" not in message and path.read_bytes() == before


def test_acquire_without_solving_names_the_command(nets, tmp_path: Path) -> None:
    a, _, _ = nets
    with pytest.raises(InputError, match="certsdp certify .*--sdp-table"):
        acquire_pair_table(a, tmp_path / "absent.npz", solve_missing=False)
    assert not (tmp_path / "absent.npz").exists()
    with pytest.raises(InputError, match="is a folder"):
        acquire_pair_table(a, tmp_path)


# --- issue 17, defect 2: stored primal values are recomputed, never passed through -----------------


def test_stored_lower_values_are_not_reported(nets, tmp_path: Path) -> None:
    a, _, table = nets
    path = tmp_path / "t.npz"
    save_pair_table(table, path)
    forged = _rewrite(path, tmp_path / "forged.npz", lower=np.full(len(table.certificates), 1e3))
    loaded = load_pair_table(forged, a)
    _assert_true_numbers(loaded, table)
    assert loaded.max_gap is not None and 0 <= loaded.max_gap <= table.max_gap * 10 + 1e-12


def test_swapped_pair_rows_report_true_values(nets, tmp_path: Path) -> None:
    a, _, table = nets
    path = tmp_path / "t.npz"
    save_pair_table(table, path)
    with np.load(path) as z:
        pairs = z["pairs"]
    order = np.argsort([table.upper[i, j] for i, j in pairs])
    swapped = pairs.copy()
    swapped[[order[0], order[-1]]] = pairs[[order[-1], order[0]]]  # the smallest and the largest S_ij
    _assert_true_numbers(load_pair_table(_rewrite(path, tmp_path / "swapped.npz", pairs=swapped), a), table)


def test_a_forged_hash_cannot_import_another_networks_values(nets, tmp_path: Path) -> None:
    a, b, table = nets
    other = solve_pairs(b, progress=False)
    path = tmp_path / "b.npz"
    save_pair_table(other, path)
    forged = _rewrite(path, tmp_path / "forged.npz", weights_sha256=np.array(a.content_hash()))
    _assert_true_numbers(load_pair_table(forged, a), table)


def test_a_table_without_primal_points_reports_lower_as_unknown(nets, tmp_path: Path) -> None:
    """Format 1 (before primal points were stored): upper bounds re-certified, primal values unknown."""
    a, _, table = nets
    path = tmp_path / "t.npz"
    save_pair_table(table, path)
    old = _rewrite(path, tmp_path / "old.npz", format=None, primal=None, primal_rank=None,
                   lower=np.array([c.lower for _, c in sorted(table.certificates.items())]))
    loaded, current = load_pair_table(old, a), load_pair_table(path, a)
    np.testing.assert_array_equal(loaded.upper, current.upper)
    assert all(c.lower is None and c.gap is None for c in loaded.certificates.values())
    assert loaded.max_gap is None and loaded.max_rel_gap is None
    assert np.all(np.isnan(loaded.lower))
    rows = loaded.pairs_json()
    assert rows and all(r["lower"] is None and r["gap"] is None for r in rows)
    json.dumps(rows, allow_nan=False)  # a report can hold them


def test_upgrading_an_old_table_keeps_its_upper_bounds(nets, tmp_path: Path) -> None:
    a, _, table = nets
    path = tmp_path / "t.npz"
    save_pair_table(table, path)
    old = _rewrite(path, tmp_path / "old.npz", format=None, primal=None, primal_rank=None)
    before = load_pair_table(old, a)
    upgraded = upgrade_pair_table(old, a)
    after = load_pair_table(old, a)
    np.testing.assert_array_equal(after.upper, before.upper)
    np.testing.assert_array_equal(after.lower, table.lower)  # the same deterministic solve
    assert after.max_gap is not None and upgraded.max_gap == after.max_gap
    assert all(c.solver.count("+recheck") == 1 for c in after.certificates.values())


def test_an_infeasible_primal_point_is_refused(nets, tmp_path: Path) -> None:
    a, _, table = nets
    path = tmp_path / "t.npz"
    save_pair_table(table, path)
    with np.load(path) as z:
        primal = z["primal"]
    with pytest.raises(InputError, match="malformed: pair .*not feasible"):
        load_pair_table(_rewrite(path, tmp_path / "big.npz", primal=primal * 1.01), a)


# --- defect 4: concurrent writers ----------------------------------------------------------------


def _write_repeatedly(path: str, times: int) -> None:
    table = solve_pairs(random_weights(7, 6, 5, 3, scale=0.3), progress=False)
    for _ in range(times):
        save_pair_table(table, path)


def test_concurrent_writers_never_expose_a_partial_table(nets, tmp_path: Path) -> None:
    """Two processes rewrite one table while this one reads it: every read sees a whole table."""
    a, _, table = nets
    path = tmp_path / "shared.npz"
    save_pair_table(table, path)
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_repeatedly, args=(str(path), 300)) for _ in range(2)]
    for proc in writers:
        proc.start()
    reads, errors = 0, []
    try:
        while any(proc.is_alive() for proc in writers) or reads == 0:
            try:
                load_pair_table(path, a)
                reads += 1
            except Exception as exc:  # noqa: BLE001 - any failure is the defect
                errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        for proc in writers:
            proc.join()
    assert all(proc.exitcode == 0 for proc in writers)
    assert not errors, f"{len(errors)} of {reads + len(errors)} reads failed, e.g. {errors[0]}"
    assert not [p for p in tmp_path.iterdir() if p.name != "shared.npz"], "temporary files left behind"


def test_an_interrupted_write_leaves_the_old_table(nets, tmp_path: Path, monkeypatch) -> None:
    a, _, table = nets
    path = tmp_path / "t.npz"
    save_pair_table(table, path)
    before = path.read_bytes()

    def crash(file, **_):
        (open(file, "wb") if isinstance(file, (str, Path)) else file).write(b"PK\x03\x04 half a table")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(KeyboardInterrupt):
        save_pair_table(table, path)
    assert path.read_bytes() == before


# --- defects 5 and 9: malformed files are one line ------------------------------------------------


def _flip_a_byte_of(path: Path, member: str, dst: Path) -> Path:
    data = bytearray(path.read_bytes())
    start = data.index(member.encode()) + len(member) + 40  # inside the member's compressed data
    data[start] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def _bad_tables(path: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    with np.load(path) as z:
        duals = z["duals"]
    text = tmp_path / "text.npz"
    text.write_text("not a table\n")
    malformed = "is malformed: "
    return {
        "flipped byte": (_flip_a_byte_of(path, "duals.npy", tmp_path / "flipped.npz"), malformed),
        "huge duals": (_rewrite(path, tmp_path / "huge.npz", duals=np.full_like(duals, 1e308)), malformed),
        "nan duals": (_rewrite(path, tmp_path / "nan.npz", duals=np.full_like(duals, np.nan)), malformed),
        "text file": (text, "is not an .npz archive"),
        "object array": (_rewrite(path, tmp_path / "obj.npz", duals=np.array([None, 1])), malformed),
    }


@pytest.mark.parametrize("case", ["flipped byte", "huge duals", "nan duals", "text file", "object array"])
def test_malformed_tables_are_one_line_errors(case: str, nets, tmp_path: Path) -> None:
    a, _, table = nets
    path = tmp_path / "t.npz"
    save_pair_table(table, path)
    bad, message = _bad_tables(path, tmp_path)[case]
    with pytest.raises(InputError) as info:
        load_pair_table(bad, a)
    assert str(info.value).startswith(f"SDP table {bad} {message}") and "\n" not in str(info.value)


@pytest.mark.parametrize("case", ["flipped byte", "huge duals", "text file", "other weights"])
def test_cli_refuses_bad_tables_with_exit_code_2(case: str, net_and_inputs, tmp_path: Path, capsys) -> None:
    net, inputs = net_and_inputs
    base = ["certify", "--weights", str(net), "--eps", "0.01", "--inputs", str(inputs), "--no-progress"]
    good = tmp_path / "good.npz"
    assert main([*base, "--sdp-table", str(good)]) == 0
    if case == "other weights":
        other = tmp_path / "other.npz"
        random_weights(1, 6, 5, 3).save(other, dtype=np.float64)
        base[2], bad, message = str(other), good, "was computed for other weights"
    else:
        bad, message = _bad_tables(good, tmp_path)[case]
    capsys.readouterr()
    assert main([*base, "--sdp-table", str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
