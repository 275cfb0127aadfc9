"""Training (:mod:`certsdp.training.loop`), its regularizers, losses (:mod:`certsdp.training.losses`),
resume state, configs and ``certsdp train``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_weights

from certsdp import cli
from certsdp.bounds.lp import lp_upper_bounds
from certsdp.errors import InputError, TrainingDiverged
from certsdp.network.checkpoint import load_checkpoint, read_checkpoint, seal
from certsdp.network.torch_model import TwoLayerNet
from certsdp.network.weights import Weights
from certsdp.training import FORK_POINT_NAME, TrainingData, train
from certsdp.training.config import CONFIGS, REGULARIZERS, get_config
from certsdp.training.losses import (
    at_loss,
    cross_entropy,
    frobenius_reg,
    multiclass_hinge,
    spectral_reg,
    wong_kolter_bounds,
    wong_kolter_robust_loss,
)
from certsdp.training.regularizers import (
    GRAPH_REGS,
    NoRegularizer,
    StepContext,
    make_regularizer,
    pair_weights_from_bounds,
    regularizer_class,
)
from certsdp.training.regularizers import REGULARIZERS as REGULARIZER_CLASSES

PAPER = ("NT-NN", "Fro-NN", "Spe-NN", "AT-NN", "SDP-NN", "SDP-NN-unweighted", "LP-NN")
TINY = ("tiny-NT", "tiny-SDP", "tiny-SDP-unweighted", "tiny-AT", "tiny-LP", "tiny-Fro", "tiny-Spe")


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(name: str, out: Path, mnist_dir: Path, **kw) -> tuple[Path, list[float]]:
    losses: list[float] = []
    overrides = kw.pop("overrides", {})
    ckpt = train(get_config(name, **overrides), out, data_dir=mnist_dir, progress=False,
                 step_callback=lambda epoch, step, loss: losses.append(loss), **kw)
    return ckpt, losses


# ---------------------------------------------------------------------------------------------
# configurations


def test_registry_and_schedule() -> None:
    assert set(PAPER + TINY) <= set(CONFIGS)
    for name in PAPER:
        cfg = CONFIGS[name]
        assert (cfg.lr, cfg.lr_decay, cfg.lr_step_epochs, cfg.epochs, cfg.hidden) == (1e-3, 0.1, 30, 90, 500)
        assert cfg.lr_at(0) == 1e-3 and cfg.lr_at(29) == 1e-3
        assert cfg.lr_at(30) == pytest.approx(1e-4) and cfg.lr_at(89) == pytest.approx(1e-5)
    fro = CONFIGS["Fro-NN"]
    assert (fro.reg, fro.reg_lambda, fro.objective) == ("fro", 0.08, "hinge")
    assert (CONFIGS["Spe-NN"].reg, CONFIGS["Spe-NN"].reg_lambda) == ("spectral", 0.09)
    assert CONFIGS["SDP-NN"].sdp_weighted and not CONFIGS["SDP-NN-unweighted"].sdp_weighted
    assert CONFIGS["tiny-SDP"].sdp_weighted and not CONFIGS["tiny-SDP-unweighted"].sdp_weighted
    assert (dataclasses.replace(CONFIGS["tiny-SDP-unweighted"], name="tiny-SDP", sdp_weighted=True)
            == CONFIGS["tiny-SDP"])  # the two differ in the pair weights only
    assert CONFIGS["SDP-NN"].reg_lambda == 0.05
    # eq. 15 sums the data loss over the examples; the other networks average it
    sdp_names = ("SDP-NN", "SDP-NN-unweighted", "tiny-SDP", "tiny-SDP-unweighted")
    for name in CONFIGS:
        assert CONFIGS[name].loss_reduction == ("sum" if name in sdp_names else "mean"), name
    at = CONFIGS["AT-NN"]
    assert (at.at_eps, at.at_step, at.at_steps, at.at_weight) == (0.3, 0.1, 40, 0.5)
    assert CONFIGS["LP-NN"].lp_eps == 0.1
    for name in TINY:
        cfg = CONFIGS[name]
        assert (cfg.hidden, cfg.train_limit, cfg.epochs, cfg.batch_size) == (20, 512, 2, 64)


def test_get_config_errors() -> None:
    with pytest.raises(InputError, match="NT-NN"):
        get_config("no-such-net")
    with pytest.raises(InputError, match="unknown config field"):
        get_config("NT-NN", epochz=3)
    with pytest.raises(InputError, match="epochs"):
        get_config("NT-NN", epochs=0)
    with pytest.raises(InputError, match="reg_lambda"):
        get_config("AT-NN", reg_lambda=0.1)
    with pytest.raises(InputError, match="loss_reduction must be one of"):
        get_config("NT-NN", loss_reduction="median")
    with pytest.raises(InputError, match="loss_reduction='sum' is not supported"):
        get_config("LP-NN", loss_reduction="sum")
    with pytest.raises(InputError, match="sdp_iters"):
        get_config("SDP-NN", sdp_iters=0)
    assert get_config("NT-NN", epochs=3).epochs == 3


# ---------------------------------------------------------------------------------------------
# objectives


def test_hinge_and_frobenius_values() -> None:
    logits = torch.tensor([[2.0, 0.5, 1.5], [0.0, 3.0, -1.0]])
    y = torch.tensor([0, 2])
    # row 0: max(0, 1 + 1.5 - 2) = 0.5; row 1: max(0, 1 + 3 - (-1)) = 5
    assert float(multiclass_hinge(logits, y)) == pytest.approx(2.75)
    assert float(multiclass_hinge(logits, y, reduction="sum")) == pytest.approx(5.5)
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert float(cross_entropy(logits, y, reduction="sum")) == pytest.approx(float(ce.sum()))
    assert float(cross_entropy(logits, y)) == pytest.approx(float(ce.mean()))
    torch.manual_seed(0)
    net = TwoLayerNet(5, 4, 3)
    V = net.out.weight.detach()
    expected = float(torch.linalg.matrix_norm(net.hidden.weight.detach()) +
                     0.5 * ((V[1] - V[0]).norm() + (V[1] - V[2]).norm()))
    assert float(frobenius_reg(net, 1).detach()) == pytest.approx(expected, rel=1e-6)


def test_spectral_reg_power_iteration() -> None:
    torch.manual_seed(0)
    net = TwoLayerNet(30, 12, 4).double()
    state: dict = {}
    for _ in range(100):
        value = spectral_reg(net, 0, state).detach()
    V = net.out.weight.detach()
    pair = float(torch.stack([(V[0] - V[j]).norm() for j in (1, 2, 3)]).mean())
    sigma = float(torch.linalg.matrix_norm(net.hidden.weight.detach(), ord=2))
    assert float(value) - pair == pytest.approx(sigma, rel=1e-8)
    net.zero_grad()
    spectral_reg(net, 0, state).backward()
    U, _, Vh = torch.linalg.svd(net.hidden.weight.detach())
    top = torch.outer(U[:, 0], Vh[0])
    assert torch.allclose(net.hidden.weight.grad.abs(), top.abs(), atol=1e-6)


@pytest.mark.parametrize("eps", [0.0, 0.02, 0.1, 0.5])
def test_wong_kolter_matches_lp_bound(eps: float) -> None:
    weights = random_weights(3, 12, 16, 5, scale=0.5)
    rng = np.random.default_rng(4)
    X = rng.uniform(0, 1, size=(25, 12))
    y = rng.integers(0, 5, size=25)
    expected = lp_upper_bounds(weights, X, y, eps)
    net = TwoLayerNet.from_weights(weights, torch.float64)
    got = wong_kolter_bounds(net, torch.from_numpy(X), torch.from_numpy(y), eps).detach().numpy()
    wrong = np.arange(5)[None, :] != y[:, None]
    np.testing.assert_allclose(got[wrong], expected[wrong], rtol=0, atol=1e-5)
    assert np.all(got[~wrong] == 0.0)
    loss = wong_kolter_robust_loss(net, torch.from_numpy(X), torch.from_numpy(y), eps)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_pair_weights_from_bounds() -> None:
    k = 4
    bounds = np.full((k, k), 1.0)
    np.fill_diagonal(bounds, np.nan)
    bounds[2, 0] = bounds[0, 2] = 100.0  # pair {0, 2} decides every example of class 0 (and of 2)
    scores = np.zeros((6, k))
    y = np.array([0, 0, 0, 2, 1, 1])
    scores[4, 3] = scores[5, 3] = 5.0  # examples of class 1: class 3 wins on its score
    w = pair_weights_from_bounds(scores, y, bounds, eps=0.1)
    off = ~np.eye(k, dtype=bool)
    assert w[off].mean() == pytest.approx(1.0)
    assert np.allclose(w, w.T) and np.all(np.diag(w) == 0)
    assert w[0, 2] == pytest.approx(2 * w[1, 3]) and w[0, 1] == 0 and w[2, 3] == 0


# ---------------------------------------------------------------------------------------------
# training


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs))


@pytest.mark.parametrize("name", ["tiny-NT", "tiny-Fro", "tiny-Spe", "tiny-AT", "tiny-LP"])
def test_tiny_config_trains(name: str, tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / name
    ckpt, losses = _run(name, out, mnist_dir)
    assert len(losses) == 16 and all(np.isfinite(losses))
    assert _mean(losses[-3:]) < _mean(losses[:3])
    net, config, extra = load_checkpoint(ckpt)
    assert config["name"] == name and extra["epoch"] == 2 and net.dims == (784, 20, 10)
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics] == [1, 2] and metrics == extra["metrics"]
    assert all(0.0 <= m["test_error"] <= 1.0 and np.isfinite(m["train_loss"]) for m in metrics)
    w = Weights.load(out / "weights.npz")
    np.testing.assert_array_equal(w.W, net.hidden.weight.detach().numpy())
    assert extra["machine"]["device"] == "cpu" and extra["seconds"] > 0


_SDP_SCRIPT = """
import json, sys, torch
from certsdp.training.loop import train
from certsdp.training.config import get_config
torch.set_num_threads(1)
losses = []
train(get_config("tiny-SDP", epochs=1), sys.argv[1], data_dir=sys.argv[2], progress=False,
      step_callback=lambda epoch, step, loss: losses.append(loss))
print(json.dumps(losses))
"""


def test_tiny_sdp_trains(tmp_path: Path, mnist_dir: Path) -> None:
    """One epoch of tiny-SDP with the exact certificate of the trained dual vectors.

    Run in a subprocess with one BLAS thread: the certificate needs 45 dense 805 x 805 eigensolves,
    about 3 s with one thread but minutes with two threads on a loaded 2-core machine.
    """
    pytest.importorskip("certsdp.training.sdp_regularizer")
    out = tmp_path / "sdp"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _SDP_SCRIPT, str(out), str(mnist_dir)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    losses = json.loads(proc.stdout.strip().splitlines()[-1])
    ckpt = out / "checkpoint.pt"
    assert len(losses) == 8 and all(np.isfinite(losses))
    # the per-step loss depends on the sampled class: compare the expected step loss (mean over i)
    # on a fixed batch, for the initial network and dual vectors and for the trained ones
    from certsdp.data.mnist import load_mnist
    from certsdp.training.sdp_regularizer import SDPDualRegularizer

    X, y = load_mnist("train", data_dir=mnist_dir, limit=64)
    xb, yb = torch.tensor(X), torch.tensor(y)

    def expected_loss(net: TwoLayerNet, state: dict | None) -> float:
        reg = SDPDualRegularizer(784, 20, 10)
        if state is not None:
            reg.load_state_dict(state)
        ones = torch.ones(10)
        with torch.no_grad():
            for _ in range(5):  # converge the warm-started eigenvectors
                for i in range(10):
                    reg(net, i, ones)
            total = sum(float(reg(net, i, ones)) for i in range(10)) / 10
            return float(multiclass_hinge(net(xb), yb)) + 0.05 * total

    torch.manual_seed(0)
    initial = expected_loss(TwoLayerNet(784, 20, 10), None)  # the initialisation of train()
    trained, _, extra = load_checkpoint(ckpt)
    after = expected_loss(trained, extra["regularizer"])
    assert after < initial
    _, _, extra = load_checkpoint(ckpt)
    (m,) = json.loads((out / "metrics.json").read_text())
    bounds = np.array([[np.nan if v is None else v for v in row] for row in m["sdp_bounds"]])
    off = ~np.eye(10, dtype=bool)
    assert np.all(np.isfinite(bounds[off]) & (bounds[off] > 0))
    assert np.allclose(bounds, bounds.T, equal_nan=True)
    assert m["sdp_bound_max"] == pytest.approx(bounds[off].max())
    assert 0.0 <= m["sdp_cert_error"] <= 1.0
    assert "log_c" in extra["regularizer"] and "eigvecs" in extra["regularizer"]


def _cheap_bounds(self, net) -> np.ndarray:
    """Stand-in for the exact (dense eigensolver) certificate: sum relu(c) per pair, to keep tests fast."""
    c = self.c.detach().sum(dim=1).double().numpy()
    out = np.full((self.k, self.k), np.nan)
    for n, (i, j) in enumerate(self.pairs):
        out[i, j] = out[j, i] = c[n] * (1 + 0.1 * i + 0.01 * j)
    return out


def _assert_same_run(a: Path, b: Path) -> None:
    net_a, _, ex_a = load_checkpoint(a)
    net_b, _, ex_b = load_checkpoint(b)
    for (key, pa), pb in zip(net_a.state_dict().items(), net_b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), key
    for key in ("pair_weights",):
        assert torch.equal(ex_a[key], ex_b[key])
    if ex_a["regularizer"] is not None:
        for key, val in ex_a["regularizer"].items():
            assert torch.equal(val, ex_b["regularizer"][key]), key
    for key, val in ex_a["spectral_state"].items():
        assert torch.equal(val, ex_b["spectral_state"][key])
    strip = ("seconds", "seconds_total")
    ma = [{k: v for k, v in m.items() if k not in strip} for m in ex_a["metrics"]]
    mb = [{k: v for k, v in m.items() if k not in strip} for m in ex_b["metrics"]]
    assert ma == mb


@pytest.mark.parametrize("name", ["tiny-Spe", "tiny-AT", "tiny-SDP"])
def test_resume_is_bitwise_identical(name: str, tmp_path: Path, mnist_dir: Path, monkeypatch) -> None:
    if name == "tiny-SDP":
        lm = pytest.importorskip("certsdp.training.sdp_regularizer")
        monkeypatch.setattr(lm.SDPDualRegularizer, "certificate_bounds", _cheap_bounds)
    straight, _ = _run(name, tmp_path / "straight", mnist_dir)
    # the same run interrupted after epoch 1: a 1-epoch run, then resume with the full config
    _run(name, tmp_path / "split", mnist_dir, overrides={"epochs": 1})
    with pytest.raises(InputError, match="resume"):
        _run(name, tmp_path / "split", mnist_dir)
    resumed, losses = _run(name, tmp_path / "split", mnist_dir, resume=True)
    assert len(losses) == 8  # only epoch 2 was trained
    _assert_same_run(straight, resumed)
    if name == "tiny-SDP":
        metrics = json.loads((tmp_path / "split" / "metrics.json").read_text())
        w = np.array([[np.nan if v is None else v for v in row] for row in metrics[1]["pair_weights"]])
        off = ~np.eye(10, dtype=bool)
        assert w[off].mean() == pytest.approx(1.0) and np.all(w[off] >= 0)
        _, _, extra = load_checkpoint(resumed)
        np.testing.assert_allclose(extra["pair_weights"].numpy(), np.nan_to_num(w), rtol=1e-6)


def test_resume_refuses_other_config(tmp_path: Path, mnist_dir: Path) -> None:
    _run("tiny-NT", tmp_path, mnist_dir, overrides={"epochs": 1})
    with pytest.raises(InputError, match="another config.*lr"):
        _run("tiny-NT", tmp_path, mnist_dir, overrides={"lr": 0.01}, resume=True)
    with pytest.raises(InputError, match="another config.*loss_reduction"):
        _run("tiny-NT", tmp_path, mnist_dir, overrides={"loss_reduction": "sum"}, resume=True)


def test_resume_fills_fields_added_later(tmp_path: Path, mnist_dir: Path) -> None:
    """A checkpoint written before a config field existed resumes as if it had the field's default."""
    ckpt, _ = _run("tiny-NT", tmp_path, mnist_dir, overrides={"epochs": 1})
    state = torch.load(ckpt, weights_only=True)
    for key in ("loss_reduction", "sdp_iters"):
        del state["config"][key]
    torch.save(seal(state), ckpt)  # an edited checkpoint carries a new hash (else it is refused)
    _run("tiny-NT", tmp_path, mnist_dir, overrides={"epochs": 2}, resume=True)
    assert load_checkpoint(ckpt)[2]["epoch"] == 2
    state = torch.load(ckpt, weights_only=True)
    state["config"]["loss_reduction"] = "sum"
    torch.save(seal(state), ckpt)
    with pytest.raises(InputError, match="loss_reduction"):
        _run("tiny-NT", tmp_path, mnist_dir, overrides={"epochs": 3}, resume=True)


def test_resume_refuses_a_run_longer_than_requested(tmp_path: Path, mnist_dir: Path) -> None:
    _run("tiny-NT", tmp_path, mnist_dir, overrides={"epochs": 2})
    with pytest.raises(InputError, match="2 epochs already, more than the 1 requested"):
        _run("tiny-NT", tmp_path, mnist_dir, overrides={"epochs": 1}, resume=True)


def test_divergence_stops_with_a_clear_error_and_keeps_the_checkpoint(
    tmp_path: Path, mnist_dir: Path, monkeypatch
) -> None:
    ckpt, _ = _run("tiny-NT", tmp_path, mnist_dir, overrides={"epochs": 1})
    before = ckpt.read_bytes()
    step_loss = NoRegularizer.loss
    monkeypatch.setattr(NoRegularizer, "loss", lambda *a: step_loss(*a) * float("nan"))
    with pytest.raises(TrainingDiverged, match="loss became nan in epoch 2 by step 1;.*unchanged"):
        _run("tiny-NT", tmp_path, mnist_dir, overrides={"epochs": 2}, resume=True)
    assert ckpt.read_bytes() == before


def test_at_loss_is_adversarial() -> None:
    """The PGD cross-entropy of AT-NN training clearly exceeds the clean one on a batch."""
    torch.manual_seed(4)
    net = TwoLayerNet(20, 16, 4)
    x, y = torch.rand(32, 20), torch.randint(0, 4, (32,))
    clean = torch.nn.functional.cross_entropy(net(x), y, reduction="none").detach()
    gen = torch.Generator().manual_seed(0)
    adv_mean = float(at_loss(net, x, y, 0.3, 0.1, 40, generator=gen).detach())
    assert adv_mean > float(clean.mean()) + 0.1


# ---------------------------------------------------------------------------------------------
# command line


def _main(argv: list[str], monkeypatch) -> int:
    return cli.main(argv)


def test_cli_errors(tmp_path: Path, mnist_dir: Path, monkeypatch, capsys) -> None:
    assert _main(["train", "--config", "no-such-net", "--out", str(tmp_path / "x")], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "unknown config" in err and "NT-NN" in err and "Traceback" not in err
    assert _main(["train", "--config", "tiny-NT", "--epochs", "0"], monkeypatch) == 2
    if not torch.cuda.is_available():
        assert _main(["train", "--config", "tiny-NT", "--device", "cuda", "--out", str(tmp_path / "c")],
                     monkeypatch) == 2
        assert "CUDA" in capsys.readouterr().err
    out = tmp_path / "run"
    argv = ["train", "--config", "tiny-NT", "--out", str(out), "--data-dir", str(mnist_dir), "--no-progress"]
    assert _main([*argv, "--epochs", "1"], monkeypatch) == 0
    assert "tiny-NT: 1 epochs" in capsys.readouterr().out
    assert _main(argv, monkeypatch) == 2
    assert "--resume" in capsys.readouterr().err
    assert _main([*argv, "--resume"], monkeypatch) == 0
    assert len(json.loads((out / "metrics.json").read_text())) == 2
    assert "to resume" not in capsys.readouterr().err
    fresh = ["train", "--config", "tiny-NT", "--out", str(tmp_path / "fresh"), "--data-dir", str(mnist_dir),
             "--no-progress", "--epochs", "1", "--no-cuda-graphs"]
    assert _main([*fresh, "--resume"], monkeypatch) == 0
    assert "no checkpoint in" in capsys.readouterr().err
    assert _main(["train", "--list"], monkeypatch) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in PAPER + TINY)


def test_fork_unweighted_from_weighted_before_the_refresh(tmp_path: Path, mnist_dir: Path) -> None:
    """Until the first pair-weight refresh the weighted and unweighted SDP runs are one computation."""
    direct, _ = _run("tiny-SDP-unweighted", tmp_path / "direct", mnist_dir)
    both, _ = _run("tiny-SDP", tmp_path / "weighted", mnist_dir)  # pair weights refreshed after epoch 1
    first = tmp_path / "weighted" / FORK_POINT_NAME
    assert load_checkpoint(first)[2]["epoch"] == 1
    assert (tmp_path / "direct" / FORK_POINT_NAME).exists()  # either run can start the other
    forked, _ = _run("tiny-SDP-unweighted", tmp_path / "forked", mnist_dir, fork_from=first)
    net_a, config_a, extra_a = load_checkpoint(direct)
    net_b, config_b, extra_b = load_checkpoint(forked)
    assert config_a == config_b and extra_b["epoch"] == 2
    assert extra_b["forked_from"] == {"checkpoint": str(first), "config": "tiny-SDP", "epoch": 1}
    for key, val in net_a.state_dict().items():
        assert torch.equal(val, net_b.state_dict()[key]), key
    for key, val in extra_a["regularizer"].items():
        assert torch.equal(val, extra_b["regularizer"][key]), key
    # past the refresh the runs part; other configs are refused; an existing run is not overwritten
    with pytest.raises(InputError, match="past the first pair-weight refresh"):
        _run("tiny-SDP-unweighted", tmp_path / "f2", mnist_dir, fork_from=both)
    nt, _ = _run("tiny-NT", tmp_path / "nt", mnist_dir, overrides={"epochs": 1})
    assert not (tmp_path / "nt" / FORK_POINT_NAME).exists()
    with pytest.raises(InputError, match="forking is for"):
        _run("tiny-SDP-unweighted", tmp_path / "f3", mnist_dir, fork_from=nt)
    with pytest.raises(InputError, match="another config.*lr"):
        _run("tiny-SDP-unweighted", tmp_path / "f4", mnist_dir, fork_from=first, overrides={"lr": 0.01})
    with pytest.raises(InputError, match="already exists"):
        _run("tiny-SDP-unweighted", tmp_path / "forked", mnist_dir, fork_from=first)
    with pytest.raises(InputError, match="not found"):
        _run("tiny-SDP-unweighted", tmp_path / "f5", mnist_dir, fork_from=tmp_path / "nope.pt")


def test_pair_weights_refresh_every_n_epochs(tmp_path: Path, mnist_dir: Path) -> None:
    """With a refresh every 2 epochs, the weights change at the start of (1-based) epoch 3, not before."""
    ckpt, _ = _run("tiny-SDP", tmp_path, mnist_dir, overrides={"epochs": 3, "weight_refresh_epochs": 2})
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics if "pair_weights" in r] == [3]
    assert load_checkpoint(tmp_path / FORK_POINT_NAME)[2]["epoch"] == 2
    last = np.array([[np.nan if v is None else v for v in row] for row in metrics[2]["pair_weights"]])
    kept = load_checkpoint(ckpt)[2]["pair_weights"].numpy()
    np.testing.assert_allclose(kept, np.nan_to_num(last), rtol=1e-6)


def test_fork_point_survives_a_run_stopped_at_the_refresh_epoch(tmp_path: Path, mnist_dir: Path) -> None:
    """A run trained only up to the refresh epoch, then resumed past it, still leaves the fork point.

    Before, the copy was made only when the run's planned length went past the refresh, so resuming
    such a run overwrote the last shared checkpoint; a kill between the save and the copy lost it too.
    """
    out = tmp_path / "run"
    _run("tiny-SDP", out, mnist_dir, overrides={"epochs": 1})
    assert load_checkpoint(out / FORK_POINT_NAME)[2]["epoch"] == 1
    (out / FORK_POINT_NAME).unlink()  # as if killed between the checkpoint and its copy
    _run("tiny-SDP", out, mnist_dir, resume=True)
    assert load_checkpoint(out / "checkpoint.pt")[2]["epoch"] == 2
    assert load_checkpoint(out / FORK_POINT_NAME)[2]["epoch"] == 1


def test_config_refuses_out_of_range_seeds_and_renaming() -> None:
    for seed in (2**32, -1, 1.5):
        with pytest.raises(InputError, match="seed"):
            get_config("tiny-NT", seed=seed)
    assert get_config("tiny-NT", seed=2**32 - 1).seed == 2**32 - 1
    with pytest.raises(InputError, match="cannot be overridden"):
        get_config("tiny-NT", name="renamed")


# ---------------------------------------------------------------------------------------------
# regularizers as classes, dims from the data


def test_one_regularizer_class_per_config_reg() -> None:
    assert tuple(REGULARIZER_CLASSES) == REGULARIZERS
    assert all(cls.name == name for name, cls in REGULARIZER_CLASSES.items())
    assert GRAPH_REGS == ("none", "at")
    eps_fields = {name: regularizer_class(CONFIGS[name]).eps_field for name in TINY}
    assert eps_fields == {"tiny-NT": None, "tiny-SDP": "sdp_eps", "tiny-SDP-unweighted": "sdp_eps",
                          "tiny-AT": "at_eps", "tiny-LP": "lp_eps", "tiny-Fro": None, "tiny-Spe": None}
    for name in TINY:
        reg = make_regularizer(CONFIGS[name], (784, 20, 10))
        assert reg.name == CONFIGS[name].reg


def test_regularizer_state_round_trip() -> None:
    """What a regularizer checkpoints (spectral vector, dual vectors and pair weights) restores it."""
    torch.manual_seed(0)
    net = TwoLayerNet(784, 20, 10)
    xb, yb = torch.rand(8, 784), torch.randint(0, 10, (8,))
    for name in ("tiny-Spe", "tiny-SDP"):
        a = make_regularizer(CONFIGS[name], net.dims)
        a.loss(net, xb, yb, StepContext(3)).backward()
        b = make_regularizer(CONFIGS[name], net.dims)
        b.load_state_dict(a.state_dict(), "test")
        assert torch.equal(a.loss(net, xb, yb, StepContext(5)), b.loss(net, xb, yb, StepContext(5))), name
    with pytest.raises(InputError, match="earlier SDP regularizer"):
        make_regularizer(CONFIGS["tiny-SDP"], net.dims).load_state_dict({"regularizer": {"c": 1}}, "old.pt")


def test_train_takes_a_dataset_and_its_dims(tmp_path: Path) -> None:
    """Input dimension and number of classes come from the data (12 features, 3 classes here)."""
    rng = np.random.default_rng(0)
    data = TrainingData(rng.uniform(size=(40, 12)).astype(np.float32), rng.integers(0, 3, 40),
                        rng.uniform(size=(10, 12)).astype(np.float32), rng.integers(0, 3, 10), 3)
    for name in ("tiny-NT", "tiny-Spe", "tiny-AT"):
        ckpt = train(get_config(name, batch_size=16, epochs=1), tmp_path / name, data, progress=False)
        net, _, extra = load_checkpoint(ckpt)
        assert net.dims == (12, 20, 3) and extra["pair_weights"].shape == (3, 3)
    with pytest.raises(InputError, match="labels must lie in 0..2"):
        TrainingData(data.X, data.y + 1, data.X_test, data.y_test, 3)
    with pytest.raises(InputError, match="dataset must be a TrainingData.*data_dir"):
        train(get_config("tiny-NT"), tmp_path / "x", str(tmp_path), progress=False)


# ---------------------------------------------------------------------------------------------
# the resume state is verified whole (issue 17, item 1)


def _flip_bytes(path: Path, tensor: torch.Tensor, offset: int, length: int) -> None:
    """Overwrite ``length`` bytes of ``tensor``'s data inside the checkpoint file (found by content)."""
    raw = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    needle = raw[offset:offset + length]
    data = bytearray(path.read_bytes())
    assert data.count(needle) == 1, "the bytes to corrupt must be found exactly once"
    pos = data.index(needle)
    data[pos:pos + length] = bytes(b ^ 0x5A for b in needle)
    path.write_bytes(bytes(data))


_CORRUPTIONS = {  # name -> (config, the tensor of the checkpoint, offset, length)
    "adam exp_avg": ("tiny-NT", lambda p: p["extra"]["optimizer"]["state"][0]["exp_avg"], 4000, 32),
    "sdp dual vectors log_c": ("tiny-SDP", lambda p: p["extra"]["regularizer"]["log_c"], 4000, 32),
    "pair weights": ("tiny-SDP", lambda p: p["extra"]["pair_weights"], 0, 400),
    "torch rng state": ("tiny-NT", lambda p: p["extra"]["rng"]["torch"], 1000, 32),
    "spectral vector": ("tiny-Spe", lambda p: p["extra"]["spectral_state"]["v"], 400, 32),
}


@pytest.mark.parametrize("what", list(_CORRUPTIONS))
def test_a_corrupted_resume_state_is_refused(what: str, tmp_path: Path, mnist_dir: Path, monkeypatch,
                                              capsys) -> None:
    """torch.load does not check the zip's CRCs: a corrupted byte in the optimizer, dual vectors, pair
    weights or random state loaded silently and the run resumed (exit 0) as another run."""
    name, pick, offset, length = _CORRUPTIONS[what]
    if name == "tiny-SDP":
        lm = pytest.importorskip("certsdp.training.sdp_regularizer")
        monkeypatch.setattr(lm.SDPDualRegularizer, "certificate_bounds", _cheap_bounds)
    ckpt, _ = _run(name, tmp_path, mnist_dir, overrides={"epochs": 1})
    _flip_bytes(ckpt, pick(torch.load(ckpt, weights_only=True)), offset, length)
    with pytest.raises(InputError, match="corrupt"):
        _run(name, tmp_path, mnist_dir, resume=True)
    argv = ["train", "--config", name, "--out", str(tmp_path), "--data-dir", str(mnist_dir), "--no-progress",
            "--resume"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and len(err.strip().splitlines()) == 1


def test_format_1_checkpoints_load_their_weights_but_do_not_resume(tmp_path: Path, mnist_dir: Path) -> None:
    """A checkpoint without the whole-state hash (format 1, e.g. results/*/checkpoint.pt) is evaluated
    from its verified weights, but resuming or forking from it is refused."""
    ckpt, _ = _run("tiny-SDP-unweighted", tmp_path / "run", mnist_dir, overrides={"epochs": 1})
    payload = torch.load(ckpt, weights_only=True)
    del payload["state_sha256"]
    payload["format"] = 1
    torch.save(payload, ckpt)
    old = read_checkpoint(ckpt)
    assert old.format == 1 and not old.verified and old.extra["epoch"] == 1
    assert load_checkpoint(ckpt)[0].to_weights().content_hash() == payload["weights_sha256"]
    with pytest.raises(InputError, match="format-1 checkpoint.*cannot be verified"):
        _run("tiny-SDP-unweighted", tmp_path / "run", mnist_dir, resume=True)
    with pytest.raises(InputError, match="cannot fork from .*format-1"):
        _run("tiny-SDP", tmp_path / "fork", mnist_dir, fork_from=ckpt)
    fresh, _ = _run("tiny-NT", tmp_path / "fresh", mnist_dir, overrides={"epochs": 1})
    assert read_checkpoint(fresh).verified and read_checkpoint(fresh).format == 2


@pytest.mark.parametrize("name", ["NT-NN", "SDP-NN"])
def test_committed_checkpoints_load_but_do_not_resume(name: str, tmp_path: Path) -> None:
    committed = Path(__file__).resolve().parents[1] / "results" / name / "checkpoint.pt"
    if not committed.is_file():
        pytest.skip(f"{committed} is absent")
    ckpt = read_checkpoint(committed)
    assert ckpt.format == 1 and not ckpt.verified and ckpt.config["name"] == name
    assert ckpt.net.dims == (784, 500, 10)
    out = tmp_path / name
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(committed.read_bytes())
    with pytest.raises(InputError, match="format-1"):
        train(get_config(name), out, progress=False, resume=True)


# ---------------------------------------------------------------------------------------------
# output folder (issue 17, item 6) and command line overrides


@pytest.mark.parametrize("where", ["under a file", "proc"])
def test_an_output_folder_that_cannot_be_created_is_one_line(where: str, tmp_path: Path, mnist_dir: Path,
                                                             capsys) -> None:
    if where == "proc":
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc")
        out = Path("/proc/certsdp-train-test/run")
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "run"
    with pytest.raises(InputError, match="output folder"):
        train(get_config("tiny-NT", epochs=1), out, data_dir=mnist_dir, progress=False)
    argv = ["train", "--config", "tiny-NT", "--out", str(out), "--data-dir", str(mnist_dir), "--no-progress"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "output folder" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_run_leaves_only_its_files(tmp_path: Path, mnist_dir: Path) -> None:
    _run("tiny-NT", tmp_path, mnist_dir, overrides={"epochs": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.json", "weights.npz"]


def test_cli_overrides_hidden_epochs_eps(tmp_path: Path, mnist_dir: Path, capsys) -> None:
    base = ["train", "--data-dir", str(mnist_dir), "--no-progress"]
    out = tmp_path / "at"
    assert cli.main([*base, "--config", "tiny-AT", "--out", str(out), "--hidden", "8", "--epochs", "1",
                     "--eps", "0.2"]) == 0
    net, config, extra = load_checkpoint(out / "checkpoint.pt")
    assert net.dims == (784, 8, 10) and config["hidden"] == 8 and config["at_eps"] == 0.2
    assert extra["epoch"] == 1 and config["epochs"] == 1
    capsys.readouterr()
    out = tmp_path / "lp"
    assert cli.main([*base, "--config", "tiny-LP", "--out", str(out), "--width", "6", "--epochs", "1",
                     "--eps", "0.05"]) == 0
    _, config, _ = load_checkpoint(out / "checkpoint.pt")
    assert (config["hidden"], config["lp_eps"], config["at_eps"]) == (6, 0.05, 0.3)
    for argv, message in (
        (["--config", "tiny-NT", "--eps", "0.1"], "--eps: configuration tiny-NT"),
        (["--config", "tiny-NT", "--hidden", "0"], "--hidden: hidden must be an integer >= 1"),
        (["--config", "tiny-NT", "--epochs", "0"], "--epochs: epochs must be an integer >= 1"),
    ):
        assert cli.main([*base, "--out", str(tmp_path / "bad"), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()


def test_cli_loss_reduction_is_recorded_and_changes_the_run(tmp_path: Path, mnist_dir: Path, capsys) -> None:
    """``--loss-reduction sum`` (the Fro-NN/Spe-NN question of docs/training.md) trains a different
    network, is recorded in the checkpoint, must be repeated on resume and is refused for AT/LP."""
    base = ["train", "--data-dir", str(mnist_dir), "--no-progress", "--config", "tiny-Fro", "--epochs", "1"]
    weights = {}
    for reduction in ("mean", "sum"):
        out = tmp_path / reduction
        assert cli.main([*base, "--out", str(out), "--loss-reduction", reduction]) == 0
        net, config, _ = load_checkpoint(out / "checkpoint.pt")
        assert config["loss_reduction"] == reduction
        weights[reduction] = net.to_weights().W.copy()
    assert not np.allclose(weights["mean"], weights["sum"])
    capsys.readouterr()
    assert cli.main([*base[:-1], "2", "--out", str(tmp_path / "sum"), "--resume"]) == 2  # without the flag
    assert "loss_reduction" in capsys.readouterr().err
    for config in ("tiny-AT", "tiny-LP"):
        assert cli.main(["train", "--config", config, "--out", str(tmp_path / "bad"), "--loss-reduction",
                         "sum"]) == 2
        err = capsys.readouterr().err
        assert "--loss-reduction" in err and len(err.strip().splitlines()) == 1, err


def test_cli_list_is_aligned(capsys) -> None:
    assert cli.main(["train", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(CONFIGS) and lines[0].split()[:2] == ["name", "loss"]
    for column in ("784-", "sdp x", "at x"):
        starts = {line.find(column) for line in lines[1:] if column in line}
        assert len(starts) == 1, (column, starts)
    network = lines[0].index("network")
    assert all(line[network:network + 4] == "784-" for line in lines[1:])
