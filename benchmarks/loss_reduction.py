"""Fro-NN and Spe-NN with the data loss averaged or summed over the batch (issue 13).

The paper's eq. 15 sums the data loss over the examples, and our SDP-NN configurations follow it
(``benchmarks/loss_balance.py`` shows the paper's own SDP-NN is in balance with a summed hinge loss).
Whether the paper also summed the loss of Fro-NN and Spe-NN (eq. 17, 18) cannot be read off a network
of theirs: none is available. This script trains both variants of both configurations (90 epochs, the
paper's schedule; with a batch of 50, the sum weighs the data term 50 times more against the same
regularizer weight) and evaluates them with ``certsdp evaluate`` at several radii: clean error,
FGSM/PGD/CW error on the first 1,000 test images in the box clipped to [0, 1] (Figure 2's PGD
column), and the Frobenius, spectral, SDP and LP certified errors on all 10,000 (unclipped box, as
the paper's certificates). It prints one markdown table. Usage (from the repository root; about 12
minutes of training per summed network and 3 minutes per evaluation on the 2-core CPU):

    CERTSDP_DATA=../shared/data/mnist python benchmarks/loss_reduction.py --root runs/loss-reduction

``--committed`` takes the averaged arms from ``results/Fro-NN`` and ``results/Spe-NN`` (the committed
networks, trained with the averaged loss) instead of training them again. Everything is resumable:
an arm whose ``weights.npz`` exists is not trained again (an interrupted one resumes from its
checkpoint), an evaluation whose report exists is read. One seed per arm.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _certsdp_cli import certsdp

CONFIGS = ("Fro-NN", "Spe-NN")
REDUCTIONS = ("mean", "sum")
#: (report key, column label)
COLUMNS = [("clean_error", "clean"), ("pgd_error", "PGD clipped (1,000)"),
           ("fro_certified_error", "Frobenius cert."), ("spectral_certified_error", "spectral cert."),
           ("sdp_certified_error", "SDP cert."), ("lp_certified_error", "LP cert.")]


def weights_of(root: Path, config: str, reduction: str, committed: bool) -> Path:
    """The arm's network, trained (or resumed) unless it exists."""
    if committed and reduction == "mean":
        return Path("results") / config / "weights.npz"
    folder = root / f"{config}-{reduction}"
    if not (folder / "weights.npz").exists():
        certsdp("loss_reduction", "train", "--config", config, "--loss-reduction", reduction, "--out",
                str(folder), "--resume", "--no-progress")
    return folder / "weights.npz"


def evaluation(root: Path, config: str, reduction: str, weights: Path, eps: float) -> dict:
    """The arm's ``certsdp evaluate`` report at ``eps`` (attacks clipped, first 1,000 images)."""
    path = root / f"{config}-{reduction}" / f"eval_eps{eps:g}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        certsdp("loss_reduction", "evaluate", "--weights", str(weights), "--eps", f"{eps:g}",
                "--attack-limit", "1000", "--clip", "--no-progress", "--out", str(path))
    return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="runs/loss-reduction", help="one folder per arm is made here")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    parser.add_argument("--committed", action="store_true",
                        help="averaged arms: the committed results/Fro-NN and results/Spe-NN")
    args = parser.parse_args()
    if any(not 0 < eps < 1 for eps in args.eps):
        print("loss_reduction: every --eps must lie in (0, 1)", file=sys.stderr)
        sys.exit(2)
    root = Path(args.root)
    print("Fro-NN / Spe-NN, data loss averaged or summed over the batch; errors in %")
    print("| network | loss | eps | " + " | ".join(label for _, label in COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for config in CONFIGS:
        for reduction in REDUCTIONS:
            weights = weights_of(root, config, reduction, args.committed)
            for eps in sorted(args.eps):
                report = evaluation(root, config, reduction, weights, eps)
                cells = [f"{100 * report[key]:.2f}" for key, _ in COLUMNS]
                print(f"| {config} | {reduction} | {eps:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
