"""Table 1 of the paper: certified (SDP, LP) and PGD error at eps = 0.1 of SDP-NN and LP-NN.

Rows: the paper's own SDP-NN and LP-NN (``$CERTSDP_NETS``) and those trained in this repository
(``results/networks.json``) where they exist. Certificates (SDP: eq. 12 with the solved pair table;
LP: Wong & Kolter's bound) use the paper's unclipped box ``|x~ - x|_inf <= eps`` on all 10,000 test
images. PGD (cross-entropy, 5 restarts x 100 steps) attacks the first ``n`` test images in both the
unclipped box and the box clipped to ``[0, 1]``; the paper's PGD numbers match the clipped one.
The paper's values stand beside each measured column (:mod:`certsdp.experiments.paper`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from certsdp.bounds import certify
from certsdp.experiments.context import EPS, PIXEL_BOX, Context
from certsdp.experiments.curves import attack_curve
from certsdp.experiments.manifest import sdp_table
from certsdp.experiments.paper import paper_value
from certsdp.network import Weights, load_network
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp import PairTable, acquire_pair_table

CSV = "table1.csv"
#: the paper's Table 1 quantities printed beside the measured columns
PAPER_QUANTITIES = ("PGD error", "SDP certified", "LP certified")
#: the certified errors, checked against the committed notebook's output
CERTIFIED = ["clean error %", "SDP certified %", "LP certified %"]


@dataclass
class Row:
    """One network of the table: its label (``"SDP-NN (paper)"``), weights and SDP pair table."""

    label: str
    weights: Weights
    table: PairTable


def networks(ctx: Context) -> list[Row]:
    """The paper's SDP-NN and LP-NN (solved), then ours (committed tables, re-certified) where trained."""
    rows = []
    if (ctx.nets_dir / "sdp_nn.npz").is_file():
        for name, file in (("SDP-NN", "sdp_nn.npz"), ("LP-NN", "lp_nn.npz")):
            weights = load_network(ctx.paper_net(file))
            rows.append(Row(f"{name} (paper)", weights, acquire_pair_table(weights)))
    else:
        print(f"the paper's networks are not in {ctx.rel(ctx.nets_dir)}: set CERTSDP_NETS to the folder "
              "holding sdp_nn.npz, lp_nn.npz")
    for name, entry in ctx.trained(["SDP-NN", "LP-NN"]).items():
        weights = entry.load_weights()
        rows.append(Row(f"{name} (ours)", weights, sdp_table(entry, weights)))
    return rows


def measure(ctx: Context, row: Row) -> dict[str, object]:
    """Clean, SDP and LP certified error (all test images) and PGD error (first ``n``) of one row."""
    X, y = ctx.test_set
    sdp = certify(row.weights, X, y, EPS, "sdp", table=row.table, progress=False)
    lp = certify(row.weights, X, y, EPS, "lp", progress=False)
    net = TwoLayerNet.from_weights(row.weights)
    pgd = {clip: attack_curve(net, X, y, [EPS], "pgd", n=ctx.profile.table1.n, cache_dir=ctx.cache_dir,
                              label=row.label, clip=clip)[EPS] for clip in (None, PIXEL_BOX)}
    return {"network": row.label, "clean error %": 100 * sdp.clean_error,
            "SDP certified %": 100 * sdp.certified_error, "LP certified %": 100 * lp.certified_error,
            "PGD % (unclipped)": pgd[None], "PGD % (clipped)": pgd[PIXEL_BOX],
            "SDP max gap": row.table.max_gap}


def assemble(rows: list[dict[str, object]]) -> pd.DataFrame:
    """The measured rows (:func:`measure`), indexed by network, with the paper's values beside them.

    The SDP solve time is not a column: it changes on every run, and the table is committed.
    """
    table = pd.DataFrame(rows).set_index("network")
    for quantity in PAPER_QUANTITIES:
        table[f"{quantity} % (paper Table 1)"] = [paper_value(label.split(" ")[0], quantity)
                                                 for label in table.index]
    return table


def compute(ctx: Context) -> pd.DataFrame:
    """Table 1 (:func:`assemble`), written to ``results/table1.csv``."""
    table = assemble([measure(ctx, row) for row in networks(ctx)])
    print(f"PGD on the first {ctx.profile.table1.n} test images; written to {ctx.write_csv(table, CSV)}")
    return table


def text(table: pd.DataFrame) -> str:
    """The table as plain text: percentages to 2 decimals, the SDP duality gap in scientific notation."""
    formats = {col: "{:.2f}".format for col in table.columns}
    formats["SDP max gap"] = "{:.1e}".format
    return table.to_string(formatters=formats, na_rep="-")
