"""``certsdp train``: train one of the paper's networks (or a tiny test config) on MNIST."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from certsdp.errors import InputError
from certsdp.training import (
    CHECKPOINT_NAME,
    CONFIGS,
    METRICS_NAME,
    WEIGHTS_NAME,
    TrainConfig,
    get_config,
    train,
)
from certsdp.training.regularizers import regularizer_class


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one of the paper's networks (NT-NN, Fro-NN, Spe-NN, AT-NN, SDP-NN, LP-NN)",
        description="Train a registered configuration on MNIST with Adam, checkpointing every epoch to "
        "OUT/checkpoint.pt, logging OUT/metrics.json and writing OUT/weights.npz at the end. "
        "An interrupted run continues with --resume. --hidden, --epochs, --eps and the --at-* options "
        "change the named configuration (the changed configuration is recorded in the checkpoint).",
    )
    p.add_argument("--config", help="configuration name (see --list)")
    p.add_argument("--out", help="output folder (default results/<NAME>); created, and checked writable "
                   "before training starts")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt after its last finished epoch (its configuration "
                   "must be the requested one, apart from a larger --epochs); a checkpoint whose contents "
                   "do not match their recorded hash is refused")
    p.add_argument("--fork-from", metavar="CHECKPOINT",
                   help="start SDP-NN-unweighted from an SDP-NN checkpoint (or the other way round) taken "
                   "before the first pair-weight refresh (epoch <= 20), where the two runs are identical")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to train (default cpu)")
    p.add_argument("--no-cuda-graphs", action="store_true",
                   help="on CUDA, launch every kernel of a step from Python instead of replaying the step "
                   "captured as a CUDA graph (NT-NN, AT-NN; the others never use graphs)")
    p.add_argument("--data-dir", help="MNIST directory (default: $CERTSDP_DATA)")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the configuration's)")
    p.add_argument("--hidden", "--width", dest="hidden", type=int, metavar="UNITS",
                   help="hidden units of the network (default: the configuration's, 500 for the paper's)")
    p.add_argument("--eps", type=float,
                   help="training radius of the configuration's regularizer: sdp_eps (SDP: pair weights "
                   "and the per-epoch certified error), at_eps (AT: the PGD box) or lp_eps (LP: the "
                   "robust loss); refused for configurations without one (NT, Fro, Spe)")
    p.add_argument("--at-clip", action="store_true",
                   help="AT: the training PGD's box intersected with [0, 1] (an ablation; the paper's "
                   "is not)")
    p.add_argument("--at-keep", choices=("worst", "last"),
                   help="AT: train on the worst point PGD visited (default) or its last iterate "
                   "(Madry et al.)")
    p.add_argument("--at-weight", type=float,
                   help="AT: weight of the adversarial cross-entropy (default 0.5: CE + 0.5 x the PGD loss)")
    p.add_argument("--loss-reduction", choices=("mean", "sum"),
                   help="average the data loss over the batch or sum it (default: the configuration's: "
                   "sum for the SDP-NN configurations, as eq. 15 writes it, mean for the others; sum is "
                   "refused with the AT and LP losses)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--list", action="store_true", help="list the configurations and exit")
    p.set_defaults(func=run)


def _describe_rows(configs: list[TrainConfig]) -> list[str]:
    """One aligned line per configuration (``--list``)."""

    header = ("name", "loss", "regularizer", "network", "epochs", "batch", "training images")
    rows = [header] + [
        (cfg.name, cfg.objective, regularizer_class(cfg).describe(cfg), f"784-{cfg.hidden}-10",
         str(cfg.epochs), str(cfg.batch_size),
         "all" if cfg.train_limit is None else f"first {cfg.train_limit}")
        for cfg in configs
    ]
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _overrides(args: argparse.Namespace, name: str) -> dict[str, tuple[str, object]]:
    """``field -> (flag, value)`` for --epochs, --hidden, --eps, --loss-reduction and the
    adversarial-training options."""
    overrides: dict[str, tuple[str, object]] = {}
    if args.epochs is not None:
        overrides["epochs"] = ("--epochs", args.epochs)
    if args.hidden is not None:
        overrides["hidden"] = ("--hidden", args.hidden)
    if args.eps is not None:
        field = regularizer_class(CONFIGS[name]).eps_field
        if field is None:
            raise InputError(f"--eps: configuration {name} (reg {CONFIGS[name].reg!r}) trains without a "
                             "radius; --eps applies to the SDP, AT and LP configurations")
        overrides[field] = ("--eps", args.eps)
    flags = (("at_clip", "--at-clip", args.at_clip or None), ("at_keep", "--at-keep", args.at_keep),
             ("at_weight", "--at-weight", args.at_weight),
             ("loss_reduction", "--loss-reduction", args.loss_reduction))
    for field, flag, value in flags:
        if value is not None:
            overrides[field] = (flag, value)
    return overrides


def _config(args: argparse.Namespace) -> TrainConfig:
    """The named configuration with the command line's overrides, validated by :class:`TrainConfig`."""

    if not args.config:
        raise InputError(f"--config is required; choose one of {', '.join(CONFIGS)} (or pass --list)")
    get_config(args.config)  # an unknown name: the one message listing the valid ones
    overrides = _overrides(args, args.config)
    for field, (flag, value) in overrides.items():
        try:
            get_config(args.config, **{field: value})
        except InputError as exc:
            raise InputError(f"{flag}: {exc}") from None
    return get_config(args.config, **{field: value for field, (_, value) in overrides.items()})


def run(args: argparse.Namespace) -> int:

    if args.list:
        print("\n".join(_describe_rows(list(CONFIGS.values()))))
        return 0
    config = _config(args)
    out = Path(args.out) if args.out else Path("results") / config.name
    if args.resume and not (out / CHECKPOINT_NAME).exists():
        print(f"certsdp train: no checkpoint in {out} to resume; starting a new run", file=sys.stderr)
    ckpt = train(config, out, data_dir=args.data_dir, device=args.device, resume=args.resume,
                 progress=not args.no_progress, fork_from=args.fork_from, cuda_graphs=not args.no_cuda_graphs)
    metrics = json.loads((out / METRICS_NAME).read_text())
    last = metrics[-1] if metrics else {}
    err = last.get("test_error")
    summary = f"test error {100 * err:.2f}%" if err is not None else "no test error"
    if "sdp_cert_error" in last:
        summary += f", SDP certified error {100 * last['sdp_cert_error']:.2f}% at eps {config.sdp_eps:g}"
    print(f"{config.name}: {last.get('epoch', 0)} epochs, {summary} -> {out / WEIGHTS_NAME} ({ckpt.name})",
          file=sys.stdout)
    return 0
