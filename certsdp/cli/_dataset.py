"""Dataset arguments shared by the subcommands that evaluate a network on examples."""

from __future__ import annotations

import argparse

import numpy as np

from certsdp.data import load_inputs, load_mnist
from certsdp.data.mnist import ENV_VAR
from certsdp.errors import InputError
from certsdp.network.weights import Weights

#: ``--data-dir`` of every subcommand (the convention is :func:`certsdp.data.mnist.resolve_data_dir`)
DATA_DIR_HELP = (f"MNIST directory (default: ${ENV_VAR}, else ../shared/data/mnist beside the repository, "
                 "else ~/.cache/certsdp/mnist)")


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """``--inputs FILE.npz`` or the MNIST ``--split`` from ``--data-dir``, and ``--limit``."""
    p.add_argument("--inputs", help=".npz with X (n x d) and y (n); default: the MNIST split")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--limit", type=int, help="use only the first N examples")


def load_dataset(args: argparse.Namespace, weights: Weights) -> tuple[np.ndarray, np.ndarray]:
    """The examples selected by :func:`add_dataset_arguments`, checked against ``weights``."""
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    if args.inputs:
        X, y = load_inputs(args.inputs, weights.d, k=weights.k)
        return X[: args.limit], y[: args.limit]
    if weights.d != 784:
        raise InputError(f"network has input dimension {weights.d}, MNIST needs 784: pass --inputs")
    return load_mnist(args.split, data_dir=args.data_dir, limit=args.limit)
