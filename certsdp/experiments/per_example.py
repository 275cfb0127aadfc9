"""Per-example certificates against the paper's global ones, and ``best``, their combination (notebook 05).

For the paper's own SDP-NN and LP-NN (``$CERTSDP_NETS``) and our SDP-NN, LP-NN and AT-NN
(``results/networks.json``), at eps = 0.1, in the unclipped box ``|x~ - x|_inf <= eps`` and in the
box clipped to ``[0, 1]``: the certified error of every bound of :mod:`certsdp.bounds` (``fro``,
eq. 17; ``spectral``, eq. 18; ``sdp``, eq. 12; the per-example ``lp``, ``crown``, ``alpha-crown``,
``lp-triangle`` and ``sdp-cert``) and of ``best`` (:mod:`certsdp.bounds.best`: per example the minimum
of all, cheapest first), beside the PGD error (a lower bound, :mod:`certsdp.experiments.curves`) and
the published numbers (:data:`PUBLISHED`).

Sizes (:data:`SIZES`): the cheap bounds and PGD run on the first ``n`` test images of the profile;
``lp-triangle`` and ``best`` (whose cascade ends with ``lp-triangle`` and ``sdp-cert``) on the first
``subset``; ``sdp-cert`` on every pair of the first ``sdp_cert`` images (seconds per pair: the smoke
profile leaves that column out, ``best`` runs it only on the pairs nothing cheaper certified).
``best (no lp-triangle, sdp-cert)`` runs the cascade without them on all ``n``.

Every bound array is cached in ``runs/per_example_cache/`` (:func:`cached_bounds`) in chunks of
:data:`CHUNK` images, each keyed by the weights' SHA-256, the SDP pair table, its images, eps, the box,
the method and its options and the source of the bound code, written atomically and checked whole when
read back: an interrupted run resumes from its last finished chunk, and a change to any of those
computes the entry again.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from certsdp.atomic import write_bytes
from certsdp.bounds import BOUNDS, certify
from certsdp.experiments import plots
from certsdp.experiments.context import EPS, PIXEL_BOX, Context
from certsdp.experiments.curves import attack_curve
from certsdp.experiments.manifest import sdp_table
from certsdp.experiments.paper import Published, published_beside
from certsdp.network import Weights, load_network
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp import PairTable, acquire_pair_table

FOLDER = "per_example"  # under results/
CSV = f"{FOLDER}/certified_error.csv"
CSV_SUBSET = f"{FOLDER}/certified_error_subset.csv"
CSV_DECIDED = f"{FOLDER}/best_decided_by.csv"
FIGURE = "fig5_per_example"
BOXES: dict[str, tuple[float, float] | None] = {"unclipped": None, "clipped": PIXEL_BOX}
#: the columns: label -> (registered method, its options); the methods that are not registered are left out
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "fro": ("fro", {}), "spectral": ("spectral", {}), "sdp": ("sdp", {}), "lp": ("lp", {}),
    "crown": ("crown", {}), "alpha-crown": ("alpha-crown", {}), "lp-triangle": ("lp-triangle", {}),
    "sdp-cert": ("sdp-cert", {}), "best": ("best", {}),
    "best (no lp-triangle, sdp-cert)": ("best", {"skip_expensive": True}),
}
#: the columns computed on the first ``subset`` images only (``sdp-cert``: on the first ``sdp_cert``)
SUBSET_COLUMNS = ("lp-triangle", "sdp-cert", "best")
#: images per cache entry: the unit of resumption of a long run, and of its progress lines
CHUNK = 100
#: the methods whose bounds depend on the SDP pair table
TABLE_METHODS = ("sdp", "best")
CODE_SOURCES = ("bounds/*.py", "sdp/**/*.py", "numerics/*.py", "network/weights.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sizes:
    """The first ``n`` test images for the cheap bounds and PGD, the first ``subset`` for ``lp-triangle``
    and ``best``, the first ``sdp_cert`` for ``sdp-cert`` on every pair (0: the column is left out)."""

    n: int
    subset: int
    sdp_cert: int


#: smoke: what CI re-runs (about 3 minutes on 2 cores); full: hours on a CPU (docs/per-example-bounds.md)
SIZES = {"smoke": Sizes(n=100, subset=5, sdp_cert=0), "full": Sizes(n=10000, subset=1000, sdp_cert=100)}


#: published certified errors at eps = 0.1 of the paper's SDP-NN (ICLR 2018), as the issue cites them.
#: The ICLR 2018 paper's own numbers (unclipped box, all test images) come from
#: :mod:`certsdp.experiments.paper`; the others are not that paper's, so they live here.
PUBLISHED = (
    Published("SDP-NN (paper)", "clipped", "sdp-cert", 20.0, 1000,
              "Raghunathan, Steinhardt & Liang, NeurIPS 2018 (SDP-cert): about 20%, first 1,000 test images"),
    Published("SDP-NN (paper)", "clipped", "lp", 97.0, 1000,
              "LP certified error of SDP-NN as reported in the SDP-cert paper (NeurIPS 2018)"),
    Published("SDP-NN (paper)", "clipped", "Dvijotham et al. 2019", 16.32, 10000,
              "Dvijotham et al., UAI 2019: 16.32% on the full test set"),
)


@dataclass
class Net:
    """One row group of the table: label, float64 weights, SDP pair table, float32 torch twin."""

    label: str
    weights: Weights
    table: PairTable
    net: TwoLayerNet = field(repr=False)


@dataclass
class Results:
    """The notebook's tables: certified error per method (each on its ``n``), every method on the first
    ``subset`` images, ``best``'s deciding methods, and the seconds of every bound."""

    table: pd.DataFrame
    subset: pd.DataFrame
    decided_by: pd.DataFrame
    seconds: pd.DataFrame


def sizes(ctx: Context) -> Sizes:
    """The image counts of ``ctx``'s profile."""
    return SIZES[ctx.profile.name]


def cache_dir(ctx: Context) -> Path:
    return ctx.root / "runs" / "per_example_cache"


def methods(size: Sizes | None = None) -> dict[str, tuple[str, dict[str, Any]]]:
    """The columns of :data:`METHODS` whose bound is registered (and, given ``size``, that run on at
    least one image)."""
    return {label: spec for label, spec in METHODS.items()
            if spec[0] in BOUNDS and (size is None or _images(label, size) > 0)}


def networks(ctx: Context) -> list[Net]:
    """The paper's SDP-NN and LP-NN (pair tables solved once, kept in the cache folder and re-certified
    on load), then our SDP-NN, LP-NN and AT-NN where trained (their committed tables)."""
    out = []
    if (ctx.nets_dir / "sdp_nn.npz").is_file():
        for name, file in (("SDP-NN", "sdp_nn.npz"), ("LP-NN", "lp_nn.npz")):
            weights = load_network(ctx.paper_net(file))
            path = cache_dir(ctx) / "tables" / f"{weights.content_hash()[:24]}.npz"
            out.append(Net(f"{name} (paper)", weights, acquire_pair_table(weights, path),
                           TwoLayerNet.from_weights(weights)))
    else:
        print(f"the paper's networks are not in {ctx.rel(ctx.nets_dir)}: set CERTSDP_NETS")
    for name, entry in ctx.trained(["SDP-NN", "LP-NN", "AT-NN"]).items():
        weights = entry.load_weights()
        table = sdp_table(entry, weights, solve=ctx.profile.solve_tables)
        out.append(Net(f"{name} (ours)", weights, table, TwoLayerNet.from_weights(weights)))
    return out


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 of the certificate code (:data:`CODE_SOURCES`: each file's path and bytes)."""
    h = hashlib.sha256()
    for path in sorted({p for pattern in CODE_SOURCES for p in PACKAGE_DIR.glob(pattern)}):
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def cache_key(net: Net, X: np.ndarray, y: np.ndarray, box: str, method: str,
              options: dict[str, Any]) -> dict[str, Any]:
    """Everything a bound array depends on (module docstring); the pair table only for the methods that
    read it (``sdp``, ``best``)."""
    table = _digest(net.table.upper) if method in TABLE_METHODS else None
    return {"weights": net.weights.content_hash(), "table": table, "inputs": _digest(X, y),
            "n": int(len(y)), "eps": EPS, "box": box, "method": method,
            "options": json.loads(json.dumps(options, sort_keys=True)), "code": code_version()}


def _read(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached entry at ``path`` if it is whole and its key is ``key``; None otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            entry = {name: data[name] for name in data.files}
        stored = json.loads(str(entry["key"]))
        info = json.loads(str(entry["info"]))
    except (OSError, ValueError, KeyError):
        return None
    if stored != key or entry["bounds"].shape != (key["n"],):
        return None
    return {"bounds": entry["bounds"], **info}


def _write(path: Path, key: dict[str, Any], bounds: np.ndarray, info: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, bounds=bounds, key=np.array(json.dumps(key, sort_keys=True)),
             info=np.array(json.dumps(info)))
    write_bytes(path, buffer.getvalue(), "per-example cache entry")


def _chunk(ctx: Context, net: Net, box: str, label: str, start: int, stop: int) -> dict[str, Any]:
    """The cache entry of the images ``start .. stop - 1`` (read, else computed and stored)."""
    method, options = METHODS[label]
    X, y = ctx.test_set
    X, y = X[start:stop], y[start:stop]
    key = cache_key(net, X, y, box, method, options)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_dir(ctx) / f"{method}-{digest}.npz"
    entry = _read(path, key)
    if entry is not None:
        return {**entry, "cached": True}
    result = certify(net.weights, X, y, EPS, method, clip=BOXES[box], table=net.table, progress=False,
                     **options)
    info = {"seconds": result.seconds, "clean_error": result.clean_error,
            "decided_by": result.extra.get("decided_by"), "cascade": result.extra.get("cascade")}
    _write(path, key, result.bounds, info)
    return {"bounds": result.bounds, **info, "cached": False}


def _join(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One entry from consecutive chunks: bounds and ``decided_by`` joined, seconds and the cascade's
    counts summed, the clean error averaged over the images."""
    sizes = np.array([len(c["bounds"]) for c in chunks])
    entry: dict[str, Any] = {
        "bounds": np.concatenate([c["bounds"] for c in chunks]),
        "seconds": float(sum(c["seconds"] for c in chunks)),
        "clean_error": float(np.dot(sizes, [c["clean_error"] for c in chunks]) / sizes.sum()),
        "decided_by": None, "cascade": None, "cached": all(c["cached"] for c in chunks)}
    if all(c.get("decided_by") is not None for c in chunks):
        entry["decided_by"] = [d for c in chunks for d in c["decided_by"]]
    if all(c.get("cascade") for c in chunks):
        entry["cascade"] = [{"method": steps[0]["method"],
                             **{k: sum(s[k] for s in steps) for k in ("pairs", "seconds", "certified")}}
                            for steps in zip(*(c["cascade"] for c in chunks), strict=True)]
    return entry


def cached_bounds(ctx: Context, net: Net, box: str, label: str, n: int) -> dict[str, Any]:
    """Per image ``max_{i != y}`` of the bound ``label`` (:data:`METHODS`) on the first ``n`` test images,
    with ``seconds``, ``clean_error`` and, for ``best``, ``decided_by`` and the ``cascade``'s counts: each
    chunk of :data:`CHUNK` images read from the cache, else computed by :func:`certsdp.bounds.certify` and
    stored. One line is printed per entry, and one per chunk computed when there are several."""
    chunks = []
    for start in range(0, n, CHUNK):
        chunks.append(_chunk(ctx, net, box, label, start, min(start + CHUNK, n)))
        if n > CHUNK and not chunks[-1]["cached"]:
            print(f"  {net.label}, {box}: {label}: images {start} .. {min(start + CHUNK, n) - 1} "
                  f"in {chunks[-1]['seconds']:.1f} s", flush=True)
    entry = _join(chunks)
    when = "cached" if entry["cached"] else "computed"
    error = 100 * float(np.mean(~(entry["bounds"] < 0)))
    print(f"{net.label}, {box}: {label} on {n} images: certified error {error:.2f}% "
          f"({when}, {entry['seconds']:.1f} s)", flush=True)
    return entry


def _images(label: str, size: Sizes) -> int:
    if label == "sdp-cert":
        return size.sdp_cert
    return size.subset if label in SUBSET_COLUMNS else size.n


def measure(ctx: Context, net: Net, box: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """One row of :func:`compute`'s table and the entries (:func:`cached_bounds`) behind it."""
    size = sizes(ctx)
    entries = {label: cached_bounds(ctx, net, box, label, _images(label, size)) for label in methods(size)}
    row: dict[str, Any] = {"network": net.label, "box": box, "n": size.n,
                           "clean error %": 100 * entries["fro"]["clean_error"]}
    for label, entry in entries.items():
        row[f"{label} %"] = 100 * float(np.mean(~(entry["bounds"] < 0)))
        if label in SUBSET_COLUMNS:
            row[f"n {label}"] = len(entry["bounds"])
    X, y = ctx.test_set
    row["PGD %"] = attack_curve(net.net, X, y, [EPS], "pgd", n=size.n, cache_dir=ctx.cache_dir,
                                label=net.label, clip=BOXES[box])[EPS]
    row.update(published(net.label, box))
    return row, entries


def published(label: str, box: str) -> dict[str, float]:
    """The published certified errors beside row ``(label, box)``: the ICLR 2018 paper's SDP and LP
    numbers (unclipped, all images) for its own networks, and :data:`PUBLISHED`."""
    return published_beside(label, box, {"unclipped": (("sdp", "SDP certified"), ("lp", "LP certified"))},
                            PUBLISHED)


def subset_row(net: Net, box: str, entries: dict[str, dict[str, Any]], subset: int) -> dict[str, Any]:
    """Every method's certified error on the first ``subset`` images (the same images as ``best``); a
    method run on fewer images (``sdp-cert``) is left out."""
    row: dict[str, Any] = {"network": net.label, "box": box, "n": subset}
    for label, entry in entries.items():
        if len(entry["bounds"]) >= subset:
            row[f"{label} %"] = 100 * float(np.mean(~(entry["bounds"][:subset] < 0)))
    return row


def decided_row(net: Net, box: str, entry: dict[str, Any]) -> dict[str, Any]:
    """How many images each method decided in ``best``'s cascade (``not certified``: none did)."""
    decided = pd.Series([d if d is not None else "not certified" for d in entry["decided_by"]])
    return {"network": net.label, "box": box, "n": len(decided), **decided.value_counts().to_dict()}


def compute(ctx: Context) -> Results:
    """Every table of notebook 05, written to ``results/per_example/``."""
    rows, subset_rows, decided_rows, seconds = [], [], [], []
    size = sizes(ctx)
    for net in networks(ctx):
        for box in BOXES:
            row, entries = measure(ctx, net, box)
            rows.append(row)
            subset_rows.append(subset_row(net, box, entries, size.subset))
            if "best" in entries:
                decided_rows.append(decided_row(net, box, entries["best"]))
            seconds.append({"network": net.label, "box": box,
                            **{label: entry["seconds"] for label, entry in entries.items()}})
    results = Results(*(_frame(r) for r in (rows, subset_rows, decided_rows, seconds)))
    results.decided_by = results.decided_by.fillna(0).astype(int)
    written = ((CSV, results.table), (CSV_SUBSET, results.subset), (CSV_DECIDED, results.decided_by))
    for name, frame in written:
        print(f"written to {ctx.write_csv(frame, name)}")
    return results


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows).set_index(["network", "box"]) if rows else pd.DataFrame()


def certified_columns(table: pd.DataFrame) -> list[str]:
    """The certified-error columns of ``table`` (checked against the committed notebook's output)."""
    return ["clean error %"] * ("clean error %" in table) + [f"{label} %" for label in methods()
                                                             if f"{label} %" in table]


def text(table: pd.DataFrame, columns: list[str] | None = None) -> str:
    """``table`` (or its ``columns``) as plain text, percentages to 2 decimals."""
    frame = table if columns is None else table[columns]
    return frame.to_string(float_format=lambda v: f"{v:.2f}", na_rep="-")


#: the bars of the figure: column label, colour
BARS = [("fro", "C3"), ("spectral", "C1"), ("sdp", "C0"), ("lp", "C2"), ("crown", "C4"),
        ("alpha-crown", "C5"), ("lp-triangle", "C6"), ("sdp-cert", "C9"),
        ("best (no lp-triangle, sdp-cert)", "0.35"), ("best", "k"), ("PGD", "0.75")]
MARKERS = "x^vsD"


def figure(ctx: Context, table: pd.DataFrame, box: str = "clipped") -> Figure:
    """Grouped bars per network at eps = 0.1 in ``box``: every bound, ``best``, PGD (hatched) and the
    published numbers (black markers on the bar of their method, or in the middle of the group);
    saved to ``figures/fig5_per_example.{png,pdf}``."""
    rows = table.xs(box, level="box") if len(table) else table
    bars = [(label, color) for label, color in BARS if f"{label} %" in rows]
    fig, ax = plots.new_figure(2.4 + 2.2 * max(len(rows), 1), 4.4)
    width = 0.85 / max(len(bars), 1)
    x = np.arange(len(rows))
    offset = {label: (j - (len(bars) - 1) / 2) * width for j, (label, _) in enumerate(bars)}
    for label, color in bars:
        n = f" (first {int(rows[f'n {label}'].iloc[0])})" if f"n {label}" in rows else ""
        name = "PGD attack (lower bound)" if label == "PGD" else label + n
        ax.bar(x + offset[label], rows[f"{label} %"], width, label=name, color=color,
               hatch="//" if label == "PGD" else None, alpha=0.85)
    published = [c for c in rows.columns if c.endswith(" % (published)")]
    for j, column in enumerate(published):
        where = x + offset.get(column.removesuffix(" % (published)"), 0.0)
        ax.scatter(where, rows[column], marker=MARKERS[j % len(MARKERS)], color="k", zorder=3, s=28,
                   label=column)
    ax.set_xticks(x, list(rows.index))
    ax.set_ylabel(f"error at eps = {EPS:g} (% of test images)")
    ax.set_ylim(0, 105)
    ax.set_title(f"Per-example certificates, their combination (best) and PGD, {box} box")
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda j: labels[j].endswith("(published)"))  # bars first
    ax.legend([handles[j] for j in order], [labels[j] for j in order], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    plots.save(fig, ctx.figures, FIGURE, tight=True)
    return fig
