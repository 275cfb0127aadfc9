"""The ablations of AT-NN's training (issue: AT-NN as robust as the paper's): the training PGD's box
clipped to [0, 1] (``at_clip``), its last iterate instead of the worst point visited (``at_keep``), the
loss weight (``at_weight``).

* ``pgd_unchecked(..., keep_last=True)`` is the plain PGD loop written out here, and stays in the box;
  with ``clip`` its points lie in [0, 1] as well; the defaults are unchanged (tested elsewhere);
* ``at_loss`` passes both on; the configuration refuses them outside AT and refuses an unknown
  ``at_keep``; a checkpoint written before the fields existed still resumes (they count at their
  defaults);
* ``certsdp train --at-clip --at-keep last --at-weight W`` trains and records them; bad values exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import certsdp.attacks as A
from certsdp import cli
from certsdp.errors import InputError
from certsdp.network.torch_model import TwoLayerNet
from certsdp.training.config import get_config
from certsdp.training.losses import at_loss


def _batch(seed: int, n: int = 8, d: int = 20, k: int = 4):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=gen, dtype=torch.float64)
    x[:, :5] = torch.tensor([0.0, 1.0, 0.02, 0.99, 0.5], dtype=torch.float64)  # at and near the clip ends
    y = torch.randint(0, k, (n,), generator=gen)
    noise = torch.rand(n, d, generator=gen, dtype=torch.float64)
    return x, y, noise


def _plain_pgd(net, x, y, eps, steps, step, noise, clip) -> torch.Tensor:
    """PGD on the cross-entropy as Madry et al. write it: random start, signed steps, projection,
    the last iterate."""
    lo, hi = x - eps, x + eps
    if clip:
        lo, hi = lo.clamp(min=0.0), hi.clamp(max=1.0)
    z = torch.clamp(lo + noise * (hi - lo), lo, hi)
    for _ in range(steps):
        z = z.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(net(z), y, reduction="sum"), z)
        z = torch.clamp(z.detach() + step * grad.sign(), lo, hi)
    return z


@pytest.mark.parametrize("clip", [False, True])
def test_the_last_iterate_is_plain_pgd_and_stays_in_the_box(clip: bool) -> None:
    torch.manual_seed(0)
    net = TwoLayerNet(20, 16, 4).double()
    x, y, noise = _batch(1)
    got = A.pgd_unchecked(net, x, y, 0.3, 7, 0.1, noise, clip=(0.0, 1.0) if clip else None, keep_last=True)
    want = _plain_pgd(net, x, y, 0.3, 7, 0.1, noise, clip)
    assert torch.allclose(got, want, atol=1e-12, rtol=0)
    assert torch.all((got - x).abs() <= 0.3 + 1e-12)
    if clip:
        assert torch.all((got >= 0) & (got <= 1))
    else:
        assert torch.any(got < 0) or torch.any(got > 1)  # the unclipped box leaves [0, 1] at 0 and 1
    worst = A.pgd_unchecked(net, x, y, 0.3, 7, 0.1, noise, clip=(0.0, 1.0) if clip else None)
    losses = [F.cross_entropy(net(z), y, reduction="none") for z in (worst, got)]
    assert torch.all(losses[0] >= losses[1] - 1e-12)  # the worst point visited is at least as strong


def test_at_loss_passes_the_ablations_on() -> None:
    torch.manual_seed(1)
    net = TwoLayerNet(20, 16, 4).double()
    x, y, noise = _batch(2)
    last = at_loss(net, x, y, 0.3, 0.1, 7, noise=noise, clip=True, keep="last")
    z = _plain_pgd(net, x, y, 0.3, 7, 0.1, noise, clip=True)
    assert float(last.detach()) == pytest.approx(float(F.cross_entropy(net(z), y).detach()), abs=1e-12)
    assert float(at_loss(net, x, y, 0.3, 0.1, 7, noise=noise).detach()) >= float(last.detach()) - 1e-12
    with pytest.raises(InputError, match="keep"):
        at_loss(net, x, y, 0.3, 0.1, 7, noise=noise, keep="best")


def test_the_configuration_checks_the_ablations() -> None:
    cfg = get_config("AT-NN", at_clip=True, at_keep="last", at_weight=1.0)
    assert (cfg.at_clip, cfg.at_keep, cfg.at_weight) == (True, "last", 1.0)
    for bad in ({"at_keep": "best"}, {"at_clip": 1}):
        with pytest.raises(InputError):
            get_config("AT-NN", **bad)
    for field in ({"at_clip": True}, {"at_keep": "last"}):
        with pytest.raises(InputError, match="only apply to reg='at'"):
            get_config("NT-NN", **field)


def test_the_command_line_trains_and_records_an_ablation(tmp_path: Path, mnist_dir: Path, capsys) -> None:
    out = tmp_path / "run"
    base = ["train", "--config", "tiny-AT", "--out", str(out), "--data-dir", str(mnist_dir), "--no-progress"]
    ablation = ["--at-clip", "--at-keep", "last", "--at-weight", "1.0"]
    assert cli.main([*base, "--epochs", "1", *ablation]) == 0
    saved = torch.load(out / "checkpoint.pt", weights_only=False)
    config = json.dumps(saved, default=str)
    assert '"at_clip": true' in config and '"at_keep": "last"' in config and '"at_weight": 1.0' in config
    capsys.readouterr()
    assert cli.main([*base, "--epochs", "2", "--resume"]) == 2  # resumed without the ablation: refused
    assert "at_clip" in capsys.readouterr().err
    assert cli.main([*base, "--epochs", "2", *ablation, "--resume"]) == 0
    for bad in (["--at-keep", "best"], ["--at-weight", "nan"]):
        assert cli.main(["train", "--config", "tiny-AT", "--out", str(tmp_path / "bad"), *bad]) == 2
        assert "Traceback" not in capsys.readouterr().err
