"""``certsdp certify``: report format and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from certsdp.cli import main
from certsdp.sdp.reference import available_solver


@pytest.mark.parametrize("method", ["sdp", "lp", "fro", "spectral"])
def test_report_format(method: str, net_and_inputs, tmp_path: Path) -> None:
    net, inputs = net_and_inputs
    out = tmp_path / "r.json"
    rc = main(["certify", "--weights", str(net), "--eps", "0.01", "--method", method, "--inputs", str(inputs),
               "--out", str(out), "--no-progress"])
    assert rc == 0
    report = json.loads(out.read_text())
    assert {"method", "eps", "n", "clean_error", "certified_error", "seconds", "bounds"} <= set(report)
    assert report["n"] == 7 and len(report["bounds"]) == 7 and report["method"] == method
    assert ("pairs" in report) == (method == "sdp")
    if method == "sdp":
        assert len(report["pairs"]) == 3
        assert all(p["lower"] <= p["upper"] for p in report["pairs"])


def test_reference_solver_agrees_with_fast(net_and_inputs, tmp_path: Path, capsys) -> None:
    net, inputs = net_and_inputs
    reports = {}
    for solver in ("fast", "reference"):
        out = tmp_path / f"{solver}.json"
        assert main(["certify", "--weights", str(net), "--eps", "0.02", "--inputs", str(inputs),
                     "--no-progress", "--sdp-solver", solver, "--out", str(out)]) == 0
        reports[solver] = json.loads(out.read_text())
    _, note = available_solver()
    err = capsys.readouterr().err
    if note:  # MOSEK missing or unlicensed: exactly one explanatory line, no traceback
        assert note in err and "Traceback" not in err
    else:
        assert "MOSEK" not in err
    for fast, ref in zip(reports["fast"]["pairs"], reports["reference"]["pairs"], strict=True):
        assert fast["lower"] <= ref["upper"] and ref["lower"] <= fast["upper"]
        assert ref["upper"] == pytest.approx(fast["upper"], rel=1e-4)


def test_sdp_table_cache_is_rechecked(net_and_inputs, tmp_path: Path, capsys) -> None:
    net, inputs = net_and_inputs
    cache = tmp_path / "table.npz"
    args = ["certify", "--weights", str(net), "--eps", "0.01", "--inputs", str(inputs), "--no-progress",
            "--sdp-table", str(cache)]
    assert main([*args, "--out", str(tmp_path / "a.json")]) == 0
    assert cache.is_file()
    assert main([*args, "--out", str(tmp_path / "b.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["certified_error"] == b["certified_error"]
    capsys.readouterr()
    assert main([*args, "--rtol", "0.01", "--out", str(tmp_path / "c.json")]) == 0
    assert "--rtol/--sdp-solver ignored" in capsys.readouterr().err
    # a table computed for other weights is refused
    other = tmp_path / "other.npz"
    random_weights(1, 6, 5, 3).save(other, dtype=np.float64)
    assert main(["certify", "--weights", str(other), "--eps", "0.01", "--inputs", str(inputs),
                 "--sdp-table", str(cache), "--no-progress"]) == 2


def _bad_weights(tmp_path: Path, **override) -> Path:
    w = random_weights(0, 6, 5, 3)
    arrays = {"W": w.W, "b": w.b, "V": w.V, "c": w.c, **override}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case", ["missing", "not_npz", "nan", "shape", "one_class", "neg_eps", "bad_inputs",
                                  "label_range", "missing_key"])
def test_bad_input_is_one_line_exit_2(case: str, net_and_inputs, tmp_path: Path, capsys) -> None:
    net, inputs = net_and_inputs
    weights, eps, inp = str(net), "0.1", str(inputs)
    w = random_weights(0, 6, 5, 3)
    if case == "missing":
        weights = str(tmp_path / "nope.npz")
    elif case == "not_npz":
        (tmp_path / "junk.npz").write_text("hello")
        weights = str(tmp_path / "junk.npz")
    elif case == "nan":
        W = w.W.copy()
        W[0, 0] = np.nan
        weights = str(_bad_weights(tmp_path, W=W))
    elif case == "shape":
        weights = str(_bad_weights(tmp_path, b=np.zeros(4)))
    elif case == "one_class":
        weights = str(_bad_weights(tmp_path, V=w.V[:1], c=w.c[:1]))
    elif case == "neg_eps":
        eps = "-0.1"
    elif case == "bad_inputs":
        np.savez(tmp_path / "x.npz", X=np.zeros((3, 5)), y=np.zeros(3, dtype=int))
        inp = str(tmp_path / "x.npz")
    elif case == "label_range":
        np.savez(tmp_path / "x.npz", X=np.zeros((3, 6)), y=np.array([0, 1, 7]))
        inp = str(tmp_path / "x.npz")
    elif case == "missing_key":
        np.savez(tmp_path / "nokey.npz", W=w.W, b=w.b, V=w.V)
        weights = str(tmp_path / "nokey.npz")
    rc = main(["certify", "--weights", weights, "--eps", eps, "--inputs", inp, "--method", "fro",
               "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith("certsdp certify: error:")


def test_bound_options_reach_the_bound(net_and_inputs, tmp_path: Path, capsys) -> None:
    """``--bound-option iters=0`` makes alpha-CROWN plain CROWN (same bounds); bad options are one line."""
    net, inputs = net_and_inputs
    bounds = {}
    for method, extra in (("crown", []), ("alpha-crown", ["--bound-option", "iters=0"])):
        out = tmp_path / f"{method}.json"
        assert main(["certify", "--weights", str(net), "--eps", "0.05", "--method", method, "--inputs",
                     str(inputs), "--out", str(out), "--no-progress", *extra]) == 0
        bounds[method] = json.loads(out.read_text())["bounds"]
    assert bounds["crown"] == bounds["alpha-crown"]
    for bad in ("iters", "no_such=1", "iters=-1"):
        capsys.readouterr()
        assert main(["certify", "--weights", str(net), "--eps", "0.05", "--method", "alpha-crown",
                     "--inputs", str(inputs), "--no-progress", "--bound-option", bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error" in err


def test_ctrl_c_is_one_line_exit_130(net_and_inputs, tmp_path: Path, capsys, monkeypatch) -> None:
    """An interrupted command (Ctrl-C in a long run) prints one line, no traceback, and exits 130."""
    import certsdp.cli.certify as certify_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(certify_cli, "certify", interrupted)
    net, inputs = net_and_inputs
    rc = main(["certify", "--weights", str(net), "--eps", "0.01", "--method", "lp", "--inputs", str(inputs),
               "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 130 and "interrupted" in err and "\n" not in err and "Traceback" not in err
