"""Dataset arguments shared by the subcommands that evaluate a network on examples."""

from __future__ import annotations

import argparse

import numpy as np

from certsdp.errors import InputError
from certsdp.network.weights import Weights


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """``--inputs FILE.npz`` or the MNIST ``--split`` from ``--data-dir``, and ``--limit``."""
    p.add_argument("--inputs", help=".npz with X (n x d) and y (n); default: the MNIST split")
    p.add_argument("--data-dir", help="MNIST directory (default: $CERTSDP_DATA)")
    p.add_argument("--split", choices=("test", "train"), default="test")
    p.add_argument("--limit", type=int, help="use only the first N examples")


def load_dataset(args: argparse.Namespace, weights: Weights) -> tuple[np.ndarray, np.ndarray]:
    """The examples selected by :func:`add_dataset_arguments`, checked against ``weights``."""
    from certsdp.data.mnist import load_inputs, load_mnist

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    if args.inputs:
        X, y = load_inputs(args.inputs, weights.d, k=weights.k)
    else:
        if weights.d != 784:
            raise InputError(f"network has input dimension {weights.d}, MNIST needs 784: pass --inputs")
        X, y = load_mnist(args.split, data_dir=args.data_dir, limit=args.limit)
    if args.limit is not None:
        X, y = X[: args.limit], y[: args.limit]
    return X, y
