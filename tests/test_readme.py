"""The README's Python blocks run as pasted, from a fresh clone's root (issue: a researcher's first hour).

Each ```python block is executed in a subprocess whose working directory is a stand-in for the
repository root: a temporary folder ``<tmp>/repo`` with ``<tmp>/shared`` linked to the real shared data,
so the README's relative paths (``../shared/data/...``) resolve exactly as they do beside a clone, and
nothing is written into the checkout. ``CERTSDP_DATA`` is removed from the environment, so the
default data folder the README promises is what the blocks use.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index: int, tmp_path: Path, shared_dir: Path, mnist_dir: Path,
                                  original_nets: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "shared").symlink_to(shared_dir.parent)
    env = {key: val for key, val in os.environ.items() if key not in ("CERTSDP_DATA", "CERTSDP_NETS")}
    env["OMP_NUM_THREADS"] = "1"
    if mnist_dir.resolve() != (shared_dir / "mnist").resolve():
        env["CERTSDP_DATA"] = str(mnist_dir)  # MNIST elsewhere: the README's setup says to set it
    proc = subprocess.run([sys.executable, "-c", BLOCKS[index]], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip(), "the block printed nothing"
