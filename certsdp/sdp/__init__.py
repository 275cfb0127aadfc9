"""The SDP of eq. 8-14: the matrix ``M``, the fast and reference solvers, dual certificates, pair tables.

:func:`acquire_pair_table` is the one place that decides where a network's pair table comes from
(solved, or loaded from a file and re-certified).
"""

from certsdp.sdp.certificate import SDPCertificate, certify_dual
from certsdp.sdp.fast import FastSDPOptions
from certsdp.sdp.pairs import PairTable, fast_pair_solver, reference_pair_solver, solve_pairs
from certsdp.sdp.table import acquire_pair_table, load_pair_table, save_pair_table

__all__ = [
    "FastSDPOptions",
    "PairTable",
    "SDPCertificate",
    "acquire_pair_table",
    "certify_dual",
    "fast_pair_solver",
    "load_pair_table",
    "reference_pair_solver",
    "save_pair_table",
    "solve_pairs",
]
