"""Figure 2 of the paper: upper and lower bounds on the adversarial error of each network at eps = 0.1.

Upper bounds (certified error: the fraction of test images misclassified or *not* certified robust)
from the Frobenius bound (eq. 17), the spectral bound (eq. 18), the SDP certificate (eq. 12) and, for
reference, the LP bound of Wong & Kolter, on all 10,000 test images in the paper's unclipped box.
Lower bound: the PGD error on the first ``n`` test images, in the box clipped to ``[0, 1]``.
Since the bounds are nested, ``SDP <= spectral <= Frobenius`` on every network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from certsdp.bounds import certify
from certsdp.experiments import plots
from certsdp.experiments.context import EPS, Context, Network
from certsdp.experiments.curves import attack_curve
from certsdp.experiments.paper import paper_value

CSV = "fig2_bounds_per_network.csv"
FIGURE = "fig2_bounds_per_network"
#: method -> column label, in the order of the table
METHODS = {"fro": "Frobenius", "spectral": "spectral", "sdp": "SDP", "lp": "LP"}
#: the certified errors, checked against the committed notebook's output
CERTIFIED = ["clean error %", "Frobenius certified %", "spectral certified %", "SDP certified %",
             "LP certified %"]
#: the bars of the figure: column, legend (eq. numbers of the paper), colour
BARS = [("Frobenius certified %", "Frobenius bound (eq. 17)", "C3"),
        ("spectral certified %", "spectral bound (eq. 18)", "C1"),
        ("SDP certified %", "SDP certificate (eq. 12)", "C0")]


def measure(ctx: Context, network: Network) -> dict[str, object]:
    """One row: every certified error at eps = 0.1, the clean error, the SDP gap and the PGD error."""
    X, y = ctx.test_set
    row: dict[str, object] = {"network": network.name}
    for method, label in METHODS.items():
        result = certify(network.weights, X, y, EPS, method, table=network.table, progress=False)
        row[f"{label} certified %"] = 100 * result.certified_error
    row["clean error %"] = 100 * result.clean_error
    row["SDP max gap"] = network.table.max_gap
    attacks = ctx.profile.fig2_fig3a
    row["PGD error %"] = attack_curve(network.net, X, y, [EPS], "pgd", n=attacks.n, cache_dir=ctx.cache_dir,
                                      label=network.name)[EPS]
    return row


def compute(ctx: Context, networks: list[Network]) -> pd.DataFrame:
    """Figure 2's numbers, one row per network, written to ``results/fig2_bounds_per_network.csv``."""
    rows = [measure(ctx, network) for network in networks]
    bounds = pd.DataFrame(rows).set_index("network") if rows else pd.DataFrame()
    ctx.write_csv(bounds, CSV)
    return bounds


def figure(ctx: Context, bounds: pd.DataFrame) -> Figure:
    """Bars per network: the three certificates and the PGD lower bound; saved to ``figures/``."""
    bars = BARS + [("PGD error %", f"PGD attack (lower bound, {ctx.profile.fig2_fig3a.n} images)", "k")]
    fig, ax = plots.new_figure(1.6 + 1.3 * max(len(bounds), 1), 4)
    width = 0.2
    for n, (col, label, color) in enumerate(bars):
        if len(bounds):
            ax.bar(np.arange(len(bounds)) + (n - 1.5) * width, bounds[col], width, label=label, color=color,
                   hatch="//" if col.startswith("PGD") else None, alpha=0.85)
    ax.set_xticks(np.arange(len(bounds)), list(bounds.index))
    ax.set_ylabel("error at eps = 0.1 (% of test images)")
    ax.set_ylim(0, 105)
    ax.set_title("Figure 2: upper bounds (certificates) and PGD lower bound")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    plots.save(fig, ctx.figures, FIGURE, tight=True)
    return fig


def with_paper(bounds: pd.DataFrame) -> pd.DataFrame:
    """The numbers of Figure 2 beside the paper's, where its text states them (Table 1, section 6)."""
    if not len(bounds):
        return pd.DataFrame()
    summary = bounds[["clean error %", "PGD error %", *CERTIFIED[1:]]].copy()
    for quantity in ("PGD error", "SDP certified", "LP certified"):
        summary[f"{quantity} % (paper)"] = [paper_value(name, quantity) or np.nan for name in summary.index]
    return summary
