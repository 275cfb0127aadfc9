"""Figure 4 of the paper: weighted vs unweighted SDP training, and the training certificate vs the exact SDP.

The SDP certificate (eq. 12) certifies ``(x, y)`` at radius eps when
``max_{i != y} f_i(x) - f_y(x) + eps/4 * S_iy < 0``, ``S_ij`` (an upper bound on) the SDP value of
the class pair, a function of the weights only.

* 4(a): SDP-NN trained with the *weighted* regularizer (pair weights refreshed from how often each
  pair decides a training point's certificate) against the *unweighted* one (all pairs weight 1,
  plain eq. 15): SDP certified error (upper bound, all test images) and PGD error (lower bound,
  first ``n`` images, box clipped to ``[0, 1]``) as eps varies.
* 4(b): certified error from the dual vectors ``c_ij`` trained with the network (eq. 16, made
  rigorous by a Cholesky test) against the SDP solved exactly after training. Both are sound upper
  bounds; the exact SDP is the tightest this relaxation gives.

The networks are the paper-scale ``SDP-NN`` and ``SDP-NN-unweighted`` of ``results/networks.json``.
If either is missing (training takes hours on a CPU), two small demo networks (``tiny-SDP`` and
``tiny-SDP-unweighted``, 784-20-10, seconds) are trained in a temporary folder instead, so that every
step of the figure runs; their numbers say nothing about the paper's results.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from certsdp.experiments import plots
from certsdp.experiments.context import CERT_EPS, DEMO_CERT_EPS, Attacks, Context
from certsdp.experiments.curves import attack_curve, certified_curve, certified_masks
from certsdp.experiments.manifest import TrainedNetwork, sdp_table, train_command
from certsdp.experiments.paper import paper_value
from certsdp.network import Weights
from certsdp.network.checkpoint import load_checkpoint
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp import PairTable, acquire_pair_table
from certsdp.training import get_config, train
from certsdp.training.sdp_regularizer import SDPDualRegularizer

PAPER_NAMES = {"weighted": "SDP-NN", "unweighted": "SDP-NN-unweighted"}
DEMO_NAMES = {"weighted": "tiny-SDP", "unweighted": "tiny-SDP-unweighted"}
#: the demo networks: the first 6,144 training images, batch 128, 2 epochs, learning rate 0.01
#: (paper: 1e-3 for 90 epochs of 60,000 images), same seed, so their first epoch is identical
DEMO = {"train_limit": 6144, "batch_size": 128, "epochs": 2, "lr": 0.01}
SOURCES = ("exact SDP", "dual from training")
COLOR = {"weighted": "C0", "unweighted": "C3"}


@dataclass
class Trained:
    """One of the two networks: its checkpoint's contents and, once computed, its pair bounds."""

    kind: str  # "weighted" or "unweighted"
    name: str
    net: TwoLayerNet
    config: dict[str, Any]
    extra: dict[str, Any]
    entry: TrainedNetwork | None  # None for a demo network
    weights: Weights = field(init=False)
    dual: np.ndarray | None = None  # (k, k) bounds from the trained dual vectors (eq. 16)
    table: PairTable | None = None  # the exactly solved SDP

    def __post_init__(self) -> None:
        self.weights = self.net.to_weights()
        if self.config["reg"] != "sdp" or self.config["sdp_weighted"] != (self.kind == "weighted"):
            raise ValueError(f"{self.name} is not an SDP-NN trained {self.kind}")

    @property
    def label(self) -> str:
        return self.name + (" (weighted)" if self.kind == "weighted" else "")


@dataclass
class Networks:
    """The figure's two networks and the radii it uses for them."""

    paper_scale: bool
    nets: dict[str, Trained]
    cert_eps: tuple[float, ...]
    attacks: Attacks

    @property
    def description(self) -> str:
        if self.paper_scale:
            return "paper-scale networks (results/networks.json)"
        return "demo networks (tiny config)"


@dataclass
class Curves:
    """Certified error % per (kind, source) and PGD error % per kind, index eps."""

    cert: pd.DataFrame
    pgd: pd.DataFrame


def networks(ctx: Context) -> Networks:
    """The paper-scale networks when both are trained with a checkpoint, else the demo networks."""
    found = ctx.trained(list(PAPER_NAMES.values()), report=False)
    missing = [name for name in PAPER_NAMES.values() if name not in found or found[name].checkpoint is None]
    if not missing:
        nets = {kind: Trained(kind, name, *load_checkpoint(found[name].checkpoint), found[name])
                for kind, name in PAPER_NAMES.items()}
        chosen = Networks(True, nets, CERT_EPS, ctx.profile.fig4)
    else:
        print(f"The paper-scale networks {' and '.join(missing)} are not trained yet (not in "
              "results/networks.json with a checkpoint).\nFalling back to DEMO networks trained here on "
              "tiny configs: the figures show the method, NOT the paper's results.")
        for name in missing:
            print(f"  to train {name}: {train_command(name)}")
        chosen = Networks(False, train_demo(), DEMO_CERT_EPS, ctx.profile.fig4_demo)
    print(f"profile {ctx.profile.name}: {chosen.description}; PGD on the first {chosen.attacks.n} test "
          f"images, certificates on all {len(ctx.test_set[1])}")
    for kind, rec in chosen.nets.items():
        last = rec.extra["metrics"][-1]
        print(f"{rec.name:>20}: {kind}, {rec.config['epochs']} epochs, hidden {rec.config['hidden']}, "
              f"sdp_eps {rec.config['sdp_eps']}, test error after training {100 * last['test_error']:.2f}% "
              f"(first {rec.config['eval_limit']} test images)")
    return chosen


def train_demo() -> dict[str, Trained]:
    """Train the two demo networks (:data:`DEMO`) in a temporary folder, on one torch thread (fast on
    tiny tensors, and the same result on any machine)."""
    nets = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="certsdp_fig4_") as workdir:
            for kind, name in DEMO_NAMES.items():
                t0 = time.perf_counter()
                checkpoint = train(get_config(name, **DEMO), Path(workdir) / name, progress=False)
                nets[kind] = Trained(kind, name, *load_checkpoint(checkpoint), None)
                print(f"trained {name} in {time.perf_counter() - t0:.1f} s")
    finally:
        torch.set_num_threads(threads)
    return nets


def pair_bounds(ctx: Context, chosen: Networks) -> None:
    """Fill each network's ``dual`` (eq. 16 bounds) and ``table`` (exact SDP), check and print them.

    The training-time bounds restore the regularizer's dual vectors ``c_ij`` from the checkpoint and
    certify ``max(c_ij, 0) + tau`` (smallest ``tau`` passing a Cholesky test); training recorded the
    same bounds after its last epoch, and the smoke profile on paper-scale networks reads that record
    (45 dense eigensolves of size 1,285 skipped). A rigorous upper bound is never below the exact
    SDP's primal (feasible) value: checked for every pair whose primal value is known.
    """
    for rec in chosen.nets.values():
        t0 = time.perf_counter()
        rec.dual = _training_bounds(rec, recompute=ctx.profile.recompute_duals or not chosen.paper_scale)
        t_dual, t0 = time.perf_counter() - t0, time.perf_counter()
        if rec.entry is None:
            rec.table = acquire_pair_table(rec.weights)
        else:
            rec.table = sdp_table(rec.entry, rec.weights, solve=ctx.profile.solve_tables)
        off = ~np.eye(rec.weights.k, dtype=bool)
        known = off & np.isfinite(rec.table.lower)
        if not np.all(rec.dual[known] >= rec.table.lower[known] * (1 - 1e-6)):
            raise AssertionError(f"{rec.name}: a training-time bound lies below the exact SDP's primal value")
        ratio = rec.dual[off] / rec.table.upper[off]
        print(f"{rec.name:>20}: exact S_ij mean {rec.table.upper[off].mean():.2f} (max primal-dual gap "
              f"{rec.table.max_gap:.1e}); from training mean {rec.dual[off].mean():.2f}, "
              f"{ratio.min():.2f}-{ratio.max():.2f}x the exact value  "
              f"[{t_dual:.1f} s + {time.perf_counter() - t0:.1f} s]")


def _training_bounds(rec: Trained, recompute: bool) -> np.ndarray:
    """The (k, k) eq. 16 bounds of ``rec``'s trained dual vectors: recomputed, or as training recorded."""
    recorded = np.array([[np.nan if v is None else v for v in row]
                         for row in rec.extra["metrics"][-1]["sdp_bounds"]])
    if not recompute:
        return recorded
    w = rec.weights
    reg = SDPDualRegularizer(w.d, w.m, w.k)
    reg.load_state_dict(rec.extra["regularizer"])
    dual = reg.certificate_bounds(rec.net)
    off = ~np.eye(w.k, dtype=bool)
    if not np.allclose(dual[off], recorded[off], rtol=1e-6):
        raise AssertionError(f"{rec.name}: the bounds differ from the training record")
    return dual


def curves(ctx: Context, chosen: Networks) -> Curves:
    """Certified error (both sources, all test images) and PGD error (first ``n``, clipped box) vs eps.

    PGD skips the examples either pair bound certifies (:mod:`certsdp.experiments.curves`).
    """
    X, y = ctx.test_set
    cert = pd.DataFrame({(kind, source): certified_curve(rec.weights, X, y, chosen.cert_eps, bounds)
                         for kind, rec in chosen.nets.items()
                         for source, bounds in zip(SOURCES, (rec.table.upper, rec.dual), strict=True)})
    cert.index.name = "eps"
    n, eps = chosen.attacks.n, chosen.attacks.eps
    certified = {kind: certified_masks(rec.weights, X[:n], y[:n], eps, [rec.table.upper, rec.dual])
                 for kind, rec in chosen.nets.items()}
    pgd = pd.DataFrame({kind: attack_curve(rec.net, X, y, eps, "pgd", n=n, cache_dir=ctx.cache_dir,
                                           label=rec.name, certified=certified[kind])
                        for kind, rec in chosen.nets.items()})
    pgd.index.name = "eps"
    return Curves(cert, pgd)


def check(chosen: Networks, result: Curves) -> pd.DataFrame:
    """Certified error % of the exact SDP at eps = 0 (the clean error) and at the attacked radii."""
    radii = [0.0, *chosen.attacks.eps]
    return pd.DataFrame({rec.label: result.cert[(kind, "exact SDP")].loc[radii]
                         for kind, rec in chosen.nets.items()})


def _title(chosen: Networks, title: str) -> str:
    return title + ("" if chosen.paper_scale else "\nDEMO networks (tiny config), not the paper's results")


def figure_a(ctx: Context, chosen: Networks, result: Curves) -> Figure:
    """Figure 4(a): certified (solid) and PGD (dashed) error of both networks; saved to figures/."""
    fig, ax = plots.new_figure(6, 4.3)
    for kind, rec in chosen.nets.items():
        plots.plot_curve(ax, result.cert[(kind, "exact SDP")], "-", color=COLOR[kind], lw=2,
                         label=f"{rec.label}: SDP certified error (upper bound)")
        plots.plot_curve(ax, result.pgd[kind], "--o", color=COLOR[kind], ms=4,
                         label=f"{rec.label}: PGD error, clipped to [0, 1] (lower bound)")
    plots.eps_axes(ax, _title(chosen, "Fig. 4(a): weighted vs unweighted SDP training"), fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    plots.save(fig, ctx.figures, "fig4a_weighted_vs_unweighted")
    return fig


def figure_b(ctx: Context, chosen: Networks, result: Curves) -> Figure:
    """Figure 4(b): exact SDP (solid) against the training-time dual certificate (dotted); saved."""
    fig, ax = plots.new_figure(6, 4.3)
    for kind, rec in chosen.nets.items():
        plots.plot_curve(ax, result.cert[(kind, "exact SDP")], "-", color=COLOR[kind], lw=2,
                         label=f"{rec.label}: SDP solved exactly after training")
        plots.plot_curve(ax, result.cert[(kind, "dual from training")], ":", color=COLOR[kind], lw=2,
                         label=f"{rec.label}: dual certificate from training (eq. 16)")
    plots.eps_axes(ax, _title(chosen, "Fig. 4(b): training-time certificate vs exact SDP"),
                   ylabel="certified error, upper bound (%)", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    plots.save(fig, ctx.figures, "fig4b_dual_vs_exact_sdp", tight=True)
    return fig


def tables(chosen: Networks, result: Curves) -> dict[str, pd.DataFrame]:
    """The CSV tables by file name: Figure 4(a), 4(b) and every pair bound, each tagged with the networks."""
    nets, n = chosen.nets, chosen.attacks.n
    fig4a = pd.DataFrame({f"{rec.label} SDP certified %": result.cert[(kind, "exact SDP")]
                          for kind, rec in nets.items()})
    fig4a = fig4a.join(pd.DataFrame({f"{rec.label} PGD % (clipped, first {n})": result.pgd[kind]
                                     for kind, rec in nets.items()}), how="outer")
    fig4b = pd.DataFrame({f"{rec.label} {source} certified %": result.cert[(kind, source)]
                          for kind, rec in nets.items() for source in SOURCES})
    pairs = pd.DataFrame([{"network": rec.name, "i": i, "j": j, "exact SDP upper": rec.table.upper[i, j],
                           "exact SDP lower (primal)": rec.table.lower[i, j],
                           "dual from training": rec.dual[i, j]}
                          for rec in nets.values() for i in range(rec.weights.k)
                          for j in range(i + 1, rec.weights.k)])
    frames = {"fig4a_weighted_vs_unweighted.csv": fig4a, "fig4b_dual_vs_exact_sdp.csv": fig4b,
              "fig4b_pair_bounds.csv": pairs}
    for frame in frames.values():
        frame.insert(0, "networks", chosen.description)
    return frames


def write_tables(ctx: Context, chosen: Networks, result: Curves) -> list[str]:
    """Write :func:`tables` to ``results/``; their paths relative to the repository root."""
    return [ctx.write_csv(frame, name, index=name != "fig4b_pair_bounds.csv")
            for name, frame in tables(chosen, result).items()]


def summary(chosen: Networks, result: Curves) -> str:
    """Every plotted number as text, and the one point the paper's text states (Table 1)."""
    cert, pgd = result.cert, result.pgd
    frame = pd.concat({rec.label: pd.DataFrame({"SDP exact %": cert[(kind, SOURCES[0])],
                                                "SDP dual from training %": cert[(kind, SOURCES[1])],
                                                "PGD %": pgd[kind]})
                       for kind, rec in chosen.nets.items()}, axis=1)
    return (f"Figure 4, {chosen.description}:\n{frame.round(2).to_string(na_rep='-')}\n"
            "paper: see Figure 4 (plots only). Its text states, at eps = 0.1 for its SDP-NN (the weighted "
            f"one), an SDP certified error of {paper_value('SDP-NN', 'SDP certified'):g}% and a PGD error of "
            f"{paper_value('SDP-NN', 'PGD error'):g}% (Table 1)"
            + ("" if chosen.paper_scale else "; the demo networks are not comparable"))
