"""Figure 2 of the paper: upper and lower bounds on the adversarial error of each network at eps = 0.1.

Upper bounds (certified error: the fraction of test images misclassified or *not* certified robust)
from the Frobenius bound (eq. 17), the spectral bound (eq. 18), the SDP certificate (eq. 12) and, for
reference, the LP bound of Wong & Kolter, on all 10,000 test images in the paper's unclipped box.
Lower bound: the PGD error on the first ``n`` test images, in the box clipped to ``[0, 1]``, the
same attacks as Figure 3(a)'s (:func:`certsdp.experiments.curves.network_pgd`).
Since the bounds are nested, ``SDP <= spectral <= Frobenius`` on every network.

The figure draws SDP, LP and PGD per network. The Frobenius and spectral bounds stay in the CSV but
are not drawn: at eps = 0.1 they certify no test image of any of the networks (100% certified
error), which the figure states in a note computed from the numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from certsdp.bounds import certify
from certsdp.experiments import plots
from certsdp.experiments.context import EPS, Context, Network
from certsdp.experiments.curves import network_pgd
from certsdp.experiments.paper import paper_value

CSV = "fig2_bounds_per_network.csv"
FIGURE = "fig2_bounds_per_network"
#: method -> column label, in the order of the table
METHODS = {"fro": "Frobenius", "spectral": "spectral", "sdp": "SDP", "lp": "LP"}
#: the certified errors, checked against the committed notebook's output
CERTIFIED = ["clean error %", "Frobenius certified %", "spectral certified %", "SDP certified %",
             "LP certified %"]
#: the certificates drawn as bars: column, legend (eq. numbers of the paper), colour
BARS = [("SDP certified %", "SDP certificate (eq. 12)", "C0"),
        ("LP certified %", "LP bound (Wong & Kolter)", "C2")]
#: the certificates in the CSV only, named in the figure's note
NOT_DRAWN = {"Frobenius certified %": "Frobenius (eq. 17)", "spectral certified %": "spectral (eq. 18)"}


def measure(ctx: Context, network: Network) -> dict[str, object]:
    """One row: every certified error at eps = 0.1, the clean error, the SDP gap and the PGD error."""
    X, y = ctx.test_set
    row: dict[str, object] = {"network": network.name}
    for method, label in METHODS.items():
        result = certify(network.weights, X, y, EPS, method, table=network.table, progress=False)
        row[f"{label} certified %"] = 100 * result.certified_error
    row["clean error %"] = 100 * result.clean_error
    row["SDP max gap"] = network.table.max_gap
    row["PGD error %"] = network_pgd(ctx, network)[EPS]
    return row


def compute(ctx: Context, networks: list[Network]) -> pd.DataFrame:
    """Figure 2's numbers, one row per network, written to ``results/fig2_bounds_per_network.csv``."""
    rows = [measure(ctx, network) for network in networks]
    bounds = pd.DataFrame(rows).set_index("network") if rows else pd.DataFrame()
    ctx.write_csv(bounds, CSV)
    return bounds


def figure(ctx: Context, bounds: pd.DataFrame) -> Figure:
    """Bars per network: SDP and LP certified error and the PGD lower bound, each labelled with its
    value, and a note on the bounds not drawn (:data:`NOT_DRAWN`); saved to ``figures/``."""
    bars = BARS + [("PGD error %", f"PGD attack (lower bound, first {ctx.profile.fig2_fig3a.n} images)", "k")]
    fig, ax = plots.new_figure(max(6.0, 1.4 + 1.1 * len(bounds)), 4.2)
    width = 0.26
    for n, (col, label, color) in enumerate(bars):
        if len(bounds):
            drawn = ax.bar(np.arange(len(bounds)) + (n - 1) * width, bounds[col], width, label=label,
                           color=color, hatch="//" if col.startswith("PGD") else None, alpha=0.85)
            ax.bar_label(drawn, fmt=lambda v: f"{v:.3g}", fontsize=6, padding=1)
    ax.set_xticks(np.arange(len(bounds)), list(bounds.index))
    ax.set_ylabel("error at eps = 0.1 (% of test images)")
    ax.set_ylim(0, 105)
    ax.set_title("Figure 2: certified error (upper bounds) and PGD error (lower bound)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)
    if len(bounds):
        ax.annotate(not_drawn_note(bounds), (0.5, -0.2), xycoords="axes fraction", ha="center", va="top",
                    fontsize=7)
    fig.tight_layout()
    plots.save(fig, ctx.figures, FIGURE, tight=True)
    return fig


def not_drawn_note(bounds: pd.DataFrame) -> str:
    """The figure's note on the Frobenius and spectral bounds, from their numbers in ``bounds``."""
    lo = min(bounds[col].min() for col in NOT_DRAWN)
    hi = max(bounds[col].max() for col in NOT_DRAWN)
    names = " and ".join(NOT_DRAWN.values())
    if lo == 100:
        return (f"Not drawn: the {names} bounds certify nothing at eps = 0.1\n(100% certified error on "
                f"every network; in results/{CSV}).")
    return f"Not drawn: the {names} bounds\n({lo:.3g}-{hi:.3g}% certified error; in results/{CSV})."


def with_paper(bounds: pd.DataFrame) -> pd.DataFrame:
    """The numbers of Figure 2 beside the paper's, where its text states them (Table 1, section 6)."""
    if not len(bounds):
        return pd.DataFrame()
    summary = bounds[["clean error %", "PGD error %", *CERTIFIED[1:]]].copy()
    for quantity in ("PGD error", "SDP certified", "LP certified"):
        summary[f"{quantity} % (paper)"] = [paper_value(name, quantity) or np.nan for name in summary.index]
    return summary
