"""The ``certsdp`` command line: one module per subcommand, :func:`main` the entry point."""

from certsdp.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
