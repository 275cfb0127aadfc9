"""``certsdp nets``: download or check the paper's own SDP-NN and LP-NN.

``certsdp nets download [--dest DIR] [--base-url URL] [--force]`` fetches the TensorFlow
checkpoints pinned in :data:`certsdp.data.paper_networks.PAPER_NETWORKS`, checks their SHA-256,
converts them and writes ``sdp_nn.npz``, ``lp_nn.npz`` and ``SOURCE.md``, one line per file.
``certsdp nets check [--dest DIR]`` prints one line per file (``OK``, ``MISSING`` or ``CORRUPT``)
and fails with exit code 2 unless both networks are OK (the kept checkpoint files are optional).
"""

from __future__ import annotations

import argparse

from certsdp.data.paper_networks import (
    DEFAULT_BASE_URL,
    ENV_VAR,
    check_networks,
    download_networks,
    resolve_nets_dir,
)
from certsdp.errors import InputError

_DEST_HELP = (
    f"folder of the networks (default: ${ENV_VAR}, else ../shared/data/original_nets beside the "
    "repository if ../shared/data exists, else ~/.cache/certsdp/original_nets)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``nets`` subcommand and its ``download`` and ``check`` actions."""
    parser = subparsers.add_parser(
        "nets",
        help="download or check the paper's SDP-NN and LP-NN",
        description="Download the paper's own networks (TensorFlow checkpoints, SHA-256 pinned), "
        "convert them to certsdp's .npz format, or check the converted files.",
    )
    actions = parser.add_subparsers(dest="action", required=True)

    download = actions.add_parser("download", help="download, verify and convert the networks")
    download.add_argument("--dest", default=None, help=_DEST_HELP)
    download.add_argument(
        "--base-url",
        default=DEFAULT_BASE_URL,
        help=f"where to fetch models/... from, https:// or file:// (default: {DEFAULT_BASE_URL})",
    )
    download.add_argument("--force", action="store_true", help="download and convert even verified files")
    download.set_defaults(func=run_download)

    check = actions.add_parser("check", help="verify the converted networks against their pinned hashes")
    check.add_argument("--dest", default=None, help=_DEST_HELP)
    check.set_defaults(func=run_check)


def run_download(args: argparse.Namespace) -> int:
    """Download and convert the networks, then print where they are."""
    folder = download_networks(args.dest, base_url=args.base_url, force=args.force, log=print)
    print(f"the paper's networks are verified in {folder}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Print the state of each file; raise :class:`InputError` unless both networks are OK."""
    folder = resolve_nets_dir(args.dest)
    results = check_networks(folder)
    for r in results:
        print(f"{r.status:<8} {r.name:<48} {r.detail}")
    bad = [r.name for r in results if r.required and r.status != "OK"]
    if bad:
        raise InputError(
            f"{', '.join(bad)} in {folder} missing or not the paper's; run `certsdp nets download`, "
            f"or set {ENV_VAR} or --dest"
        )
    print(f"the paper's networks are verified in {folder}")
    return 0
