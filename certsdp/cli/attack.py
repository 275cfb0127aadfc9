"""``certsdp attack``: empirical error of a network under FGSM, PGD or a CW-style l_inf attack."""

from __future__ import annotations

import argparse
import sys

from certsdp.cli._dataset import add_dataset_arguments, load_dataset
from certsdp.cli._output import check_output, write_json
from certsdp.errors import InputError
from certsdp.numerics.box import check_eps


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attack",
        help="attack a network in the l_inf box (fgsm, pgd, cw) and report the adversarial error",
        description="Search |x~ - x|_inf <= eps for misclassified points (paper section 6) and report "
        "the fraction of examples fooled (clean mistakes included). The box is not clipped to [0, 1] "
        "unless --clip is given.",
    )
    p.add_argument("--weights", required=True, help="network: .npz (W, b, V, c) or a .pt checkpoint")
    p.add_argument("--eps", type=float, required=True, help="l_inf radius (>= 0)")
    p.add_argument("--attack", choices=("fgsm", "pgd", "cw"), default="pgd")
    p.add_argument("--steps", type=int, help="pgd/cw: gradient steps per restart (default 100)")
    p.add_argument("--restarts", type=int, help="pgd/cw: random restarts (default 5 for pgd, 1 for cw)")
    p.add_argument("--step-size", type=float, help="pgd/cw: step size (default 2.5 * eps / steps)")
    p.add_argument("--clip", action="store_true", help="intersect the box with [0, 1]^d")
    add_dataset_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=int, default=500, help="examples attacked together")
    p.add_argument("--out", required=True, help="write the JSON report here")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from certsdp.attacks.engine import attack_report, attack_settings
    from certsdp.network.torch_model import TwoLayerNet, load_network

    check_eps(args.eps)
    out = check_output(args.out)
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    options = {}
    if args.attack == "fgsm":
        given = [flag for flag, value in (("--steps", args.steps), ("--restarts", args.restarts),
                                          ("--step-size", args.step_size)) if value is not None]
        if given:
            raise InputError(f"fgsm is one step of size eps; it takes no {', '.join(given)}")
    else:
        options = {"steps": args.steps, "restarts": args.restarts, "step_size": args.step_size}
    settings = attack_settings(args.attack, args.eps, **options)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: CUDA is not available on this machine")

    weights = load_network(args.weights)
    X, y = load_dataset(args, weights)

    net = TwoLayerNet.from_weights(weights).to(args.device)
    clip = (0.0, 1.0) if args.clip else None
    kw = {} if args.attack == "fgsm" else settings
    result = attack_report(net, X, y, args.eps, args.attack, clip=clip, batch_size=args.batch_size,
                           seed=args.seed, progress=not args.no_progress, **kw)
    report = {
        "attack": result["attack"],
        "eps": result["eps"],
        "n": result["n"],
        "error": result["error"],
        "seconds": result["seconds"],
        "fooled": result["fooled"],
        "clip": result["clip"],
        "weights": str(args.weights),
        "steps": settings["steps"],
        "restarts": settings["restarts"],
        "step_size": settings["step_size"],
    }
    write_json(out, report)
    fooled = sum(result["fooled"])
    print(f"{args.attack} eps={result['eps']:g} n={result['n']} error={100 * result['error']:.2f}% "
          f"({fooled}/{result['n']} fooled, {result['seconds']:.1f} s) -> {out}", file=sys.stdout)
    return 0
