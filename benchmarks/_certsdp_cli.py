"""The ``certsdp`` command line run in a fresh process of this interpreter, for the benchmark scripts
that chain training, attacks and evaluation (``at_ablation.py``, ``loss_reduction.py``)."""

from __future__ import annotations

import subprocess
import sys


def certsdp(script: str, *args: str) -> None:
    """Run ``certsdp ARGS``; exit with a line naming ``script`` if it fails."""
    launcher = "import sys; from certsdp.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", launcher, *args], check=False)
    if done.returncode != 0:
        sys.exit(f"{script}: certsdp {' '.join(args)} failed (exit {done.returncode})")
