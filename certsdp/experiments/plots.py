"""Matplotlib helpers of the figures: eps axes and saving a figure as PNG and PDF.

Saved figures are reproducible files: the PDF's creation date comes from ``SOURCE_DATE_EPOCH``, 0 (1970)
when it is unset (as the Makefile sets it), so re-running a notebook, under make or not, leaves its
PDFs byte-identical; the PNG holds no date.
"""

from __future__ import annotations

import datetime
import math
import os
from pathlib import Path

import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from certsdp.atomic import atomic_path
from certsdp.errors import InputError

EPS_LABEL = "l_inf radius eps (pixel scale [0, 1])"


def new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure with one axes (through pyplot, so that a notebook shows it at the end of the cell)."""
    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def new_grid(count: int, ncols: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    """A figure with ``count`` small panels of ``width x height`` inches, ``ncols`` per row, sharing
    their axes; the panels beyond ``count`` in the last row are hidden. Returns the ``count`` panels.

    The figure uses matplotlib's constrained layout: a legend placed with ``loc="outside ..."`` gets
    its own room, and ``tight_layout`` is not needed."""
    ncols = max(1, min(ncols, count))
    nrows = max(1, math.ceil(count / ncols))
    fig, grid = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), sharex=True, sharey=True,
                             squeeze=False, layout="constrained")
    panels = list(grid.ravel())
    for ax in panels[count:]:
        ax.set_visible(False)
    for ax in panels[max(count - ncols, 0):count]:  # the lowest panel of each column shows its eps ticks
        ax.xaxis.set_tick_params(labelbottom=True)
    return fig, panels[:count]


def eps_axes(ax: Axes, title: str, ylabel: str = "test error (%)", fontsize: float | None = None,
             mark: float | None = None) -> None:
    """Label an error-vs-eps plot: x = eps, y in percent from 0 to 100; a dotted line at ``mark``."""
    if mark is not None:
        ax.axvline(mark, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(EPS_LABEL)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    if fontsize is None:
        ax.set_title(title)
    else:
        ax.set_title(title, fontsize=fontsize)


def plot_curve(ax: Axes, curve: pd.Series, style: str, **kwargs: object) -> None:
    """Plot a curve indexed by eps (missing values skipped)."""
    curve = curve.dropna()
    ax.plot(curve.index, curve.values, style, **kwargs)


def pdf_metadata() -> dict[str, object]:
    """The PDF metadata: ``CreationDate`` from ``SOURCE_DATE_EPOCH``, 0 when unset (InputError if not an
    int): a figure written outside make is the same file as under make."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH") or "0"
    try:
        seconds = int(epoch)
    except ValueError:
        raise InputError(f"SOURCE_DATE_EPOCH must be an integer number of seconds, got {epoch!r}") from None
    return {"CreationDate": datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)}


def save(fig: Figure, folder: str | Path, stem: str, tight: bool = False) -> list[Path]:
    """Write ``folder/stem.png`` and ``folder/stem.pdf`` (150 dpi) atomically; returns their paths.

    ``tight``: crop to the drawn area (figures whose legend sits outside the axes).
    """
    paths = []
    for ext in ("png", "pdf"):
        path = Path(folder) / f"{stem}.{ext}"
        with atomic_path(path, "figure") as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight" if tight else None,
                        metadata=pdf_metadata() if ext == "pdf" else None)
        paths.append(path)
    return paths
