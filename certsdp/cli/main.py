"""The ``certsdp`` command line.

Each subcommand lives in its own module under :mod:`certsdp.cli` (named in :data:`COMMANDS`) and
exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning an exit code. Only the module of the subcommand being run is
imported (all of them for ``certsdp --help``): this is the one place where certsdp imports lazily,
so that the numpy-only ``certsdp certify`` never loads torch, which ``attack``, ``train`` and
``evaluate`` import at their top. Every error is one line on stderr, never a usage block or a
traceback: a bad flag (argparse) and bad input (:class:`certsdp.errors.InputError`) exit with code 2,
a diverged training run (:class:`certsdp.errors.TrainingDiverged`) with code 3.

Two rules hold for every subcommand, so they are applied here once:

* ``--eps`` is parsed by :func:`eps_value` (:func:`certsdp.numerics.box.check_eps`: finite, ``>= 0``,
  ``-0`` read as ``0``), and a negative number after a flag (``--eps -inf``, ``--eps -1e-3``) is its
  value, not an unknown flag;
* a flag given an empty value (``--out ""``) is an error, not "no value".
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from certsdp import __version__
from certsdp.errors import InputError, TrainingDiverged
from certsdp.numerics.box import check_eps

#: subcommand -> the module that implements it, in the order of ``certsdp --help``
COMMANDS = {
    "certify": "certsdp.cli.certify",
    "attack": "certsdp.cli.attack",
    "train": "certsdp.cli.train",
    "evaluate": "certsdp.cli.evaluate",
    "data": "certsdp.cli.data",
    "nets": "certsdp.cli.nets",
    "verify": "certsdp.cli.verify",
}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``certsdp certify: error: ...``) and exit code 2.

    (argparse's own prints the whole usage block first.) The subparsers are of this class too:
    ``add_subparsers`` makes them with the parent's class.
    """

    def error(self, message: str) -> NoReturn:
        # argparse words a failed type= check as "argument --eps: <why>"; ours say "--eps <why>"
        if message.startswith("argument ") and ": must be " in message:
            message = message[len("argument "):].replace(": must be ", " must be ", 1)
        self.exit(2, f"{self.prog}: error: {message}\n")


def eps_value(text: str) -> float:
    """``--eps``: a finite number ``>= 0`` (:func:`certsdp.numerics.box.check_eps`)."""
    try:
        return check_eps(float(text))
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}") from None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``certsdp`` parser: with ``command`` (a key of :data:`COMMANDS`) only that subcommand's
    module is imported and registered; otherwise every subcommand's."""
    parser = OneLineParser(
        prog="certsdp",
        description="Certified defenses against adversarial examples (Raghunathan et al., ICLR 2018).",
    )
    parser.add_argument("--version", action="version", version=f"certsdp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in [command] if command in COMMANDS else COMMANDS:
        importlib.import_module(COMMANDS[name]).register(sub)
    for command in sub.choices.values():
        for action in command._actions:  # argparse has no public accessor for a parser's actions
            if "--eps" in action.option_strings:
                action.type = eps_value
    return parser


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """``["--eps", "-inf"]`` -> ``["--eps=-inf"]``: argparse takes ``-inf`` and ``-1e-3`` for flags."""
    out: list[str] = []
    for arg in argv:
        flag = out[-1] if out else ""
        takes_value = flag.startswith("--") and flag != "--" and "=" not in flag
        if takes_value and arg.startswith("-") and _is_number(arg):
            out[-1] = f"{flag}={arg}"
        else:
            out.append(arg)
    return out


def _is_number(text: str) -> bool:
    """Whether ``float(text)`` parses (``-inf``, ``-1e-3``, ``nan``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _empty_flag(args: argparse.Namespace) -> str | None:
    """The first flag given an empty value (``--out ""``), named as on the command line."""
    for name, value in vars(args).items():
        if value == "":
            return "--" + name.replace("_", "-")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``certsdp`` on ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = _join_negative_values(sys.argv[1:] if argv is None else argv)
    parser = build_parser(next((arg for arg in argv if not arg.startswith("-")), None))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a refused command line (2, one line already printed), --help, --version
        return int(exc.code or 0)
    empty = _empty_flag(args)
    if empty is not None:
        print(f"certsdp {args.command}: error: {empty} is empty: give a value", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"certsdp {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"certsdp {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:  # Ctrl-C: what a long job finished is on disk; no traceback
        print(f"certsdp {args.command}: interrupted; finished results are kept (the same command resumes "
              "where it can)", file=sys.stderr)
        return 130


def _one_line(exc: Exception) -> str:
    """The message of ``exc`` on one line (some wrap a library's multi-line message, e.g. torch's)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
