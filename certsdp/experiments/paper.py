"""Numbers stated in the paper's text and Table 1 (eps = 0.1, MNIST test set), in percent.

Used only to print "paper" columns next to measured values; nothing in the package computes with
them. Values the paper shows only in figures are not listed (the notebooks say "see Figure N").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: network -> quantity -> percent, from Table 1 and section 6 of the paper
PAPER_PERCENT: dict[str, dict[str, float]] = {
    "SDP-NN": {"clean error": 4.2, "PGD error": 15.0, "SDP certified": 35.0, "LP certified": 99.0},
    "LP-NN": {"PGD error": 22.0, "SDP certified": 93.0, "LP certified": 26.0},
    "AT-NN": {"PGD error": 11.0},
}


def paper_value(network: str, quantity: str) -> float | None:
    """The paper's percentage for ``network`` and ``quantity``, or None where it states none."""
    return PAPER_PERCENT.get(network, {}).get(quantity)


@dataclass(frozen=True)
class Published:
    """A number stated in a later paper for the paper's own network (percent)."""

    network: str  # our row label, e.g. "SDP-NN (paper)"
    box: str  # "clipped" or "unclipped"
    column: str  # the column it stands beside
    percent: float
    images: int
    source: str


def published_beside(label: str, box: str, columns: dict[str, tuple[tuple[str, str], ...]],
                     others: Iterable[Published] = ()) -> dict[str, float]:
    """The published numbers beside the row ``(label, box)`` of a table, as ``"COLUMN % (published)"``:
    for the paper's own networks (labels ``"NAME (paper)"``) its :data:`PAPER_PERCENT` entries that
    ``columns[box]`` names as ``(column, quantity)``, then every one of ``others`` for that row."""
    out = {}
    if label.endswith("(paper)"):
        name = label.split(" ")[0]
        for column, quantity in columns.get(box, ()):
            value = paper_value(name, quantity)
            if value is not None:
                out[f"{column} % (published)"] = value
    for entry in others:
        if (entry.network, entry.box) == (label, box):
            out[f"{entry.column} % (published)"] = entry.percent
    return out
