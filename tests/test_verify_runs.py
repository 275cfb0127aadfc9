"""``certsdp verify`` runs: durable verdicts, resume without recomputation, Dask, one-line errors."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from certsdp.errors import InputError
from certsdp.verify import Verifier, VerifyConfig, verify, verify_point
from certsdp.verify.pipeline import prepare_bounds
from certsdp.verify.runner import open_store, run_verification
from certsdp.verify.store import HEADER, RunStore

EPS = 0.15


def _data(n: int = 10, seed: int = 2):
    w = random_weights(seed, 5, 8, 3)
    X = np.random.default_rng(seed).uniform(0, 1, (n, 5))
    return w, X, w.scores(X).argmax(axis=1)


def _run(w, X, y, out: Path, solve=verify_point) -> dict:
    """A run through the runner (the per-point function can be wrapped to count calls)."""
    config = VerifyConfig(eps=EPS, attack_restarts=0, bounds=("lp",), time_limit=30)
    verifier = Verifier(w, config, prepare_bounds(w, config.bounds, None))
    indices = np.arange(len(y))
    store = open_store(w, config, indices, X, y, out)
    try:
        return run_verification(verifier, store, indices, X, y, solve=solve)
    finally:
        store.close()


def _verdicts(out: Path) -> dict[int, str]:
    lines = (out / "verdicts.csv").read_text().splitlines()
    assert lines[0] == HEADER
    return {int(line.split(",")[0]): line.split(",")[2] for line in lines[1:]}


class Counter:
    """A per-point function that records its calls and, optionally, dies after ``stop`` of them."""

    def __init__(self, stop: int | None = None) -> None:
        self.calls: list[int] = []
        self.stop = stop

    def __call__(self, verifier, index, x, label):
        if self.stop is not None and len(self.calls) == self.stop:
            raise KeyboardInterrupt
        self.calls.append(index)
        return verify_point(verifier, index, x, label)


def test_interrupted_run_resumes_without_losing_or_redoing_points(tmp_path: Path) -> None:
    w, X, y = _data()
    reference = tmp_path / "reference"
    _run(w, X, y, reference)
    out = tmp_path / "out"
    first = Counter(stop=4)
    with pytest.raises(KeyboardInterrupt):
        _run(w, X, y, out, first)
    assert sorted(_verdicts(out)) == first.calls == [0, 1, 2, 3]
    assert json.loads((out / "summary.json").read_text())["done"] == 4
    second = Counter()
    summary = _run(w, X, y, out, second)
    assert sorted(second.calls) == list(range(4, 10))
    assert _verdicts(out) == _verdicts(reference) and summary["done"] == 10
    witnesses = np.load(out / "witnesses.npz")
    assert sorted(witnesses["index"].tolist()) == [i for i, v in _verdicts(out).items() if v == "not_robust"]
    third = Counter()
    _run(w, X, y, out, third)
    assert third.calls == []


def test_a_committed_folder_without_the_log_resumes_from_witnesses_npz(tmp_path: Path) -> None:
    w, X, y = _data(n=12)
    _run(w, X[:8], y[:8], tmp_path / "full")
    out = tmp_path / "out"
    first = Counter(stop=6)
    with pytest.raises(KeyboardInterrupt):
        _run(w, X[:8], y[:8], out, first)
    before = np.load(out / "witnesses.npz")
    assert len(before["index"]) > 0, "the test needs a not_robust point among the first six"
    (out / "witnesses.log").unlink()  # what git keeps of a results/verify folder
    second = Counter()
    _run(w, X[:8], y[:8], out, second)
    assert sorted(second.calls) == [6, 7]
    after = np.load(out / "witnesses.npz")
    reference = np.load(tmp_path / "full" / "witnesses.npz")
    assert after["index"].tolist() == reference["index"].tolist()
    np.testing.assert_array_equal(after["X"], reference["X"])


def test_torn_last_line_is_dropped_and_recomputed(tmp_path: Path) -> None:
    w, X, y = _data()
    _run(w, X, y, tmp_path)
    csv = tmp_path / "verdicts.csv"
    lines = csv.read_text().splitlines(keepends=True)
    last = int(lines[-1].split(",")[0])
    csv.write_text("".join(lines[:-1]) + lines[-1][:9])  # a kill in the middle of the last write
    again = Counter()
    _run(w, X, y, tmp_path, again)
    assert again.calls == [last]
    assert len(csv.read_text().splitlines()) == len(lines) and csv.read_text().endswith("\n")
    csv.write_text("".join(lines[:3]) + "garbage\n" + "".join(lines[3:]))
    with pytest.raises(InputError, match="line 4 is malformed"):
        _run(w, X, y, tmp_path)


def test_other_arguments_and_a_second_process_are_refused(tmp_path: Path) -> None:
    w, X, y = _data(4)
    verify(w, X, y, EPS, tmp_path, attack_restarts=0, bounds=("lp",), time_limit=30, workers=0)
    with pytest.raises(InputError, match=r"other arguments \(eps differ\)"):
        verify(w, X, y, 0.2, tmp_path, attack_restarts=0, bounds=("lp",), time_limit=30)
    with pytest.raises(InputError, match="time_limit differ"):
        verify(w, X, y, EPS, tmp_path, attack_restarts=0, bounds=("lp",), time_limit=5)
    held = RunStore.open(tmp_path / "busy", {"k": 1}, 5)
    try:
        with pytest.raises(InputError, match="in use by another"):
            RunStore.open(tmp_path / "busy", {"k": 1}, 5)
    finally:
        held.close()
    RunStore.open(tmp_path / "busy", {"k": 1}, 5).close()  # released


def test_two_worker_cluster_gives_the_in_process_verdicts(tmp_path: Path) -> None:
    w, X, y = _data(8, seed=5)
    alone = verify(w, X, y, EPS, tmp_path / "alone", attack_restarts=0, bounds=("lp",), workers=1)
    dask = verify(w, X, y, EPS, tmp_path / "dask", attack_restarts=0, bounds=("lp",), workers=2)
    assert _verdicts(tmp_path / "alone") == _verdicts(tmp_path / "dask")
    assert alone["counts"] == dask["counts"] and dask["workers"] == 2


def test_killed_cli_run_keeps_every_finished_verdict(tmp_path: Path) -> None:
    """SIGKILL a real run (slow attacks) after two verdicts; the file parses and a resume skips them."""
    w, X, y = _data(30)
    w.save(tmp_path / "net.npz", dtype=np.float64)
    np.savez(tmp_path / "in.npz", X=X, y=y)
    out = tmp_path / "out"
    code = "import sys; from certsdp.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["verify", "--weights", str(tmp_path / "net.npz"), "--eps", str(EPS),
            "--inputs", str(tmp_path / "in.npz"), "--out", str(out), "--workers", "0", "--bounds", "lp",
            "--time-limit", "30", "--no-progress", "--attack-steps", "400", "--attack-restarts", "8"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            csv = out / "verdicts.csv"
            if csv.exists() and csv.read_text().count("\n") >= 3:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = _verdicts(out)
    assert 2 <= len(done) < 30
    config = VerifyConfig(eps=EPS, attack_restarts=0, bounds=("lp",), time_limit=30.0)
    verifier = Verifier(w, config, prepare_bounds(w, config.bounds, None))
    rest = Counter()
    store = open_store(w, config, np.arange(30), X, y, out)
    try:
        run_verification(verifier, store, np.arange(30), X, y, solve=rest)
    finally:
        store.close()
    assert sorted(rest.calls) == sorted(set(range(30)) - set(done))
    assert {i: v for i, v in _verdicts(out).items() if i in done} == done


@pytest.fixture()
def cli(monkeypatch):
    """The ``certsdp`` entry point."""
    return importlib.import_module("certsdp.cli.main").main


def test_cli_writes_verdicts_witnesses_and_summary(cli, net_and_inputs, tmp_path: Path, capsys) -> None:
    net, inputs = net_and_inputs
    out = tmp_path / "out"
    rc = cli(["verify", "--weights", str(net), "--eps", "0.3", "--inputs", str(inputs), "--out", str(out),
              "--workers", "0", "--clip", "--attack-steps", "10", "--attack-restarts", "2", "--no-progress",
              "--bounds", "lp,crown"])
    assert rc == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("verify eps=0.3 box=clipped to [0, 1] n=7") and str(out) in line
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["counts"].values()) == 7 == summary["n"]
    assert abs(sum(summary["fractions"].values()) - 1) < 1e-12
    assert summary["box"] == "clipped to [0, 1]" and len(summary["weights_sha256"]) == 64
    assert {"highspy", "numpy", "certsdp"} <= set(summary["versions"])
    witnesses = np.load(out / "witnesses.npz")
    assert witnesses["X"].shape == (summary["counts"]["not_robust"], 6)
    assert cli(["verify", "--weights", str(net), "--eps", "0.3", "--inputs", str(inputs), "--out", str(out),
                "--workers", "0", "--clip", "--no-progress", "--bounds", "lp,crown"]) == 0  # resumed: no work


CASES = ["missing_weights", "neg_eps", "limit0", "bad_inputs", "out_is_file", "scheduler", "indices",
         "indices_and_limit", "time_limit", "bounds", "workers", "outside_clip", "other_eps", "busy"]


@pytest.mark.parametrize("case", CASES)
def test_cli_bad_input_is_one_line_exit_2(case, cli, net_and_inputs, tmp_path: Path, capsys) -> None:
    net, inputs = net_and_inputs
    out = tmp_path / "out"
    base = {"--weights": str(net), "--eps": "0.1", "--inputs": str(inputs), "--out": str(out),
            "--workers": "0", "--attack-restarts": "0"}
    extra: list[str] = []
    if case == "missing_weights":
        base["--weights"] = str(tmp_path / "nope.npz")
    elif case == "neg_eps":
        base["--eps"] = "-1"
    elif case == "limit0":
        extra = ["--limit", "0"]
    elif case == "bad_inputs":
        np.savez(tmp_path / "bad.npz", X=np.zeros((3, 4)), y=np.zeros(3, dtype=int))
        base["--inputs"] = str(tmp_path / "bad.npz")
    elif case == "out_is_file":
        out.write_text("x")
    elif case == "scheduler":
        extra = ["--scheduler", "tcp://127.0.0.1:9"]
    elif case == "indices":
        extra = ["--indices", "5:2"]
    elif case == "indices_and_limit":
        extra = ["--indices", "0:2", "--limit", "2"]
    elif case == "time_limit":
        extra = ["--time-limit", "0"]
    elif case == "bounds":
        extra = ["--bounds", "lp,nope"]
    elif case == "workers":
        base["--workers"] = "-1"
    elif case == "outside_clip":
        np.savez(tmp_path / "big.npz", X=np.full((2, 6), 2.0), y=np.zeros(2, dtype=int))
        base["--inputs"] = str(tmp_path / "big.npz")
        extra = ["--clip"]
    elif case == "other_eps":
        argv = ["verify", *[t for kv in base.items() for t in kv], "--bounds", "lp"]
        assert cli(argv) == 0
        base["--eps"] = "0.2"
    args = ["verify", *[t for kv in base.items() for t in kv], "--bounds", "lp", *extra]
    capsys.readouterr()
    if case == "busy":
        held = RunStore.open(out, {"other": True}, 6)
        try:
            assert cli(args) == 2
        finally:
            held.close()
    else:
        assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("certsdp verify: error:") and "Traceback" not in err


def test_a_resume_in_another_box_is_refused(tmp_path: Path) -> None:
    """The run key holds the box's exact ends: [0, 1] and [0, 1.0000001] are different runs."""
    w, X, y = _data(3)
    out = tmp_path / "out"
    for clip, ok in (((0.0, 1.0), True), ((0.0, 1.0000001), False)):
        config = VerifyConfig(eps=EPS, clip=clip, attack_restarts=0, bounds=("lp",), time_limit=5.0)
        if ok:
            store = open_store(w, config, np.arange(3), X, y, out)
            store.close()
        else:
            with pytest.raises(InputError, match="box"):
                open_store(w, config, np.arange(3), X, y, out)
