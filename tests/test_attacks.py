"""Tests of the l_inf attacks (:mod:`certsdp.attacks`) and the ``certsdp attack`` command."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import certsdp.attacks as A
from certsdp.attacks.box import box_bounds, box_corners64
from certsdp.errors import InputError
from certsdp.network.margins import CrossEntropySoftMarginStep, score_margin, soft_margin
from certsdp.network.torch_model import TwoLayerNet
from certsdp.numerics.box import attack_box

ATTACK_NAMES = ("fgsm", "pgd", "cw")


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """The nets here are tiny: one thread is faster and immune to oversubscribed CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _clusters(n_per_class: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.25, 0.75, size=(k, d))
    y = np.repeat(np.arange(k), n_per_class)
    X = np.clip(means[y] + 0.08 * rng.standard_normal((len(y), d)), 0.0, 1.0)
    return X.astype(np.float32), y.astype(np.int64), means


@pytest.fixture(scope="module")
def trained() -> tuple[TwoLayerNet, np.ndarray, np.ndarray]:
    """A 20-30-3 net trained for 300 Adam steps on Gaussian clusters, and 90 held-out points."""
    torch.manual_seed(0)
    X, y, _ = _clusters(100, 20, 3, seed=1)
    net = TwoLayerNet(20, 30, 3)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.zero_grad(set_to_none=True)
    net.eval()
    rng = np.random.default_rng(2)
    Xte, yte, _ = _clusters(30, 20, 3, seed=1)  # same means (seed 1), fresh noise below
    Xte = np.clip(Xte + 0.05 * rng.standard_normal(Xte.shape), 0.0, 1.0).astype(np.float32)
    return net, Xte, yte


def _run(attack: str, net, X, y, eps, clip=None, seed=0, **kw) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if attack == "fgsm":
        return A.fgsm(net, X, y, eps, clip=clip)
    if attack == "pgd":
        return A.pgd(net, X, y, eps, clip=clip, generator=gen, **kw)
    return A.cw(net, X, y, eps, clip=clip, generator=gen, **kw)


# ---------------------------------------------------------------------------------------------
# the box


@pytest.mark.parametrize("attack", ATTACK_NAMES)
@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
def test_points_stay_in_box(trained, attack, clip):
    net, X, y = trained
    eps = 0.15
    x_adv = _run(attack, net, X, y, eps, clip=clip, steps=20, restarts=2) if attack != "fgsm" else (
        _run(attack, net, X, y, eps, clip=clip))
    assert x_adv.shape == X.shape and x_adv.dtype == torch.float32
    diff = (x_adv.double() - torch.from_numpy(X).double()).abs()
    assert float(diff.max()) <= eps  # exact: the box is rounded inward
    if clip is None:
        # unclipped box: some points leave [0, 1] (the inputs touch 0 and 1)
        assert float(x_adv.min()) < 0.0 or float(x_adv.max()) > 1.0
    else:
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


def test_box_bounds_rounded_inward():
    x = torch.tensor([[0.1, 0.3, 0.7, 1.0]], dtype=torch.float32)
    lo, hi = box_bounds(x, 0.1)
    x64 = x.double()
    assert bool((lo.double() >= x64 - 0.1).all()) and bool((hi.double() <= x64 + 0.1).all())
    assert bool((lo <= x).all()) and bool((x <= hi).all())
    lo, hi = box_bounds(x, 0.1, clip=(0.0, 1.0))
    assert float(lo.min()) >= 0.0 and float(hi.max()) <= 1.0
    lo, hi = box_bounds(x, 0.0)
    assert torch.equal(lo, x) and torch.equal(hi, x)


@pytest.mark.parametrize("clip", [None, (0.0, 1.0), (0.0, math.inf), (-math.inf, 0.5), (-1.0, -0.0),
                                  (0.2, 0.2)])
def test_torch_box_is_the_numpy_box(clip):
    """One box: the torch corners are bitwise those of numerics.box.attack_box (signed zeros and inputs
    outside the clip range included), and rounding inward keeps them inside it."""
    rng = np.random.default_rng(3)
    x64 = np.concatenate([rng.uniform(-0.5, 1.5, (20, 7)), [[0.0, -0.0, 1.0, 0.1, 0.3, 1e-30, -2.0]]])
    for dtype in (torch.float32, torch.float64):
        x = torch.from_numpy(x64).to(dtype)
        for eps in (0.0, 0.1, 0.3):
            ref = attack_box(x.double().numpy(), eps, clip)
            for got, want in zip(box_corners64(x, eps, clip), ref, strict=True):
                assert np.array_equal(got.numpy().view(np.int64), want.view(np.int64)), (dtype, eps)
            lo, hi = box_bounds(x, eps, clip)
            lo64, hi64 = torch.from_numpy(ref[0]), torch.from_numpy(ref[1])
            assert lo.dtype == hi.dtype == dtype and bool((lo <= hi).all())
            if dtype == torch.float64:
                assert torch.equal(lo, lo64) and torch.equal(hi, hi64)
            inward = (lo.double() >= lo64) & (hi.double() <= hi64)
            collapsed = (lo == hi) & (lo == lo64.to(dtype))  # an empty rounded box: the nearest point
            assert bool((inward | collapsed).all())
            if clip is None or clip == (0.0, 1.0):  # x inside the clip range: the box contains x
                inside_clip = (x >= (clip or (-math.inf,))[0]) & (x <= (clip or (0, math.inf))[1])
                assert bool(((lo <= x) & (x <= hi))[inside_clip].all())
    if clip == (0.2, 0.2):  # 0.2 is no float32: the inward corners cross, both become float32(0.2)
        lo, hi = box_bounds(torch.zeros(1, 3), 0.5, clip)
        assert torch.equal(lo, hi) and float(lo[0, 0]) == float(np.float32(0.2))


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_inputs_outside_clip_range(trained, attack):
    """The clipped box of an input outside the clip range does not contain it: refused, not projected.

    (Projecting made FGSM report points 1.0 away from x at eps = 0.1 as adversarial, and dropped clean
    mistakes of 0-255 pixel inputs.)"""
    net, X, y = trained
    X2 = X.copy()
    X2[:, 0] = 1.5
    for eps in (0.0, 0.1):
        with pytest.raises(InputError, match="outside the clip range"):
            _run(attack, net, X2, y, eps, clip=(0.0, 1.0))
        with pytest.raises(InputError, match="outside the clip range"):
            A.attack_report(net, X2, y, eps, attack, clip=(0.0, 1.0), progress=False)
        assert len(A.attack_report(net, X2, y, eps, attack, progress=False)["fooled"]) == len(y)


# ---------------------------------------------------------------------------------------------
# errors of the attacks on a trained net


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_eps_zero_gives_clean_error(trained, attack):
    net, X, y = trained
    clean = A.misclassified(net, X, y)
    with torch.no_grad():
        argmax_wrong = net(torch.from_numpy(X)).argmax(1).numpy() != y
    np.testing.assert_array_equal(clean, argmax_wrong)  # no ties on a trained net
    report = A.attack_report(net, X, y, 0.0, attack, progress=False)
    assert report["error"] == pytest.approx(clean.mean())
    assert report["fooled"] == [bool(v) for v in clean]
    x_adv = _run(attack, net, X, y, 0.0)
    assert torch.equal(x_adv, torch.from_numpy(X))


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_clean_mistakes_count_as_fooled(trained, attack):
    net, X, y = trained
    y_bad = y.copy()
    y_bad[::4] = (y_bad[::4] + 1) % 3  # every 4th label wrong: misclassified at x
    clean = A.misclassified(net, X, y_bad)
    assert clean.sum() >= len(y) // 4 - 2
    fooled = np.array(A.attack_report(net, X, y_bad, 0.05, attack, progress=False)["fooled"])
    assert np.all(fooled[clean])


def test_pgd_at_least_fgsm(trained):
    net, X, y = trained
    for eps in (0.05, 0.1, 0.15):
        e_fgsm = A.attack_report(net, X, y, eps, "fgsm", progress=False)["error"]
        e_pgd = A.attack_report(net, X, y, eps, "pgd", progress=False)["error"]
        e_cw = A.attack_report(net, X, y, eps, "cw", restarts=2, progress=False)["error"]
        assert e_pgd >= e_fgsm, (eps, e_pgd, e_fgsm)
        assert e_cw >= e_fgsm, (eps, e_cw, e_fgsm)


def test_pgd_error_monotone_in_eps(trained):
    net, X, y = trained
    errors = [A.attack_report(net, X, y, eps, "pgd", steps=50, progress=False)["error"]
              for eps in (0.0, 0.04, 0.08, 0.12, 0.16, 0.24, 0.4)]
    assert errors == sorted(errors), errors
    assert errors[0] < 0.2 and errors[-1] > errors[0] and errors[-1] >= 0.9, errors


def test_determinism_and_batch_size_independence(trained):
    net, X, y = trained
    a = _run("pgd", net, X, y, 0.1, seed=3, steps=20, restarts=2)
    b = _run("pgd", net, X, y, 0.1, seed=3, steps=20, restarts=2)
    assert torch.equal(a, b)
    kw = {"steps": 20, "restarts": 3, "progress": False, "seed": 7}
    r1 = A.attack_report(net, X, y, 0.12, "pgd", batch_size=1000, **kw)
    r2 = A.attack_report(net, X, y, 0.12, "pgd", batch_size=7, **kw)
    assert r1["fooled"] == r2["fooled"]
    assert set(r1) == {"attack", "eps", "n", "error", "seconds", "fooled", "clip"}
    assert r1["n"] == len(y) and r1["attack"] == "pgd" and r1["clip"] is None
    assert r1["error"] == pytest.approx(np.mean(r1["fooled"]))
    r3 = A.attack_report(net, X, y, 0.12, "pgd", clip=(0.0, 1.0), **kw)
    assert r3["clip"] == [0.0, 1.0]
    json.dumps(r1)


def test_net_left_untouched(trained):
    net, X, y = trained
    seen = []

    class Spy(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            seen.append(self.training)
            return self.inner(x)

    spy = Spy(net)
    spy.train()
    net.out.bias.requires_grad_(False)
    before = [p.detach().clone() for p in spy.parameters()]
    try:
        for attack in ATTACK_NAMES:
            A.attack_report(spy, X, y, 0.1, attack, steps=3, progress=False) if attack != "fgsm" else (
                A.attack_report(spy, X, y, 0.1, attack, progress=False))
        assert seen and not any(seen)  # every forward pass in eval mode
        assert spy.training and net.training  # mode restored
        assert [p.requires_grad for p in net.parameters()] == [True, True, True, False]
        assert all(p.grad is None for p in net.parameters())
        assert all(torch.equal(p, q) for p, q in zip(spy.parameters(), before, strict=True))
    finally:
        net.out.bias.requires_grad_(True)
        net.eval()
    A.fgsm(net, X, y, 0.1)
    assert not net.training


def test_attack_classes_are_the_functions(trained):
    """An attack object holds validated settings and is called on a batch; the functions wrap it."""
    net, X, y = trained

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(1)

    assert torch.equal(A.FGSM(0.1)(net, X, y), A.fgsm(net, X, y, 0.1))
    assert torch.equal(A.PGD(0.1, (0.0, 1.0), steps=5, restarts=2, loss="margin")(net, X, y, generator=gen()),
                       A.pgd(net, X, y, 0.1, 5, restarts=2, clip=(0.0, 1.0), loss="margin", generator=gen()))
    assert torch.equal(A.CW(0.1, steps=5, restarts=2, kappa=1.0)(net, X, y, generator=gen()),
                       A.cw(net, X, y, 0.1, 5, restarts=2, kappa=1.0, generator=gen()))
    attack = A.PGD(0.1, steps=7)
    assert attack.settings == A.attack_settings("pgd", 0.1, steps=7) and attack.n_random == 5
    assert (A.FGSM(0.2).settings, A.FGSM(0.2).n_random, A.CW(0.2, restarts=3).n_random) == (
        {"steps": 1, "restarts": 1, "step_size": 0.2}, 0, 2)
    assert "PGD(eps=0.1" in repr(attack)
    for bad in (lambda: A.PGD(0.1, steps=True), lambda: A.PGD(0.1, restarts=2.0),
                lambda: A.FGSM(0.1, steps=3), lambda: A.CW(0.1, kappa=float("nan")), lambda: A.PGD(-1.0),
                lambda: A.CW(0.1, clip=(1, 0)), lambda: A.attack_class("deepfool")):
        with pytest.raises(InputError):
            bad()


def test_numpy_and_torch_inputs_agree(trained):
    net, X, y = trained
    a = A.fgsm(net, X, y, 0.1)
    b = A.fgsm(net, torch.from_numpy(X), torch.from_numpy(y), 0.1)
    c = A.fgsm(net, X.astype(np.float64), y.astype(np.int32), 0.1)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_input_errors(trained):
    net, X, y = trained
    for eps in (-0.1, float("nan"), float("inf")):
        with pytest.raises(InputError):
            A.fgsm(net, X, y, eps)
        with pytest.raises(InputError):
            A.attack_report(net, X, y, eps, "pgd", progress=False)
    with pytest.raises(InputError):
        A.pgd(net, X, y, 0.1, loss="hinge")
    with pytest.raises(InputError):
        A.pgd(net, X, y, 0.1, steps=0)
    with pytest.raises(InputError):
        A.pgd(net, X, y, 0.1, restarts=0)
    with pytest.raises(InputError):
        A.cw(net, X, y, 0.1, step_size=-1.0)
    with pytest.raises(InputError):
        A.pgd(net, X, y, 0.1, clip=(1.0, 0.0))
    with pytest.raises(InputError):
        A.attack_report(net, X, y, 0.1, "deepfool", progress=False)
    with pytest.raises(InputError):
        A.attack_report(net, X, y, 0.1, "fgsm", steps=10, progress=False)
    with pytest.raises(InputError):
        A.attack_report(net, X, y, 0.1, "pgd", batch_size=0, progress=False)
    with pytest.raises(InputError):
        A.fgsm(net, X, y + 3, 0.1)  # labels out of range
    with pytest.raises(InputError):
        A.fgsm(net, X, y[:-1], 0.1)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError):
        A.fgsm(net, bad, y, 0.1)
    with pytest.raises(InputError, match="does not accept inputs of shape"):
        A.pgd(net, X[:, :-1], y, 0.1)
    nan_net = copy.deepcopy(net)
    with torch.no_grad():
        nan_net.out.bias[0] = float("nan")
    for attack in ("fgsm", "pgd", "cw"):  # NaN scores would count no example as fooled: 0% error
        with pytest.raises(InputError, match="NaN or infinite"):
            A.attack_report(nan_net, X, y, 0.1, attack, progress=False)
    with pytest.raises(InputError, match="NaN or infinite"):
        A.misclassified(nan_net, X, y)


# ---------------------------------------------------------------------------------------------
# exactness on a net that is linear over the box


def _linear_binary_net(dtype: torch.dtype, d: int = 10, m: int = 15, seed: int = 0):
    """A d-m-2 net whose hidden units are all active on [-1, 2]^d, so f_1 - f_0 = g.x + h exactly."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, d)) / np.sqrt(d)
    b = np.abs(W).sum(1) * 2.0 + 1.0  # W x + b >= 1 for x in [-1, 2]^d
    V = rng.standard_normal((2, m))
    # put the decision boundary f_1 = f_0 through the centre of [0, 1]^d
    dv = V[1] - V[0]
    c = np.array([0.0, -dv @ (W @ np.full(d, 0.5) + b)])
    from certsdp.network.weights import Weights

    net = TwoLayerNet.from_weights(Weights(W=W, b=b, V=V, c=c), dtype=dtype)
    w32 = net.to_weights()  # the weights as actually held (rounded for float32)
    g = w32.W.T @ (w32.V[1] - w32.V[0])
    h = (w32.V[1] - w32.V[0]) @ w32.b + w32.c[1] - w32.c[0]
    return net, g, h


def _exact_worst(X64, y, g, h, eps, clip):
    """max over the box of f_other - f_y = s (g.x + h), s = +1 for y = 0 and -1 for y = 1."""
    s = np.where(y == 0, 1.0, -1.0)[:, None]
    lo, hi = X64 - eps, X64 + eps
    if clip is not None:
        lo, hi = np.clip(lo, *clip), np.clip(hi, *clip)
    sg = s * g[None, :]
    return np.maximum(sg * lo, sg * hi).sum(1) + s[:, 0] * h


def _margins(net, x_adv, y):
    """Exact (float64) f_other - f_y at the returned points."""
    w = net.to_weights()
    sc = w.scores(x_adv.detach().double().numpy())
    return sc[np.arange(len(y)), 1 - y] - sc[np.arange(len(y)), y]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
def test_attacks_reach_exact_worst_case_on_linear_net(dtype, tol, clip):
    net, g, h = _linear_binary_net(dtype)
    rng = np.random.default_rng(5)
    X = rng.uniform(0.0, 1.0, size=(60, 10))
    X = torch.from_numpy(X).to(dtype)
    X64 = X.double().numpy()
    clean = X64 @ g + h
    y = np.where(clean > 0, 1, 0)  # labels = clean predictions: all correct
    eps = float(np.median(np.abs(clean) / np.abs(g).sum()))  # about half the examples can be flipped
    worst = _exact_worst(X64, y, g, h, eps, clip)
    assert np.min(np.abs(worst)) > 1e-3  # no example on the threshold
    can_flip = worst >= 0
    assert 5 < can_flip.sum() < len(y) - 5
    runs = {
        "fgsm": A.fgsm(net, X, y, eps, clip=clip),
        "pgd-ce": _run("pgd", net, X, y, eps, clip=clip, restarts=2),
        "pgd-margin": _run("pgd", net, X, y, eps, clip=clip, restarts=2, loss="margin"),
        "cw-inf": _run("cw", net, X, y, eps, clip=clip, kappa=float("inf")),
        "cw": _run("cw", net, X, y, eps, clip=clip),
    }
    for name, x_adv in runs.items():
        margin = _margins(net, x_adv, y)
        assert np.all(margin <= worst + tol), name  # nobody beats the exact maximum
        if name == "cw":  # kappa = 0 stops pushing once fooled: exact only where it cannot fool
            np.testing.assert_allclose(margin[~can_flip], worst[~can_flip], atol=tol, err_msg=name)
            assert np.all(margin[can_flip] >= 0), name
        else:
            np.testing.assert_allclose(margin, worst, atol=tol, err_msg=name)
    for attack in ATTACK_NAMES:
        fooled = np.array(A.attack_report(net, X, y, eps, attack, clip=clip, progress=False)["fooled"])
        np.testing.assert_array_equal(fooled, can_flip, err_msg=attack)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    net, g, h = _linear_binary_net(torch.float64)
    X = torch.from_numpy(np.random.default_rng(5).uniform(0.0, 1.0, size=(60, 10)))
    y = np.where(X.numpy() @ g + h > 0, 1, 0)
    for attack in ATTACK_NAMES:
        cpu = A.attack_report(net, X, y, 0.05, attack, progress=False)
        gpu = A.attack_report(net.to("cuda"), X, y, 0.05, attack, progress=False)
        net.to("cpu")
        assert cpu["fooled"] == gpu["fooled"], attack
    x_adv = A.pgd(net.to("cuda"), X, y, 0.05, generator=torch.Generator().manual_seed(0))
    assert x_adv.device.type == "cuda"


# ---------------------------------------------------------------------------------------------
# the command line


@pytest.fixture()
def net_files(tmp_path, trained):
    net, X, y = trained
    weights = tmp_path / "net.npz"
    net.to_weights().save(weights)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, X=X[:30], y=y[:30])
    return weights, inputs


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_cli_writes_report(tmp_path, net_files, attack, capsys):
    if importlib.util.find_spec("certsdp.data.mnist") is None:
        pytest.skip("certsdp.data.mnist not available")
    from certsdp.cli import main

    weights, inputs = net_files
    out = tmp_path / "sub" / "report.json"
    argv = ["attack", "--weights", str(weights), "--eps", "0.1", "--attack", attack,
            "--inputs", str(inputs), "--out", str(out), "--no-progress", "--limit", "25"]
    if attack != "fgsm":
        argv += ["--steps", "10", "--restarts", "2"]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"attack", "eps", "n", "error", "seconds", "fooled", "clip", "weights",
                           "steps", "restarts", "step_size"}
    assert report["attack"] == attack and report["eps"] == 0.1 and report["n"] == 25
    assert len(report["fooled"]) == 25 and report["error"] == pytest.approx(np.mean(report["fooled"]))
    assert report["clip"] is None and report["weights"] == str(weights)
    if attack == "fgsm":
        assert (report["steps"], report["restarts"], report["step_size"]) == (1, 1, 0.1)
    else:
        assert (report["steps"], report["restarts"]) == (10, 2)
        assert report["step_size"] == pytest.approx(0.025)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and attack in lines[0]


def test_cli_without_out_prints_the_summary_and_writes_nothing(tmp_path, net_files, capsys):
    """--out is optional, as for certify (it was required)."""
    from certsdp.cli import main

    weights, inputs = net_files
    before = sorted(tmp_path.rglob("*"))
    argv = ["attack", "--weights", str(weights), "--eps", "0.1", "--attack", "fgsm", "--inputs", str(inputs),
            "--no-progress"]
    assert main(argv) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith("fgsm eps=0.1 n=30 error=") and "->" not in line
    assert sorted(tmp_path.rglob("*")) == before


def test_cli_attack_choices_are_the_registry():
    from certsdp.cli import build_parser

    assert list(A.ATTACKS) == list(A.SPECS) == list(ATTACK_NAMES)
    for name, cls in A.ATTACKS.items():
        assert issubclass(cls, A.Attack) and cls.spec is A.SPECS[name] and cls.spec.name == name
    parser = build_parser()
    assert parser.parse_args(["attack", "--weights", "w.npz", "--eps", "0.1"]).attack == "pgd"
    with pytest.raises(SystemExit):
        parser.parse_args(["attack", "--weights", "w.npz", "--eps", "0.1", "--attack", "deepfool"])
    (sub,) = [a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction)]
    help_text = " ".join(sub.choices["attack"].format_help().split())
    for spec in A.SPECS.values():
        assert " ".join(spec.summary.split()) in help_text
    assert "(default: pgd)" in help_text


def test_the_attack_settings_import_no_torch():
    """The command line builds the --attack choices for every subcommand, certify's included, from
    the torch-free settings (the attacks themselves import torch when they run)."""
    code = """
import sys
from certsdp.attacks import SPECS, attack_settings
from certsdp.attacks.settings import check_attack
assert list(SPECS) == ["fgsm", "pgd", "cw"] and check_attack("cw").default_restarts == 1
assert attack_settings("pgd", 0.1, steps=10) == {"steps": 10, "restarts": 5, "step_size": 0.025}
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("certsdp"))
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def _cli_error(argv, capsys) -> str:
    from certsdp.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err
    return err


def test_cli_input_errors(tmp_path, net_files, capsys):
    weights, inputs = net_files
    out = str(tmp_path / "r.json")
    base = ["attack", "--inputs", str(inputs), "--out", out, "--no-progress"]
    assert "eps" in _cli_error(base + ["--weights", str(weights), "--eps", "-0.1"], capsys)
    assert "eps" in _cli_error(base + ["--weights", str(weights), "--eps", "nan"], capsys)
    assert "not found" in _cli_error(base + ["--weights", str(tmp_path / "none.npz"), "--eps", "0.1"],
                                     capsys)
    assert "--steps" in _cli_error(base + ["--weights", str(weights), "--eps", "0.1", "--attack", "fgsm",
                                           "--steps", "5"], capsys)
    _cli_error(base + ["--weights", str(weights), "--eps", "0.1", "--restarts", "0"], capsys)
    if not torch.cuda.is_available():
        assert "CUDA" in _cli_error(base + ["--weights", str(weights), "--eps", "0.1", "--device", "cuda"],
                                    capsys)
    if importlib.util.find_spec("certsdp.data.mnist") is not None:
        _cli_error(base[:2] + [str(tmp_path / "missing.npz")] + base[3:]
                   + ["--weights", str(weights), "--eps", "0.1"], capsys)


def test_ce_steps_keep_their_direction_when_the_softmax_saturates():
    """The CE ascent direction comes from soft_margin, whose gradient has the sign of the CE gradient
    (CE = log(1 + exp(soft_margin))) without losing the true class once p_y rounds to 1 in float32."""
    torch.manual_seed(0)
    d, k = 30, 4
    net = torch.nn.Sequential(torch.nn.Linear(d, k))
    with torch.no_grad():
        net[0].weight.mul_(40.0)  # confident: logit gaps up to ~30
    x = torch.rand(64, d)
    y = net(x).argmax(dim=1)
    p_true = torch.softmax(net.double()(x.double()), dim=1).gather(1, y[:, None])
    assert bool((p_true < 1).all()) and bool((p_true.float() == 1).any())  # saturated in float32 only

    def input_grad(f, net_, x_):
        z = x_.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(net_(z), y).sum(), z)
        return g

    exact = input_grad(lambda s, t: torch.nn.functional.cross_entropy(s, t, reduction="none"),
                       net.double(), x.double())
    net.float()
    ce32 = input_grad(lambda s, t: torch.nn.functional.cross_entropy(s, t, reduction="none"), net, x)
    soft32 = input_grad(soft_margin, net, x)
    good = exact.abs() > 1e-300
    assert (ce32.sign() != exact.sign())[good].any()  # the plain float32 CE gradient is wrong here
    assert torch.equal(soft32.sign()[good], exact.sign()[good])
    # so FGSM on the float32 network fools exactly the examples that the exact step fools
    eps = 0.2
    lo, hi = box_bounds(x, eps)
    x_step = torch.clamp((x.double() + eps * exact.sign()).float(), lo, hi)
    fooled = score_margin(net(A.fgsm(net, x, y, eps)), y) >= 0
    assert torch.equal(fooled, score_margin(net(x_step), y) >= 0) and bool(fooled.any())
    logits = torch.randn(5, 3, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 1, 0])
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(torch.log1p(soft_margin(logits, labels).exp()), ce)
    # the attacks' objective: the cross-entropy forward, the soft margin's gradient backward
    z = logits.clone().requires_grad_(True)
    value = CrossEntropySoftMarginStep.apply(z, labels)
    assert torch.equal(value.detach(), ce)
    weights = torch.rand(5, dtype=torch.float64)
    (g_step,) = torch.autograd.grad((weights * value).sum(), z)
    (g_soft,) = torch.autograd.grad((weights * soft_margin(z, labels)).sum(), z)
    torch.testing.assert_close(g_step, g_soft)
