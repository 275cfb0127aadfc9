"""Table 1 of the paper: certified (SDP, LP) and PGD error at eps = 0.1 of SDP-NN and LP-NN.

Rows: the paper's own SDP-NN and LP-NN (``$CERTSDP_NETS``) and those trained in this repository
(``results/networks.json``) where they exist. Certificates (SDP: eq. 12 with the solved pair table;
LP: Wong & Kolter's bound) use the paper's unclipped box ``|x~ - x|_inf <= eps`` on all 10,000 test
images. PGD (cross-entropy, 5 restarts x 100 steps) attacks the first ``n`` test images in both the
unclipped box and the box clipped to ``[0, 1]``; the paper's PGD numbers match the clipped one.
Test images that the SDP or the LP bound certifies, or that are misclassified, are counted without
being attacked (:mod:`certsdp.experiments.curves`). The paper's values stand beside each measured
column (:mod:`certsdp.experiments.paper`).

The table is written as ``results/table1.csv`` (the data), ``results/table1.md`` (Markdown) and
``results/table1.tex`` (a LaTeX ``tabular`` in the booktabs style), and printed as plain text; the
three text forms show the same numbers, rounded alike (:func:`formatted`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from certsdp.atomic import write_text
from certsdp.bounds import certify
from certsdp.experiments.context import EPS, PIXEL_BOX, Context
from certsdp.experiments.curves import attack_curve
from certsdp.experiments.manifest import sdp_table
from certsdp.experiments.paper import paper_value
from certsdp.network import Weights, load_network
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp import PairTable, acquire_pair_table

CSV = "table1.csv"
MARKDOWN = "table1.md"
LATEX = "table1.tex"
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
    certified = {EPS: sdp.certified | lp.certified}  # robust in the unclipped box: not attacked
    pgd = {clip: attack_curve(net, X, y, [EPS], "pgd", n=ctx.profile.table1.n, cache_dir=ctx.cache_dir,
                              label=row.label, clip=clip, certified=certified)[EPS]
           for clip in (None, PIXEL_BOX)}
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
    """Table 1 (:func:`assemble`), written to ``results/table1.csv``, ``.md`` and ``.tex``."""
    table = assemble([measure(ctx, row) for row in networks(ctx)])
    written = [ctx.write_csv(table, CSV)]
    for name, render in ((MARKDOWN, markdown), (LATEX, latex)):
        path = ctx.results / name
        write_text(path, render(table), "results table")
        written.append(ctx.rel(path))
    print(f"PGD on the first {ctx.profile.table1.n} test images; written to {', '.join(written)}")
    return table


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings: percentages to 2 decimals, the SDP duality gap in scientific notation,
    a missing value as ``-``; the index and the column order are those of ``table``."""
    out = pd.DataFrame(index=table.index, columns=table.columns, dtype=object)
    for col in table.columns:
        fmt = "{:.1e}" if col == "SDP max gap" else "{:.2f}"
        out[col] = ["-" if pd.isna(v) else fmt.format(v) for v in table[col]]
    return out


def text(table: pd.DataFrame) -> str:
    """The table as plain text (:func:`formatted`)."""
    return formatted(table).to_string()


def markdown(table: pd.DataFrame) -> str:
    """The table as a Markdown (GitHub) table (:func:`formatted`), numbers right-aligned."""
    cells = formatted(table)
    rows = [[table.index.name or "", *cells.columns], *([str(label), *row] for label, row in
                                                        zip(cells.index, cells.values, strict=True))]
    lines = ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines.insert(1, "|:--" + "|--:" * len(cells.columns) + "|")
    return "\n".join(lines) + "\n"


def latex(table: pd.DataFrame) -> str:
    """The table as a LaTeX ``tabular`` in the booktabs style (``\\usepackage{booktabs}``), special
    characters (``%``, ``&``, ``_``) escaped (:func:`formatted`)."""
    cells = formatted(table)
    header = [table.index.name or "", *cells.columns]
    rows = [[str(label), *row] for label, row in zip(cells.index, cells.values, strict=True)]
    lines = [f"\\begin{{tabular}}{{l{'r' * len(cells.columns)}}}", "\\toprule",
             " & ".join(map(latex_escape, header)) + r" \\", "\\midrule",
             *(" & ".join(map(latex_escape, row)) + r" \\" for row in rows),
             "\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def latex_escape(cell: str) -> str:
    """``cell`` with LaTeX's special characters escaped (one pass, so no escape is escaped again)."""
    return "".join(LATEX_SPECIAL.get(char, char) for char in cell)


#: LaTeX's special characters and their escaped forms
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
