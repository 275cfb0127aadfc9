"""The on-disk attack cache: same answer, no recomputation, and a fresh run whenever anything changes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import certsdp.attacks.cache as ac
from certsdp.attacks.cache import cached_attack_report
from certsdp.attacks.report import attack_report
from certsdp.errors import InputError
from certsdp.network.torch_model import TwoLayerNet


@pytest.fixture
def setup():
    torch.manual_seed(0)
    net = TwoLayerNet(6, 8, 3)
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (40, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    return net, X, y


@pytest.fixture
def counted(monkeypatch):
    calls = []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return attack_report(*args, **kwargs)

    monkeypatch.setattr(ac, "attack_report", fake)
    return calls


def test_second_call_reads_the_stored_report(setup, counted, tmp_path) -> None:
    net, X, y = setup
    lines: list[str] = []
    opts = dict(cache_dir=tmp_path, steps=5, restarts=2, log=lines.append)
    first = cached_attack_report(net, X, y, 0.3, "pgd", **opts)
    second = cached_attack_report(net, X, y, 0.3, "pgd", **opts)
    assert len(counted) == 1
    assert not first["cached"] and second["cached"]
    assert second["fooled"] == first["fooled"] and second["error"] == first["error"]
    direct = attack_report(net, X, y, 0.3, "pgd", steps=5, restarts=2, progress=False)
    assert direct["fooled"] == first["fooled"]
    assert "cached" in lines[1] and "cached" not in lines[0]
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("change", ["eps", "clip", "seed", "options", "attack", "inputs", "labels", "weights",
                                    "code"])
def test_any_change_runs_the_attack_again(setup, counted, tmp_path, monkeypatch, change) -> None:
    net, X, y = setup
    base = dict(eps=0.3, attack="pgd", clip=None, seed=0, steps=5)
    cached_attack_report(net, X, y, base["eps"], base["attack"], cache_dir=tmp_path, clip=None, seed=0,
                         steps=5, log=None)
    args = dict(base)
    if change == "eps":
        args["eps"] = 0.2
    elif change == "clip":
        args["clip"] = (0.0, 1.0)
    elif change == "seed":
        args["seed"] = 1
    elif change == "options":
        args["steps"] = 6
    elif change == "attack":
        args["attack"] = "cw"
    elif change == "inputs":
        X = X.copy()
        X[0, 0] += 1e-3
    elif change == "labels":
        y = y.copy()
        y[0] = (y[0] + 1) % 3
    elif change == "weights":
        with torch.no_grad():
            net.out.bias[0] += 1e-6
    elif change == "code":
        monkeypatch.setattr(ac, "code_version", lambda: "another version")
    report = cached_attack_report(net, X, y, args["eps"], args["attack"], cache_dir=tmp_path,
                                  clip=args["clip"], seed=args["seed"], steps=args["steps"], log=None)
    assert len(counted) == 2 and not report["cached"]


def test_a_corrupt_or_foreign_file_is_ignored_and_overwritten(setup, counted, tmp_path) -> None:
    net, X, y = setup
    first = cached_attack_report(net, X, y, 0.2, "fgsm", cache_dir=tmp_path, log=None)
    (path,) = tmp_path.iterdir()
    path.write_text("{not json")
    again = cached_attack_report(net, X, y, 0.2, "fgsm", cache_dir=tmp_path, log=None)
    assert len(counted) == 2 and again["fooled"] == first["fooled"]
    stored = json.loads(path.read_text())
    stored["report"]["fooled"] = stored["report"]["fooled"][:-1]  # wrong length: not trusted
    path.write_text(json.dumps(stored))
    cached_attack_report(net, X, y, 0.2, "fgsm", cache_dir=tmp_path, log=None)
    assert len(counted) == 3
    assert json.loads(path.read_text())["report"]["fooled"] == first["fooled"]


def test_no_cache_dir_writes_nothing_and_bad_seed_is_refused(setup, counted, tmp_path) -> None:
    net, X, y = setup
    report = cached_attack_report(net, X, y, 0.2, "fgsm", cache_dir=None, log=None)
    assert not report["cached"] and len(counted) == 1 and not list(tmp_path.iterdir())
    with pytest.raises(InputError, match="seed"):
        cached_attack_report(net, X, y, 0.2, "fgsm", cache_dir=tmp_path, seed=-1, log=None)
    with pytest.raises(InputError, match="eps"):
        cached_attack_report(net, X, y, -0.1, "fgsm", cache_dir=tmp_path, log=None)
    with pytest.raises(InputError, match="unknown attack"):
        cached_attack_report(net, X, y, 0.1, "deepfool", cache_dir=tmp_path, log=None)
    with pytest.raises(InputError, match="steps"):
        cached_attack_report(net, X, y, 0.1, "pgd", cache_dir=tmp_path, steps=0, log=None)
    with pytest.raises(InputError, match="no option"):
        cached_attack_report(net, X, y, 0.1, "fgsm", cache_dir=tmp_path, kappa=1.0, log=None)
    assert len(counted) == 1 and not list(tmp_path.iterdir())


def test_the_code_version_covers_the_attack_code_and_nothing_else() -> None:
    """The key hashes the attacks, the margins they step by and the box rule (after the split into
    subpackages it hashed certsdp/attacks alone, so a change of the margins kept serving old reports)."""
    files = {path.relative_to(ac.PACKAGE_DIR).as_posix() for path in ac.code_files()}
    assert {"attacks/base.py", "attacks/box.py", "attacks/report.py", "attacks/cache.py",
            "network/margins.py", "numerics/box.py"} <= files
    assert all(f.startswith("attacks/") for f in files - {"network/margins.py", "numerics/box.py"}), files
    assert len(ac.code_version()) == 64


def test_progress_is_passed_to_the_attack(setup, counted, tmp_path) -> None:
    net, X, y = setup
    cached_attack_report(net, X, y, 0.2, "fgsm", cache_dir=None, log=None, progress=True)
    cached_attack_report(net, X, y, 0.2, "fgsm", cache_dir=None, log=None)
    assert [kwargs["progress"] for _, kwargs in counted] == [True, False]
