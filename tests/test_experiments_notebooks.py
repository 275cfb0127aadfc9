"""The committed notebooks are thin, clean drivers of certsdp.experiments (no execution here).

One parameters cell that papermill reads and no papermill-injected copy of it (which would silently
undo an edit of the parameters cell in JupyterLab); no machine's absolute paths and no object reprs
in the outputs; the published numbers stay under nbval's ``# NBVAL_CHECK_OUTPUT``; and the logic
lives in the package: at most about 45 code lines per notebook and 20 per cell.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ABSOLUTE_PATH = re.compile(r"(?<![\w.])(/work/|/home/|/root/|/tmp/|/Users/|/private/|[A-Z]:\\\\)")
#: checked cells per notebook: the certified errors (and 00's data checks)
CHECKED = {"00": 2, "01": 1, "02": 1, "03": 1, "04": 1, "05": 1, "06": 1}
#: beyond the paper: the experiment module a notebook drives and the function naming its checked columns
DRIVES = {"05": ("per_example", "certified_columns"), "06": ("verification", "checked_columns")}


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        for value in out.get("data", {}).values():
            parts.append("".join(value) if isinstance(value, list) else str(value))
        parts.extend(out.get("traceback", []))
    return "\n".join(parts)


def test_all_notebooks_are_there() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == list(CHECKED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_one_parameters_cell_and_no_injected_copy(path: Path) -> None:
    cells = code_cells(path)
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is cells[0], "exactly one parameters cell, the first code cell"
    assert re.search(r'^profile = "smoke"', source(tagged[0]), re.M), "CI runs the notebook as committed"
    for cell in cells:
        assert "injected-parameters" not in cell.get("metadata", {}).get("tags", [])
        assert not source(cell).startswith("# Parameters"), "a papermill-injected cell was committed"
    assert "context.load(profile)" in source(cells[1])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_outputs_hold_no_absolute_paths_or_object_reprs(path: Path) -> None:
    for cell in code_cells(path):
        text = output_text(cell)
        assert not ABSOLUTE_PATH.search(text), f"absolute path in the output of:\n{source(cell)}"
        assert "object at 0x" not in text and "Styler" not in text, f"an object repr in:\n{source(cell)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_published_numbers_stay_checked_by_nbval(path: Path) -> None:
    checked = [c for c in code_cells(path) if source(c).startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) == CHECKED[path.name[:2]]
    for cell in checked:
        assert "print(" in source(cell), "a checked cell prints plain text (stable across pandas versions)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_notebooks_are_thin_drivers(path: Path) -> None:
    sizes = [sum(1 for line in source(c).splitlines() if line.strip()) for c in code_cells(path)]
    assert sum(sizes) <= 45 and max(sizes) <= 20, sizes
    text = "\n".join(source(c) for c in code_cells(path))
    assert not re.search(r"^\s*(def|class|for|while) ", text, re.M), "logic belongs in certsdp.experiments"


@pytest.mark.parametrize("number", sorted(DRIVES))
def test_notebooks_beyond_the_paper_check_their_module_s_columns(number: str) -> None:
    path = next(p for p in NOTEBOOKS if p.name.startswith(number))
    module, columns = DRIVES[number]
    sources = [source(c) for c in code_cells(path)]
    assert module in sources[1]
    checked = [s for s in sources if s.startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) == 1 and f"{module}.{columns}(" in checked[0]
