"""Attack reports: every example attacked in batches, with random starts seeded per example.

The report says per example whether it was fooled (clean mistakes included) and the fraction fooled,
the attack's lower bound on the adversarial error. Random starts are drawn per ``(seed, example
index)``, so a report does not depend on the batch size or on the device.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from certsdp.attacks.base import Attack
from certsdp.attacks.inputs import as_batch, clean_scores, eval_mode
from certsdp.attacks.registry import attack_class
from certsdp.attacks.settings import check_attack
from certsdp.errors import InputError
from certsdp.network.margins import score_margin
from certsdp.validation import check_int


def example_noise(seed: int, start: int, stop: int, restarts: int, d: int) -> torch.Tensor:
    """Uniform [0, 1) float64 noise of shape ``(restarts, stop - start, d)``, seeded per example index.

    Row ``i`` comes from ``np.random.default_rng([seed, i])``: reports are independent of the batch
    size and of the device.
    """
    rows = [np.random.default_rng([seed, i]).random((restarts, d)) for i in range(start, stop)]
    return torch.from_numpy(np.stack(rows, axis=1))


def fooled_at(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per row, ``max_{i != y} f_i(x) - f_y(x) >= 0`` with the network in eval mode (no gradient)."""
    with eval_mode(net), torch.no_grad():
        return score_margin(net(x), y) >= 0


def misclassified(net: nn.Module, X: Any, y: Any) -> np.ndarray:
    """Per example, whether ``max_{i != y} f_i(x) - f_y(x) >= 0`` (the rule attacks use for "fooled")."""
    x, yy = as_batch(net, X, y)
    with eval_mode(net):
        logits = clean_scores(net, x, yy)
    return (score_margin(logits, yy) >= 0).cpu().numpy()


def report_attack(
    attack: Attack,
    net: nn.Module,
    X: Any,
    y: Any,
    *,
    batch_size: int = 500,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run a configured ``attack`` on every example; the summary of :func:`attack_report`."""
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    x_all, y_all = attack.check_batch(net, X, y, batch_size)
    n, d = x_all.shape
    if n == 0:
        raise InputError("inputs: no examples to attack")
    fooled = np.zeros(n, dtype=bool)
    show = progress and sys.stderr.isatty()
    t0 = time.perf_counter()
    with tqdm(total=n, desc=f"{attack.name} eps={attack.eps:g}", unit="ex", disable=not show) as bar:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            noise = None
            if attack.n_random > 0 and attack.eps > 0:
                noise = example_noise(seed, start, stop, attack.n_random, d)
            x_adv = attack.run(net, x_all[start:stop], y_all[start:stop], noise=noise)
            fooled[start:stop] = fooled_at(net, x_adv, y_all[start:stop]).cpu().numpy()
            bar.update(stop - start)
    if x_all.device.type == "cuda":
        torch.cuda.synchronize(x_all.device)
    seconds = time.perf_counter() - t0
    return {
        "attack": attack.name,
        "eps": attack.eps,
        "n": int(n),
        "error": float(fooled.mean()),
        "seconds": seconds,
        "fooled": [bool(v) for v in fooled],
        "clip": list(attack.clip) if attack.clip is not None else None,
    }


def attack_report(
    net: nn.Module,
    X: Any,
    y: Any,
    eps: float,
    attack: str,
    *,
    clip: tuple[float, float] | None = None,
    batch_size: int = 500,
    seed: int = 0,
    progress: bool = True,
    **kw: Any,
) -> dict[str, Any]:
    """Attack every example of ``X`` (rows) with labels ``y``; return a JSON-ready summary.

    ``attack`` is "fgsm", "pgd" or "cw"; ``kw`` are that attack's options (``steps``, ``step_size``,
    ``restarts``; ``loss`` for PGD; ``kappa`` for CW). Random starts are drawn per example from
    ``seed``, so the result does not depend on ``batch_size``. Returns ``{"attack", "eps", "n",
    "error", "seconds", "fooled", "clip"}``: ``fooled`` per example (clean mistakes included),
    ``error`` the fraction fooled, ``seconds`` the wall time of the attack.
    """
    configured = make_attack(attack, eps, clip, **kw)
    return report_attack(configured, net, X, y, batch_size=batch_size, seed=seed, progress=progress)


def make_attack(attack: str, eps: float, clip: tuple[float, float] | None = None, **kw: Any) -> Attack:
    """The attack ``attack`` ("fgsm", "pgd" or "cw") with options ``kw``, validated (:class:`InputError`)."""
    spec = check_attack(attack)
    unknown = set(kw) - set(spec.options)
    if unknown:
        raise InputError(f"{attack} takes no option(s) {', '.join(sorted(unknown))}")
    return attack_class(attack)(eps, clip, **kw)
