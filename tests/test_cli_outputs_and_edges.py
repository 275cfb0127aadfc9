"""CLI edge cases found by review and by the red-team pass (issue 17): clipped attacks on out-of-range
inputs, output paths checked before the work, malformed checkpoints, overflowing or complex weights,
bad flag values. Each is one clear line with exit code 2."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_weights

import certsdp
from certsdp.cli import main
from certsdp.cli._output import check_output
from certsdp.errors import InputError
from certsdp.network.checkpoint import CHECKPOINT_FORMAT, seal
from certsdp.network.weights import Weights


def _fails_cleanly(argv: list[str], capsys, match: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err, err
    assert err.count("\n") == 1 and "usage:" not in err, err
    return err


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "cw"])
def test_clipped_attacks_refuse_inputs_outside_the_clip_range(attack, net_and_inputs, tmp_path,
                                                              capsys) -> None:
    """Before, FGSM reported 100% error at points 1.0 away from x with eps = 0.1 (the projection of the
    box onto [0, 1] does not contain x), and 0-255 pixels dropped the clean mistakes."""
    net, _ = net_and_inputs
    X = np.random.default_rng(1).uniform(0, 255, size=(5, 6))
    inputs = tmp_path / "pixels.npz"
    np.savez(inputs, X=X, y=np.zeros(5, dtype=np.int64))
    argv = ["attack", "--weights", str(net), "--inputs", str(inputs), "--eps", "0.1", "--attack", attack,
            "--clip", "--out", str(tmp_path / "a.json"), "--no-progress"]
    _fails_cleanly(argv, capsys, "outside the clip range")
    assert main(argv[:-4] + argv[-3:]) == 0  # the unclipped box is fine


def test_output_paths_are_checked_before_the_work(net_and_inputs, tmp_path, capsys) -> None:
    net, inputs = net_and_inputs
    base = ["--weights", str(net), "--inputs", str(inputs), "--eps", "0.01", "--no-progress"]
    folder = tmp_path / "adir"
    folder.mkdir()
    _fails_cleanly(["certify", *base, "--out", str(folder)], capsys, "is a directory")
    _fails_cleanly(["attack", *base, "--attack", "fgsm", "--out", str(folder)], capsys, "is a directory")
    _fails_cleanly(["evaluate", *base, "--out", str(folder)], capsys, "is a directory")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    _fails_cleanly(["certify", *base, "--out", str(blocker / "r.json")], capsys, "cannot create its folder")
    assert not list(folder.iterdir())  # nothing left behind
    # an SDP table must be a .npz (numpy appends the suffix, so the cache was never found again)
    _fails_cleanly(["certify", *base, "--sdp-table", str(tmp_path / "table")], capsys, "must end in .npz")
    table = tmp_path / "new" / "sub" / "table.npz"  # a missing folder is created
    assert main(["certify", *base, "--sdp-table", str(table)]) == 0 and table.is_file()
    assert main(["certify", *base, "--sdp-table", str(table), "--out", str(tmp_path / "r.json")]) == 0
    assert "+recheck" in json.loads((tmp_path / "r.json").read_text())["pairs"][0]["solver"]


@pytest.mark.parametrize("broken", ["no dims", "no state", "wrong state", "no config"])
def test_malformed_checkpoints_are_refused(broken, net_and_inputs, tmp_path, capsys) -> None:
    _, inputs = net_and_inputs
    payload = {"format": CHECKPOINT_FORMAT, "dims": [6, 5, 3], "weights_sha256": "x", "config": {},
               "extra": {},
               "state_dict": {"hidden.weight": torch.zeros(5, 6), "hidden.bias": torch.zeros(5),
                              "out.weight": torch.zeros(3, 5), "out.bias": torch.zeros(3)}}
    if broken == "no dims":
        del payload["dims"]
    elif broken == "no state":
        del payload["state_dict"]
    elif broken == "wrong state":
        payload["state_dict"]["hidden.weight"] = torch.zeros(4, 6)
    else:
        del payload["config"]
    path = tmp_path / "bad.pt"
    torch.save(seal(payload), path)
    _fails_cleanly(["certify", "--weights", str(path), "--inputs", str(inputs), "--eps", "0.1", "--method",
                    "fro", "--no-progress"], capsys, "malformed")


def test_overflowing_weights(tmp_path, capsys) -> None:
    """Scores that overflow float64 have no prediction to certify: a clear error, not NaN bounds."""
    weights = random_weights(0, 6, 5, 3, scale=0.3)
    huge = Weights(W=weights.W * 1e160, b=weights.b, V=weights.V * 1e160, c=weights.c)
    net = tmp_path / "huge.npz"
    huge.save(net, dtype=np.float64)
    X = np.random.default_rng(0).uniform(0, 1, size=(4, 6))
    inputs = tmp_path / "in.npz"
    np.savez(inputs, X=X, y=np.zeros(4, dtype=np.int64))
    for method in ("fro", "spectral", "lp"):
        _fails_cleanly(["certify", "--weights", str(net), "--inputs", str(inputs), "--eps", "0.1", "--method",
                        method, "--no-progress"], capsys, "overflow")
    # large but finite scores: the spectral norm is not certifiable in float64, so nothing is certified
    big = Weights(W=weights.W * 1e160, b=weights.b, V=weights.V * 1e-160, c=weights.c)
    net2 = tmp_path / "big.npz"
    big.save(net2, dtype=np.float64)
    out = tmp_path / "s.json"
    assert main(["certify", "--weights", str(net2), "--inputs", str(inputs), "--eps", "0.1", "--method",
                 "spectral", "--no-progress", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["certified_error"] == 1.0


def test_complex_weights_are_refused(net_and_inputs, tmp_path, capsys) -> None:
    """Issue 17.8: the imaginary part was dropped with only a ComplexWarning, and exit code 0."""
    _, inputs = net_and_inputs
    w = random_weights(0, 6, 5, 3, scale=0.3)
    net = tmp_path / "complex.npz"
    np.savez(net, W=w.W + 1e-3j, b=w.b, V=w.V, c=w.c)
    _fails_cleanly(["certify", "--weights", str(net), "--inputs", str(inputs), "--eps", "0.1", "--method",
                    "fro", "--no-progress"], capsys, "W is complex")


def test_bad_weight_files_are_named(net_and_inputs, tmp_path, capsys) -> None:
    """Issue 17.9: numpy's "does not support the context manager protocol" and pickle messages."""
    _, inputs = net_and_inputs
    npy = tmp_path / "w.npy"
    np.save(npy, np.zeros((5, 6)))
    text = tmp_path / "w.npz"
    text.write_text("not an archive")
    base = ["--inputs", str(inputs), "--eps", "0.1", "--method", "fro", "--no-progress"]
    err = _fails_cleanly(["certify", "--weights", str(npy), *base], capsys, "is a .npy array")
    assert "certsdp needs an .npz with W, b, V, c or a .pt checkpoint/state_dict" in err
    _fails_cleanly(["certify", "--weights", str(text), *base], capsys, f"{text} is not an .npz archive")


@pytest.mark.parametrize("value", ["abc", "-inf", "inf", "nan", "-1", "-1e-3", ""])
def test_bad_eps_is_one_line(value, net_and_inputs, capsys) -> None:
    """Issue 17.9: argparse printed its usage block (and took -inf for a flag)."""
    net, inputs = net_and_inputs
    for command in (["certify"], ["attack", "--out", "a.json"], ["evaluate", "--out", "m.json"]):
        err = _fails_cleanly([*command, "--weights", str(net), "--inputs", str(inputs), "--eps", value],
                             capsys, "--eps")
        assert err == f"certsdp {command[0]}: error: --eps must be a finite number >= 0, got {value!r}\n"


def test_eps_minus_zero_is_zero(net_and_inputs, tmp_path, capsys) -> None:
    """Issue 17.9: --eps -0 was reported as eps=-0."""
    net, inputs = net_and_inputs
    out = tmp_path / "r.json"
    assert main(["certify", "--weights", str(net), "--inputs", str(inputs), "--eps", "-0", "--method", "fro",
                 "--no-progress", "--out", str(out)]) == 0
    assert "eps=0 " in capsys.readouterr().out
    assert math.copysign(1.0, json.loads(out.read_text())["eps"]) == 1.0


def test_empty_out_is_an_error(net_and_inputs, tmp_path, capsys) -> None:
    """Issue 17.9: --out "" wrote nothing and said nothing (exit 0)."""
    net, inputs = net_and_inputs
    _fails_cleanly(["certify", "--weights", str(net), "--inputs", str(inputs), "--eps", "0.1", "--method",
                    "fro", "--no-progress", "--out", ""], capsys, "--out is empty")


def test_flag_errors_are_one_line(capsys) -> None:
    _fails_cleanly(["certify", "--weights", "w.npz", "--eps", "0.1", "--method", "nope"], capsys,
                   "certsdp certify: error: argument --method: invalid choice: 'nope'")
    _fails_cleanly(["certify"], capsys, "required: --weights, --eps")
    _fails_cleanly(["nope"], capsys, "certsdp: error: argument command: invalid choice")


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"certsdp {certsdp.__version__}"


def test_check_output_refuses_pseudo_filesystems() -> None:
    """Issue 17.6: os.access says yes for root under /proc; the report then failed at the very end."""
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc")
    with pytest.raises(InputError, match="cannot write --out"):
        check_output("/proc/certsdp-report.json")


def test_certifying_an_npz_does_not_import_torch(net_and_inputs) -> None:
    net, inputs = net_and_inputs
    code = ("import sys; from certsdp.cli import main; "
            f"rc = main(['certify', '--weights', {str(net)!r}, '--inputs', {str(inputs)!r}, '--eps', '0.1', "
            "'--method', 'lp', '--no-progress']); print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "0 False"
