"""Figure 3 of the paper: the SDP certified error (upper bound) against attacks (lower bounds) as eps varies.

* 3(a), :func:`per_network`: for each trained network, the SDP certified error on all 10,000 test
  images and the PGD error on the first ``n``, in the box clipped to ``[0, 1]``.
* 3(b), :func:`error_vs_eps`: for one SDP-NN (the paper's own by default), the SDP certified error
  against FGSM, PGD and Carlini-Wagner errors. The paper states, for its SDP-NN at eps = 0.1, a PGD
  error of 15% and an SDP certified error of 35%.

Certified curves reuse the network's pair table for every eps (:func:`certified_curve`, eq. 12).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from certsdp.experiments import plots
from certsdp.experiments.context import CERT_EPS, EPS, Context, Network
from certsdp.experiments.curves import (
    ATTACK_NAMES,
    attack_curve,
    certified_curve,
    certified_masks,
    network_pgd,
)
from certsdp.experiments.paper import paper_value
from certsdp.network import load_network
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp import acquire_pair_table

CSV_A = "fig3a_sdp_vs_pgd_per_network.csv"
CSV_B = "fig3b_sdp_nn_error_vs_eps.csv"
FIGURE_A = "fig3a_sdp_vs_pgd_per_network"
FIGURE_B = "fig3b_sdp_nn_error_vs_eps"
SDP_B = "SDP certified error %"  # Figure 3(b)'s certified column
DEFAULT_B = "the paper's SDP-NN"  # Figure 3(b)'s network by default


def per_network(ctx: Context, networks: list[Network]) -> pd.DataFrame:
    """Figure 3(a)'s curves: ``NAME SDP certified %`` and ``NAME PGD error %`` columns, index eps.

    Written to ``results/fig3a_sdp_vs_pgd_per_network.csv``; PGD values only at the attacked radii
    (:func:`certsdp.experiments.curves.network_pgd`, shared with Figure 2).
    """
    X, y = ctx.test_set
    sdp = {f"{n.name} SDP certified %": certified_curve(n.weights, X, y, CERT_EPS, n.table.upper)
           for n in networks}
    pgd = {f"{n.name} PGD error %": network_pgd(ctx, n) for n in networks}
    curves = pd.concat(sdp | pgd, axis=1).sort_index() if networks else pd.DataFrame()
    curves.index.name = "eps"
    ctx.write_csv(curves, CSV_A)
    return curves


def per_network_figure(ctx: Context, curves: pd.DataFrame) -> Figure:
    """Figure 3(a): one panel per network, SDP upper bound (solid) and PGD lower bound (dashed), one
    legend for all; saved to figures/."""
    suffix = " SDP certified %"
    names = [col.removesuffix(suffix) for col in curves.columns if col.endswith(suffix)]
    fig, panels = plots.new_grid(max(len(names), 1), 3, 2.5, 2.3)
    for ax, name in zip(panels, names, strict=False):
        plots.plot_curve(ax, curves[f"{name} SDP certified %"], "-", color="C0", lw=2,
                         label="SDP certified error (upper bound, all test images)")
        plots.plot_curve(ax, curves[f"{name} PGD error %"], "--o", color="C3", ms=4,
                         label=f"PGD error (lower bound, first {ctx.profile.fig2_fig3a.n} images)")
        plots.eps_axes(ax, name, fontsize=10, mark=EPS)
        spec = ax.get_subplotspec()
        if not spec.is_first_col():
            ax.set_ylabel("")
        if not (spec.is_last_row() or ax.xaxis.get_tick_params()["labelbottom"]):
            ax.set_xlabel("")
        ax.xaxis.label.set_fontsize(8)
    fig.suptitle("Figure 3(a): SDP upper bound vs PGD lower bound, per network")
    handles, labels = panels[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    plots.save(fig, ctx.figures, FIGURE_A)
    return fig


def error_vs_eps(ctx: Context, network: str = "") -> pd.DataFrame:
    """Figure 3(b)'s numbers for ``network`` (a weights path relative to the repository root; empty:
    the paper's SDP-NN): FGSM, PGD, CW error % (first ``n`` images, clipped box) and SDP certified
    error % (all images), index eps. Written to ``results/fig3b_sdp_nn_error_vs_eps.csv``.

    The attacks skip the examples the SDP certificate proves robust (:mod:`certsdp.experiments.curves`).
    """
    X, y = ctx.test_set
    weights = load_network(ctx.root / network if network else ctx.paper_net("sdp_nn.npz"))
    net, attacks = TwoLayerNet.from_weights(weights), ctx.profile.fig3b
    label = network or DEFAULT_B
    table = acquire_pair_table(weights)
    certified = certified_masks(weights, X[:attacks.n], y[:attacks.n], attacks.eps, [table.upper])
    errors = pd.DataFrame({f"{ATTACK_NAMES[a]} error %": attack_curve(net, X, y, attacks.eps, a, n=attacks.n,
                                                                      cache_dir=ctx.cache_dir, label=label,
                                                                      certified=certified)
                           for a in ATTACK_NAMES})
    summary = errors.join(certified_curve(weights, X, y, CERT_EPS, table.upper, name=SDP_B), how="outer")
    ctx.write_csv(summary, CSV_B)
    return summary


def error_vs_eps_figure(ctx: Context, summary: pd.DataFrame, network: str = "") -> Figure:
    """Figure 3(b): the certified upper bound against the three attacks; saved to figures/."""
    fig, ax = plots.new_figure(5.5, 4)
    plots.plot_curve(ax, summary[SDP_B], "k-", lw=2, label="SDP certified error (upper bound)")
    for attack, style in zip(ATTACK_NAMES.values(), ["C0:o", "C1--s", "C2-.^"], strict=True):
        plots.plot_curve(ax, summary[f"{attack} error %"], style, label=f"{attack} error (lower bound)")
    title = f"Figure 3(b): {network or DEFAULT_B}: bounds on adversarial error"
    plots.eps_axes(ax, title, fontsize=10, mark=EPS)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    plots.save(fig, ctx.figures, FIGURE_B)
    return fig


def at_paper_eps(summary: pd.DataFrame) -> pd.DataFrame:
    """Figure 3(b) at eps = 0.1 beside the paper's Table 1 (its own SDP-NN; no FGSM or CW number)."""
    quantity = {"PGD error %": "PGD error", SDP_B: "SDP certified"}
    side = summary.loc[[EPS]].T.rename(columns={EPS: "measured at eps = 0.1 %"})
    side["paper's SDP-NN, Table 1 %"] = [paper_value("SDP-NN", quantity.get(q, "")) for q in side.index]
    return side
