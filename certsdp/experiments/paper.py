"""Numbers stated in the paper's text and Table 1 (eps = 0.1, MNIST test set), in percent.

Used only to print "paper" columns next to measured values; nothing in the package computes with
them. Values the paper shows only in figures are not listed (the notebooks say "see Figure N").
"""

from __future__ import annotations

#: network -> quantity -> percent, from Table 1 and section 6 of the paper
PAPER_PERCENT: dict[str, dict[str, float]] = {
    "SDP-NN": {"clean error": 4.2, "PGD error": 15.0, "SDP certified": 35.0, "LP certified": 99.0},
    "LP-NN": {"PGD error": 22.0, "SDP certified": 93.0, "LP certified": 26.0},
    "AT-NN": {"PGD error": 11.0},
}


def paper_value(network: str, quantity: str) -> float | None:
    """The paper's percentage for ``network`` and ``quantity``, or None where it states none."""
    return PAPER_PERCENT.get(network, {}).get(quantity)
