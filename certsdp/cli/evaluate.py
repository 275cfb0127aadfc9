"""``certsdp evaluate``: metrics of a trained network (attacks and certificates) and the manifest."""

from __future__ import annotations

import argparse

from certsdp.cli._dataset import add_dataset_arguments, load_dataset
from certsdp.cli._output import check_output
from certsdp.errors import InputError
from certsdp.experiments.evaluate import evaluate_and_record
from certsdp.network.loading import load_network


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    p = sub.add_parser(
        "evaluate", help="clean, attack and certified errors of a network; updates the manifest",
        description="Write a metrics JSON for a network: clean error, FGSM/PGD/CW error and "
        "Frobenius/spectral/SDP/LP certified error at one eps, with the training time and machine "
        "from its checkpoint, and record it in results/networks.json under --name.")
    p.add_argument("--weights", required=True, help="network: .npz or a .pt checkpoint")
    p.add_argument("--name", help="manifest entry (e.g. NT-NN); omit to skip the manifest")
    p.add_argument("--eps", type=float, default=0.1, help="l_inf radius (>= 0; default 0.1)")
    p.add_argument("--attack-limit", type=int,
                   help="attack only the first N examples (attacks are slow on CPU)")
    p.add_argument("--clip", action="store_true", help="attacks: intersect the box with [0, 1]^d")
    p.add_argument("--seed", type=int, default=0)
    add_dataset_arguments(p)
    p.add_argument("--out", required=True, help="metrics JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the network, write ``--out`` and update the manifest; print the errors."""

    check_output(args.out)
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    if args.attack_limit is not None and args.attack_limit < 1:
        raise InputError(f"--attack-limit must be >= 1, got {args.attack_limit}")
    weights = load_network(args.weights)
    X, y = load_dataset(args, weights)
    metrics = evaluate_and_record(args.weights, X, y, args.out, name=args.name, eps=args.eps,
                                  attack_limit=args.attack_limit, clip=(0.0, 1.0) if args.clip else None,
                                  seed=args.seed, progress=not args.no_progress)
    keys = ("clean_error", "fgsm_error", "pgd_error", "cw_error", "sdp_certified_error", "lp_certified_error",
            "spectral_certified_error", "fro_certified_error")
    print(" ".join(f"{key}={100 * metrics[key]:.2f}%" for key in keys))
    return 0
