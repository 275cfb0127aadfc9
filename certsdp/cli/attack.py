"""``certsdp attack``: empirical error of a network under FGSM, PGD or a CW-style l_inf attack.

The ``--attack`` choices are the registered attacks (:data:`certsdp.attacks.settings.SPECS`, the
torch-free face of :data:`certsdp.attacks.ATTACKS`), each with its one-line description in ``--help``.
The summary line is always printed; ``--out`` also writes the JSON report.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

from certsdp.attacks.registry import attack_class
from certsdp.attacks.report import report_attack
from certsdp.attacks.settings import DEFAULT_RESTARTS, DEFAULT_STEPS, SPECS, STEP_SIZE_FACTOR, AttackSpec
from certsdp.cli._dataset import add_dataset_arguments, load_dataset
from certsdp.cli._output import check_output, write_json
from certsdp.errors import InputError
from certsdp.network.loading import load_network
from certsdp.network.torch_model import TwoLayerNet
from certsdp.numerics.box import check_eps

DEFAULT_ATTACK = "pgd"


def _attack_help() -> str:
    return "; ".join(f"{name}: {spec.summary}" for name, spec in SPECS.items()) + " (default: %(default)s)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attack",
        help=f"attack a network in the l_inf box ({', '.join(SPECS)}) and report the adversarial error",
        description="Search |x~ - x|_inf <= eps for misclassified points (paper section 6) and report "
        "the fraction of examples fooled (clean mistakes included). The box is not clipped to [0, 1] "
        "unless --clip is given.",
    )
    p.add_argument("--weights", required=True, help="network: .npz (W, b, V, c) or a .pt checkpoint")
    p.add_argument("--eps", type=float, required=True, help="l_inf radius (>= 0)")
    p.add_argument("--attack", choices=tuple(SPECS), default=DEFAULT_ATTACK, help=_attack_help())
    p.add_argument("--steps", type=int, help=f"pgd/cw: gradient steps per restart (default {DEFAULT_STEPS})")
    p.add_argument("--restarts", type=int, help=f"pgd/cw: random restarts (default {DEFAULT_RESTARTS['pgd']} "
                   f"for pgd, {DEFAULT_RESTARTS['cw']} for cw)")
    p.add_argument("--step-size", type=float,
                   help=f"pgd/cw: step size (default {STEP_SIZE_FACTOR:g} * eps / steps)")
    p.add_argument("--clip", action="store_true", help="intersect the box with [0, 1]^d")
    add_dataset_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=int, default=500, help="examples attacked together")
    p.add_argument("--out", help="also write the JSON report here (the summary line is always printed)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _options(args: argparse.Namespace, spec: AttackSpec) -> dict[str, Any]:
    """The attack's keyword options from the flags; InputError for flags the attack does not take."""
    flags = {"--steps": args.steps, "--restarts": args.restarts, "--step-size": args.step_size}
    if spec.single_step:
        given = [flag for flag, value in flags.items() if value is not None]
        if given:
            raise InputError(f"{spec.name} is one step of size eps; it takes no {', '.join(given)}")
        return {}
    return {"steps": args.steps, "restarts": args.restarts, "step_size": args.step_size}


def run(args: argparse.Namespace) -> int:

    check_eps(args.eps)
    out = check_output(args.out) if args.out is not None else None
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    clip = (0.0, 1.0) if args.clip else None
    attack = attack_class(args.attack)(args.eps, clip, **_options(args, SPECS[args.attack]))
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: CUDA is not available on this machine")

    weights = load_network(args.weights)
    X, y = load_dataset(args, weights)
    net = TwoLayerNet.from_weights(weights).to(args.device)
    result = report_attack(attack, net, X, y, batch_size=args.batch_size, seed=args.seed,
                           progress=not args.no_progress)
    report = {**result, "weights": str(args.weights), **attack.settings}
    if out is not None:
        write_json(out, report)
    fooled = sum(result["fooled"])
    print(f"{args.attack} eps={result['eps']:g} n={result['n']} error={100 * result['error']:.2f}% "
          f"({fooled}/{result['n']} fooled, {result['seconds']:.1f} s)" + (f" -> {out}" if out else ""),
          file=sys.stdout)
    return 0
