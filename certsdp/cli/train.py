"""``certsdp train``: train one of the paper's networks (or a tiny test config) on MNIST."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from certsdp.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one of the paper's networks (NT-NN, Fro-NN, Spe-NN, AT-NN, SDP-NN, LP-NN)",
        description="Train a registered configuration on MNIST with Adam, checkpointing every epoch to "
        "OUT/checkpoint.pt, logging OUT/metrics.json and writing OUT/weights.npz at the end. "
        "An interrupted run continues with --resume.",
    )
    p.add_argument("--config", help="configuration name (see --list)")
    p.add_argument("--out", help="output folder (default results/<NAME>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--fork-from", metavar="CHECKPOINT",
                   help="start SDP-NN-unweighted from an SDP-NN checkpoint (or the other way round) taken "
                   "before the first pair-weight refresh (epoch <= 20), where the two runs are identical")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--no-cuda-graphs", action="store_true",
                   help="on CUDA, launch every kernel of a step from Python instead of replaying the step "
                   "captured as a CUDA graph (NT-NN, AT-NN; the others never use graphs)")
    p.add_argument("--data-dir", help="MNIST directory (default: $CERTSDP_DATA)")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--list", action="store_true", help="list the configurations and exit")
    p.set_defaults(func=run)


def _describe(cfg) -> str:
    reg = cfg.reg
    if reg in ("fro", "spectral", "sdp"):
        reg = f"{reg} x {cfg.reg_lambda:g}" + (" weighted" if cfg.sdp_weighted else "")
    elif reg == "at":
        reg = f"at x {cfg.at_weight:g} (PGD eps {cfg.at_eps:g}, {cfg.at_steps} x {cfg.at_step:g})"
    elif reg == "lp":
        reg = f"Wong-Kolter robust loss eps {cfg.lp_eps:g}"
    limit = "" if cfg.train_limit is None else f", first {cfg.train_limit} images"
    return (f"{cfg.name:18s} {cfg.objective:5s} + {reg}; 784-{cfg.hidden}-10, {cfg.epochs} epochs, "
            f"batch {cfg.batch_size}{limit}")


def run(args: argparse.Namespace) -> int:
    from certsdp.training.config import CONFIGS, get_config

    if args.list:
        for cfg in CONFIGS.values():
            print(_describe(cfg))
        return 0
    if not args.config:
        raise InputError(f"--config is required; choose one of {', '.join(CONFIGS)} (or pass --list)")
    if args.epochs is not None and args.epochs < 1:
        raise InputError(f"--epochs must be >= 1, got {args.epochs}")
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    config = get_config(args.config, **overrides)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: CUDA is not available on this machine")
    out = Path(args.out) if args.out else Path("results") / config.name
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    if (out / "checkpoint.pt").exists() and not args.resume:
        raise InputError(f"{out / 'checkpoint.pt'} already exists: pass --resume to continue that run, "
                         "or choose another --out")

    from certsdp.training.loop import METRICS_NAME, WEIGHTS_NAME, train

    if args.resume and not (out / "checkpoint.pt").exists():
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
