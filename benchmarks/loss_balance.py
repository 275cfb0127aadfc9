"""Which weight of the SDP regularizer (eq. 15) is a trained network in balance with?

Prints a markdown table. Usage (from the repository root):

    python benchmarks/loss_balance.py [--weights NET.npz ...] [--limit 20000]

Scaling the output layer, ``(V, c) -> a (V, c)``, scales every logit margin and every pair SDP
value ``S_ij`` by ``a`` (``M`` is linear in ``v = V_i - V_j``). At a stationary point of
``mean_n hinge_n + lam * mean_i sum_{j != i} S_ij`` the derivative in ``a`` at ``a = 1`` vanishes:

    E[1{margin_n < 1} margin_n] = lam * mean_i sum_{j != i} S_ij

so the left side divided by ``sum_j S_ij`` estimates the regularizer weight ``lam`` against a
*batch-mean* hinge loss. For the paper's SDP-NN this gives about 1e-3 = 0.05 / 50: the paper's
``lambda = 0.05`` weighs the regularizer against the hinge loss *summed* over a batch of ~50
(eq. 15 sums over examples), which is why our SDP-NN configs use ``loss_reduction="sum"``. It is an
estimate: Adam stops near, not at, a stationary point, and the paper weighs the pairs.
The pair values are the exactly solved tables (``results/*sdp_table.npz``), solved if missing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from certsdp.data import load_mnist
from certsdp.network import Weights
from certsdp.sdp import acquire_pair_table, solve_pairs

ROOT = Path(__file__).resolve().parents[1]
NETS = Path(os.environ.get("CERTSDP_NETS", ROOT.parent / "shared" / "data" / "original_nets"))
DEFAULT = [(NETS / "sdp_nn.npz", ROOT / "results" / "sdp_nn.sdp_table.npz")]  # LP-NN has no hinge loss


def pair_values(weights_path: Path, table_path: Path | None) -> tuple[Weights, np.ndarray]:
    """The network and its exactly solved pair values (re-certified from a cached table, else solved)."""
    weights = Weights.load(weights_path)
    if table_path is None:
        return weights, solve_pairs(weights, progress=True).upper
    return weights, acquire_pair_table(weights, table_path, progress=True).upper


def balance(weights: Weights, S: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """``(E[1{m < 1} m], mean_i sum_{j != i} S_ij, implied lambda)`` on ``(X, y)``."""
    scores = weights.scores(X)
    n = np.arange(len(y))
    wrong = scores.copy()
    wrong[n, y] = -np.inf
    margin = scores[n, y] - wrong.max(axis=1)
    lhs = float(np.mean(np.where(margin < 1, margin, 0.0)))
    off = ~np.eye(S.shape[0], dtype=bool)
    per_class = float(np.where(off, S, 0.0).sum(axis=1).mean())
    return lhs, per_class, lhs / per_class


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", type=Path, default=None,
                        help="networks (.npz); their tables are solved (default: the paper's SDP-NN)")
    parser.add_argument("--limit", type=int, default=20000, help="first N training images")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    nets = [(path, None) for path in args.weights] if args.weights else DEFAULT
    X, y = load_mnist("train", data_dir=args.data_dir, limit=args.limit)
    print(f"first {len(y)} training images; hinge margin m = f_y - max_(j != y) f_j\n")
    print("| network | E[1{m<1} m] | mean_i sum_j S_ij | implied lambda (batch-mean hinge) | x 50 |")
    print("|---|---|---|---|---|")
    for weights_path, table_path in nets:
        if not weights_path.exists():
            print(f"| {weights_path} | missing | | | |")
            continue
        weights, S = pair_values(weights_path, table_path)
        lhs, per_class, lam = balance(weights, S, X, y)
        label = f"{weights_path.parent.name}/{weights_path.name}"
        print(f"| {label} | {lhs:.3f} | {per_class:.1f} | {lam:.2e} | {50 * lam:.3f} |")


if __name__ == "__main__":
    main()
