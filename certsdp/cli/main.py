"""The ``certsdp`` command line.

Each subcommand lives in its own module under :mod:`certsdp.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit code. Bad input (:class:`certsdp.errors.InputError`) becomes a
one-line message on stderr and exit code 2; a diverged training run
(:class:`certsdp.errors.TrainingDiverged`) one with exit code 3.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from certsdp.cli import attack, certify, data, evaluate, train
from certsdp.errors import InputError, TrainingDiverged

COMMANDS = (certify, attack, train, evaluate, data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="certsdp",
        description="Certified defenses against adversarial examples (Raghunathan et al., ICLR 2018).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"certsdp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"certsdp {args.command}: error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
