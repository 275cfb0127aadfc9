"""``certsdp data``: check or download the MNIST files.

``certsdp data check [--data-dir DIR]`` prints one line per MNIST file (``OK``, ``MISSING`` or
``CORRUPT``) and fails with exit code 2 unless all four are OK. ``certsdp data download
[--data-dir DIR] [--base-url URL] [--force]`` fetches the missing or corrupt ones.
"""

from __future__ import annotations

import argparse

from certsdp.cli._dataset import DATA_DIR_HELP
from certsdp.data import check_mnist, download_mnist, resolve_data_dir
from certsdp.data.mnist import DEFAULT_BASE_URL, ENV_VAR
from certsdp.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` subcommand and its ``check`` and ``download`` actions."""
    parser = subparsers.add_parser(
        "data",
        help="check or download the MNIST files",
        description="Check or download the four MNIST IDX .gz files (verified by MD5).",
    )
    actions = parser.add_subparsers(dest="action", required=True)

    check = actions.add_parser("check", help="verify the four MNIST files")
    check.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    check.set_defaults(func=run_check)

    download = actions.add_parser("download", help="download missing or corrupt MNIST files")
    download.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    download.add_argument(
        "--base-url", default=DEFAULT_BASE_URL, help=f"mirror to fetch from (default: {DEFAULT_BASE_URL})"
    )
    download.add_argument("--force", action="store_true", help="download even files that are already OK")
    download.set_defaults(func=run_download)


def run_check(args: argparse.Namespace) -> int:
    """Print the state of each MNIST file; raise :class:`InputError` unless all are OK."""
    directory = resolve_data_dir(args.data_dir)
    results = check_mnist(directory)
    for r in results:
        what = "labels" if "labels" in r.name else "images"
        info = f"{r.count} {what}" if r.status == "OK" else r.detail
        print(f"{r.status:<8} {r.name:<27} {info}")
    bad = [r.name for r in results if r.status != "OK"]
    if bad:
        raise InputError(
            f"{len(bad)} of {len(results)} MNIST files in {directory} are missing or corrupt "
            f"({', '.join(bad)}); set {ENV_VAR} or --data-dir, or run `certsdp data download`"
        )
    print(f"all {len(results)} MNIST files OK in {directory}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download the MNIST files, then print where they are."""
    directory = download_mnist(args.data_dir, base_url=args.base_url, force=args.force, log=print)
    print(f"MNIST files verified in {directory}")
    return 0
