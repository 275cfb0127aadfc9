"""The sandwich of the adversarial error per network and box, closed by complete verification (notebook 06).

The *adversarial error* of a network at eps = 0.1 is the fraction of test points ``x`` (label ``y``)
that some ``x~`` of the box misclassifies. Nothing cheap computes it; it is sandwiched between

* a lower bound, ``verified attack %``: the points with a witness (``not_robust``: a float64 point of the
  box that the network misclassifies, found by PGD, the MILP or the branch and bound) plus the
  ``misclassified`` ones; its part found by the attacks alone is ``PGD %``;
* an upper bound, ``verified upper %``: every point not proved ``robust`` (witnesses and ``unknown``);
* and, for comparison, the certified error of each cheap certificate (``sdp``, eq. 12 with the
  network's pair table; ``lp``; ``crown``; ``alpha-crown``) on the same points, an upper bound too.

``certsdp verify`` (:mod:`certsdp.verify`) closes the gap point by point; ``unknown %`` is what it
left open within its time limit, and ``exact error %`` is the adversarial error itself, stated only
where nothing is unknown (the two bounds then meet).

Networks: the paper's SDP-NN and LP-NN (``$CERTSDP_NETS``) and our SDP-NN, LP-NN and AT-NN
(``results/networks.json``). Boxes: ``unclipped`` (``|x~ - x|_inf <= eps``, the paper's certificates)
and ``clipped`` (that box intersected with ``[0, 1]^d``, the convention of exact verification and of
the paper's attack numbers). Each (network, box) has one ``certsdp verify`` folder,
``<folder>/<name>_eps0.1_<box>`` (:func:`folder_name`), holding ``verdicts.csv``, ``witnesses.npz``
and ``summary.json`` (:mod:`certsdp.verify.store`).

Profiles (:data:`PLANS`): ``smoke`` (CI) verifies the first 20 test points of the paper's LP-NN and of
ours, clipped box, into ``runs/verification_smoke/`` (deleted first, so that a re-execution computes
the same verdicts), and adds every complete folder committed under ``results/verify/``; ``full``
verifies nothing itself (a folder of 10,000 points takes from minutes, LP-NN, to days, SDP-NN, on a
CPU) and shows every complete committed folder, with the ``certsdp verify`` command that makes
(or resumes) each one still missing (:func:`verify_command`). The table goes to
``results/verify/sandwich_smoke.csv`` or ``results/verify/sandwich.csv``, the figure to
``figures/fig6_sandwich.{png,pdf}``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from certsdp.atomic import write_json
from certsdp.bounds import BOUNDS, certify
from certsdp.errors import InputError
from certsdp.experiments import plots
from certsdp.experiments.context import EPS, PIXEL_BOX, Context
from certsdp.experiments.manifest import sdp_table
from certsdp.experiments.paper import Published, published_beside
from certsdp.experiments.per_example import cache_dir
from certsdp.network import Weights, load_network
from certsdp.sdp import PairTable, acquire_pair_table
from certsdp.verify import verify
from certsdp.verify.audit import audit_errors
from certsdp.verify.pipeline import VERDICTS
from certsdp.verify.store import HEADER, parse_row, read_witnesses

FOLDER = "verify"  # under results/
SMOKE_FOLDER = "runs/verification_smoke"  # under the repository root
CSV = {"smoke": f"{FOLDER}/sandwich_smoke.csv", "full": f"{FOLDER}/sandwich.csv"}
FIGURE = "fig6_sandwich"
BOXES: dict[str, tuple[float, float] | None] = {"unclipped": None, "clipped": PIXEL_BOX}
#: folder name -> (row label, where the weights are: a file of ``$CERTSDP_NETS`` or a manifest name)
NETWORKS: dict[str, tuple[str, str]] = {
    "paper-SDP-NN": ("SDP-NN (paper)", "sdp_nn.npz"), "paper-LP-NN": ("LP-NN (paper)", "lp_nn.npz"),
    "SDP-NN": ("SDP-NN (ours)", "SDP-NN"), "LP-NN": ("LP-NN (ours)", "LP-NN"),
    "AT-NN": ("AT-NN (ours)", "AT-NN"),
}
#: the cheap certificates whose certified error stands beside the sandwich
CERTIFICATES = ("sdp", "lp", "crown", "alpha-crown")
#: their certified errors on a folder's points, kept in the folder (:func:`certificate_errors`)
CERTIFICATES_FILE = "certificates.json"
#: the columns that describe what was decided (checked by nbval; no seconds, no published numbers)
CHECKED = ("n", "clean error %", "PGD %", "verified attack %", "exact error %", "verified upper %",
           "unknown %", "errors re-checked", *(f"{name} %" for name in CERTIFICATES))
FOLDER_NAME = re.compile(r"^(?P<name>.+)_eps(?P<eps>[0-9.e+-]+)_(?P<box>clipped|unclipped)$")


@dataclass(frozen=True)
class Plan:
    """What a profile verifies: the first ``n`` test points of ``networks`` (folder names) in ``boxes``,
    into ``folder`` (relative to the repository root); ``time_limit`` seconds per point, ``workers``
    (None: one per CPU), the certificates ``bounds`` tried before the exact stage; ``fresh``: delete the
    folders first; ``committed``: add the complete folders under ``results/verify/``."""

    name: str
    n: int
    networks: tuple[str, ...]
    boxes: tuple[str, ...]
    folder: str
    time_limit: float
    workers: int | None
    bounds: tuple[str, ...]
    fresh: bool
    committed: bool


PLANS = {
    "smoke": Plan("smoke", 20, ("paper-LP-NN", "LP-NN"), ("clipped",), SMOKE_FOLDER, time_limit=10.0,
                  workers=0, bounds=CERTIFICATES, fresh=True, committed=True),
    "full": Plan("full", 10000, (), (), f"results/{FOLDER}", time_limit=60.0, workers=None, bounds=(),
                 fresh=False, committed=True),
}

#: the exact MILP study of the paper's SDP-NN, as the issue cites it (clipped box, the whole test set)
MILP_STUDY = Published(
    "SDP-NN (paper)", "clipped", "unknown", 16.0, 10000,
    "Tjeng, Xiao & Tedrake, MIPVerify, ICLR 2019 (as the issue cites it): an exact MILP study of this very "
    "network with a commercial solver and 120 s per point still left 16% of the test set undecided")
PUBLISHED = (MILP_STUDY,)


@dataclass
class Net:
    """A network to verify: row label, folder name, float64 weights, certified SDP pair table."""

    label: str
    name: str
    weights: Weights
    table: PairTable


@dataclass
class Run:
    """A ``certsdp verify`` folder read back: its verdict rows (sorted by index) and its summary."""

    folder: Path
    verdicts: pd.DataFrame
    summary: dict[str, Any]

    @property
    def n(self) -> int:
        """The points of the run (``summary.json``'s ``n``)."""
        return int(self.summary.get("n", 0))

    @property
    def complete(self) -> bool:
        """Every point of the run has a verdict row (``unknown`` counts as one) and the summary says so."""
        return self.n > 0 and len(self.verdicts) == self.n and self.summary.get("remaining") == 0

    def status(self) -> str:
        what = "complete" if self.complete else "incomplete"
        return f"{what}: {len(self.verdicts)} of {self.n} points have a verdict"


@dataclass
class Results:
    """The sandwich table (index network, box, run) and the seconds behind each row (not checked)."""

    table: pd.DataFrame
    seconds: pd.DataFrame


def plan(ctx: Context) -> Plan:
    """The plan of ``ctx``'s profile."""
    return PLANS[ctx.profile.name]


def folder_name(name: str, box: str) -> str:
    """``<name>_eps0.1_<box>``, e.g. ``paper-LP-NN_eps0.1_clipped``."""
    return f"{name}_eps{EPS:g}_{box}"


def parse_folder_name(folder: str | Path) -> tuple[str, float, str] | None:
    """``(name, eps, box)`` of a folder called like :func:`folder_name`; None for any other name."""
    match = FOLDER_NAME.match(Path(folder).name)
    if match is None:
        return None
    try:
        return match["name"], float(match["eps"]), match["box"]
    except ValueError:
        return None


def load_net(ctx: Context, name: str) -> Net | None:
    """The network of folder name ``name`` (:data:`NETWORKS`) with its pair table, or None (a line says
    why) where it is absent. The paper's tables are kept in ``runs/per_example_cache/tables/`` (shared
    with notebook 05; re-certified on load), ours are ``results/NAME/sdp_table.npz``."""
    label, source = NETWORKS[name]
    if source.endswith(".npz"):
        if not (ctx.nets_dir / source).is_file():
            print(f"{label}: not in {ctx.rel(ctx.nets_dir)} (set CERTSDP_NETS)")
            return None
        weights = load_network(ctx.paper_net(source))
        path = cache_dir(ctx) / "tables" / f"{weights.content_hash()[:24]}.npz"
        return Net(label, name, weights, acquire_pair_table(weights, path))
    entry = ctx.trained([source]).get(source)
    if entry is None:
        return None
    weights = entry.load_weights()
    return Net(label, name, weights, sdp_table(entry, weights, solve=ctx.profile.solve_tables))


def run_verify(ctx: Context, net: Net, box: str, folder: Path, p: Plan) -> dict[str, Any]:
    """``certsdp verify`` of the first ``p.n`` test points of ``net`` in ``box`` into ``folder`` (resumed
    where it stopped; deleted first with ``p.fresh``); the summary."""
    if p.fresh and folder.exists():
        shutil.rmtree(folder)
    X, y = ctx.test_set
    workers = (os.cpu_count() or 1) if p.workers is None else p.workers
    bounds = tuple(name for name in p.bounds if name in BOUNDS)
    summary = verify(net.weights, X[: p.n], y[: p.n], EPS, folder, clip=BOXES[box], time_limit=p.time_limit,
                     workers=workers, bounds=bounds, table=net.table, seed=0)
    counts = ", ".join(f"{v} {summary['counts'][v]}" for v in VERDICTS)
    print(f"{net.label}, {box}: {summary['n']} points verified into {ctx.rel(folder)}: {counts} "
          f"({summary['seconds']:.1f} s)", flush=True)
    return summary


def _read_verdicts(path: Path) -> pd.DataFrame:
    """The rows of a ``verdicts.csv`` (a torn last line, of a run still writing, is left out)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    if text and not text.endswith("\n"):
        lines = lines[:-1]
    if not lines or lines[0] != HEADER:
        raise InputError(f"{path} is not a verdicts file")
    try:
        rows = [parse_row(line) for line in lines[1:]]
    except ValueError as exc:
        raise InputError(f"{path}: malformed row {str(exc)[:60]!r}") from None
    frame = pd.DataFrame(rows, columns=HEADER.split(","))
    return frame.drop_duplicates("index").sort_values("index", kind="stable").reset_index(drop=True)


def read_run(folder: str | Path) -> Run:
    """The verdicts (``verdicts.csv``) and summary (``summary.json``) of a ``certsdp verify`` folder;
    :class:`InputError` (one line) when either is missing or unreadable."""
    folder = Path(folder)
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        raise InputError(f"{folder}: no readable summary.json") from None
    try:
        verdicts = _read_verdicts(folder / "verdicts.csv")
    except OSError:
        raise InputError(f"{folder}: no readable verdicts.csv") from None
    return Run(folder, verdicts, summary)


def counts_row(run: Run) -> dict[str, Any]:
    """The sandwich of a complete run from its verdicts alone, in percent of its ``n`` points.

    ``clean error %``: misclassified; ``PGD %``: misclassified plus the witnesses of the run's attacks
    (``decided_by`` ``pgd-*``; verify attacks every point that its instant certificates did not prove
    robust, and no attack can fool a proved point, so this is PGD's error on all points);
    ``verified attack %``: misclassified plus every witness (``not_robust``),
    a lower bound on the adversarial error; ``verified upper %``: every point not proved robust, an
    upper bound; ``unknown %``: the points left undecided; ``exact error %``: the adversarial error,
    only where nothing is unknown (else NaN). :class:`InputError` for an incomplete run.
    """
    if not run.complete:
        raise InputError(f"{run.folder}: {run.status()}; finish it (verify resumes a folder)")
    v = run.verdicts
    n = len(v)
    count = {name: int((v["verdict"] == name).sum()) for name in VERDICTS}
    pgd = int(((v["verdict"] == "not_robust") & v["decided_by"].str.startswith("pgd")).sum())
    attack = count["not_robust"] + count["misclassified"]
    upper = n - count["robust"]
    return {"n": n, "clean error %": 100 * count["misclassified"] / n,
            "PGD %": 100 * (pgd + count["misclassified"]) / n, "verified attack %": 100 * attack / n,
            "exact error %": 100 * upper / n if count["unknown"] == 0 else math.nan,
            "verified upper %": 100 * upper / n, "unknown %": 100 * count["unknown"] / n}


def certificate_key(net: Net, run: Run, box: str, name: str) -> dict[str, Any]:
    """What certificate ``name``'s column of ``run`` depends on: the weights, the run's points
    (``inputs_sha256`` of its summary), eps, the box and, for ``sdp``, the pair table."""
    table = None
    if name == "sdp":
        table = hashlib.sha256(np.ascontiguousarray(net.table.upper).tobytes()).hexdigest()
    return {"weights_sha256": net.weights.content_hash(), "inputs_sha256": run.summary.get("inputs_sha256"),
            "n": len(run.verdicts), "eps": EPS, "box": box, "table": table}


def _stored_certificates(folder: Path) -> dict[str, Any]:
    try:
        stored = json.loads((folder / CERTIFICATES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def certificate_errors(ctx: Context, net: Net, box: str, run: Run) -> dict[str, dict[str, Any]]:
    """Per cheap certificate (:data:`CERTIFICATES`) on the points of ``run`` in ``box``: ``percent``
    (certified error: misclassified, or bound not < 0) and ``seconds``, computed with
    :func:`certsdp.bounds.certify` (the SDP bound with ``net``'s pair table; it bounds the unclipped box,
    which contains the clipped one). Kept in the run's folder, ``certificates.json``, with their
    :func:`certificate_key`, and computed again when the key differs (a committed 10,000-point folder is
    not certified again by every smoke run); the file is written only when a number changed, so a
    pair table solved again elsewhere (``sdp``'s key) leaves the committed file as it is, its stored
    key then stale and the entry recomputed (about a second) on each run."""
    X, y = ctx.test_set
    indices = run.verdicts["index"].to_numpy()
    stored = _stored_certificates(run.folder)
    out, changed = {}, False
    for name in (c for c in CERTIFICATES if c in BOUNDS):
        key = certificate_key(net, run, box, name)
        entry = stored.get(name)
        if not isinstance(entry, dict) or entry.get("key") != key:
            result = certify(net.weights, X[indices], y[indices], EPS, name, clip=BOXES[box], table=net.table,
                             progress=False)
            not_certified = int(np.sum(~result.certified))  # counted as counts_row counts
            fresh = {"key": key, "percent": 100 * not_certified / len(indices), "seconds": result.seconds}
            # a pair table solved again on another machine changes the key but rarely the number: the
            # committed file is rewritten only when a number changes (or an entry is new)
            changed = changed or not isinstance(entry, dict) or entry.get("percent") != fresh["percent"]
            entry = fresh
        out[name] = entry
    if changed:
        write_json(run.folder / CERTIFICATES_FILE, out, CERTIFICATES_FILE)
    return out


def check_run(ctx: Context, run: Run, net: Net, box: str) -> None:
    """:class:`InputError` unless ``run`` verified ``net``'s weights at eps = 0.1 in ``box`` on test
    points with their test labels (a folder of other weights, e.g. of a network since retrained, is stale)."""
    s = run.summary
    if s.get("weights_sha256") != net.weights.content_hash():
        raise InputError(f"{ctx.rel(run.folder)}: stale, its weights are not {net.label}'s")
    clip = BOXES[box]
    if s.get("eps") != EPS or s.get("clip") != (list(clip) if clip else None):
        raise InputError(f"{ctx.rel(run.folder)}: eps {s.get('eps')} clip {s.get('clip')}, not {EPS} {box}")
    _, y = ctx.test_set
    idx = run.verdicts["index"].to_numpy()
    if idx.size and (idx.max() >= len(y) or np.any(y[idx] != run.verdicts["label"].to_numpy())):
        raise InputError(f"{ctx.rel(run.folder)}: its points are not the MNIST test points")


def recheck_errors(ctx: Context, run: Run, net: Net, box: str) -> int:
    """The errors ``run`` claims, re-checked from its files alone (:func:`certsdp.verify.audit.audit_errors`:
    clean mistakes and witnesses proved in exact arithmetic, witnesses inside the box); their number, or
    :class:`InputError` naming the first that fails."""
    X, y = ctx.test_set
    index, Z = read_witnesses(run.folder, X.shape[1])
    verdicts = dict(zip(run.verdicts["index"].tolist(), run.verdicts["verdict"].tolist(), strict=True))
    audit = audit_errors(net.weights, X, y, verdicts, index, Z, EPS, BOXES[box])
    return audit.misclassified + audit.witnesses


def sandwich_row(ctx: Context, folder: str | Path, net: Net, box: str, source: str) -> dict[str, Any]:
    """One row of the table: ``net`` in ``box`` from the complete verify folder ``folder``
    (:func:`counts_row`), the cheap certificates' certified error on the same points
    (:func:`certificate_errors`), the published numbers (:func:`published`) and, under ``seconds``, the
    verify run's and the certificates' seconds. ``source`` names the run (``smoke`` or ``full``)."""
    run = read_run(folder)
    row = counts_row(run)
    check_run(ctx, run, net, box)
    row["errors re-checked"] = recheck_errors(ctx, run, net, box)
    certs = certificate_errors(ctx, net, box, run)
    row.update({f"{name} %": value["percent"] for name, value in certs.items()})
    row.update(published(net.label, box))
    seconds = {"verify": float(run.summary.get("point_seconds", math.nan)),
               **{name: value["seconds"] for name, value in certs.items()}}
    return {"network": net.label, "box": box, "run": source, **row, "seconds": seconds}


def published(label: str, box: str) -> dict[str, float]:
    """The published numbers beside row ``(label, box)``: the ICLR 2018 paper's PGD error (clipped, the
    box its attacks match, see :mod:`certsdp.experiments.table1`) and its SDP and LP certified errors
    (unclipped, all test images) for its own networks, and :data:`PUBLISHED` (the MILP study)."""
    return published_beside(label, box, {"clipped": (("PGD", "PGD error"),),
                                         "unclipped": (("sdp", "SDP certified"), ("lp", "LP certified"))},
                            PUBLISHED)


def verify_command(ctx: Context, name: str, box: str) -> str:
    """The command that makes (or resumes) the committed folder of ``name`` in ``box``: all 10,000 test
    points, every default certificate, 60 s per point, one Dask worker per CPU."""
    _, source = NETWORKS[name]
    weights = f"$CERTSDP_NETS/{source}" if source.endswith(".npz") else f"results/{source}/weights.npz"
    table = "" if source.endswith(".npz") else f" --sdp-table results/{source}/sdp_table.npz"
    clip = " --clip" if BOXES[box] is not None else ""
    return (f"certsdp verify --weights {weights} --eps {EPS:g}{clip}{table} --time-limit 60 "
            f"--out {ctx.rel(ctx.results / FOLDER / folder_name(name, box))}")


def missing_folders(ctx: Context) -> list[str]:
    """One line per (network, box) without a folder under ``results/verify/``: its command."""
    base = ctx.results / FOLDER
    return [f"not yet run: {verify_command(ctx, name, box)}" for name in NETWORKS for box in BOXES
            if not (base / folder_name(name, box)).is_dir()]


def committed_rows(ctx: Context, nets: dict[str, Net]) -> list[dict[str, Any]]:
    """The rows of every complete folder under ``results/verify/`` (``run`` ``full``); one line for each
    folder left out (incomplete, stale, network absent) and one if there is none. ``nets`` caches the
    networks loaded (by folder name)."""
    base = ctx.results / FOLDER
    folders = sorted(p for p in base.glob("*") if p.is_dir()) if base.is_dir() else []
    rows = []
    for folder in folders:
        parsed = parse_folder_name(folder)
        if parsed is None or parsed[0] not in NETWORKS or parsed[1] != EPS:
            print(f"{ctx.rel(folder)}: not a folder of this notebook (left out)")
            continue
        name, _, box = parsed
        try:
            run = read_run(folder)
            if not run.complete:
                print(f"{ctx.rel(folder)}: {run.status()} (left out; the full profile resumes it)")
                continue
            net = nets[name] if name in nets else nets.setdefault(name, load_net(ctx, name))
            if net is None:
                print(f"{ctx.rel(folder)}: its network is absent (left out)")
                continue
            rows.append(sandwich_row(ctx, folder, net, box, "full"))
        except InputError as exc:
            print(f"{exc} (left out)")
    if not rows:
        print(f"no complete verify folder under {ctx.rel(base)} yet: only this profile's rows are shown")
    return rows


def compute(ctx: Context) -> Results:
    """Verify every (network, box) of the profile's plan, then build the table (plus, for ``smoke``, the
    committed folders); written to ``results/verify/sandwich{_smoke}.csv``."""
    p = plan(ctx)
    nets: dict[str, Net] = {}
    rows = []
    for name in p.networks:
        net = nets.setdefault(name, load_net(ctx, name))
        if net is None:
            continue
        for box in p.boxes:
            folder = ctx.root / p.folder / folder_name(name, box)
            run_verify(ctx, net, box, folder, p)
            rows.append(sandwich_row(ctx, folder, net, box, p.name))
    if p.committed:
        rows += committed_rows(ctx, nets)
    if p.name == "full":
        for line in missing_folders(ctx):
            print(line)
    results = _results(rows)
    print(f"written to {ctx.write_csv(results.table, CSV[p.name])}")
    return results


def _results(rows: list[dict[str, Any]]) -> Results:
    index = ["network", "box", "run"]
    if not rows:
        return Results(pd.DataFrame(), pd.DataFrame())
    seconds = pd.DataFrame([{**{k: r[k] for k in index}, **r["seconds"]} for r in rows]).set_index(index)
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "seconds"} for r in rows]).set_index(index)
    return Results(table, seconds)


def checked_columns(table: pd.DataFrame) -> list[str]:
    """The deterministic columns of ``table`` (:data:`CHECKED`: counts and percentages, no seconds)."""
    return [column for column in CHECKED if column in table]


def text(table: pd.DataFrame, columns: list[str] | None = None) -> str:
    """``table`` (or its ``columns``) as plain text, percentages to 2 decimals, ``-`` for none."""
    frame = table if columns is None else table[columns]
    return frame.to_string(float_format=lambda v: f"{v:.2f}", na_rep="-")


#: the markers of the figure: column label, marker, colour
MARKS = [("sdp", "o", "C0"), ("lp", "s", "C2"), ("crown", "^", "C4"), ("alpha-crown", "v", "C5"),
         ("PGD", "x", "0.3")]


def _ticks(table: pd.DataFrame) -> list[tuple[tuple[str, str, str], int]]:
    return list(zip(table.index, table["n"], strict=True)) if len(table) else []


def figure(ctx: Context, table: pd.DataFrame) -> Figure:
    """Per (network, box, run) a vertical bar from ``verified attack %`` to ``verified upper %`` (black
    lines at both ends; one line where they meet, the exact error), markers side by side for each
    certificate and for PGD, black ``*`` for the published numbers; saved to
    ``figures/fig6_sandwich.{png,pdf}``."""
    fig, ax = plots.new_figure(4.5 + 1.2 * max(len(table), 1), 4.4)
    x = np.arange(len(table))
    if len(table):
        low, high = table["verified attack %"], table["verified upper %"]
        ax.bar(x, high - low, 0.6, bottom=low, color="0.85", edgecolor="0.4",
               label="verified attack % .. verified upper %")
        ax.hlines([*low, *high], [*(x - 0.3)] * 2, [*(x + 0.3)] * 2, color="k", lw=1.5)
        marks = [m for m in MARKS if f"{m[0]} %" in table]
        for j, (label, marker, color) in enumerate(marks):
            shift = (j - (len(marks) - 1) / 2) * 0.1
            ax.scatter(x + shift, table[f"{label} %"], marker=marker, color=color, zorder=3, s=30,
                       label=f"{label} (in the verify run)" if label == "PGD" else f"{label} certified")
        for column in (c for c in table.columns if c.endswith(" % (published)")):
            ax.scatter(x, table[column], marker="*", color="k", zorder=4, s=40)
        ax.scatter([], [], marker="*", color="k", label="published (see the table)")
    ax.set_xticks(x, [f"{net}\n{box}\n{run}, n={n}" for (net, box, run), n in _ticks(table)], fontsize=7)
    ax.set_xlim(-0.6, max(len(table), 1) - 0.4)
    ax.set_ylabel(f"error at eps = {EPS:g} (% of the points)")
    ax.set_ylim(0, 105)
    ax.set_title("The sandwich: witnesses below, proofs above, certificates beside", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    plots.save(fig, ctx.figures, FIGURE, tight=True)
    return fig
