"""Notebook 05's experiment (certsdp.experiments.per_example) on a tiny network, and its cache.

* a bound array is computed once, then read back; an entry that is corrupt or whose stored key differs
  (other weights, box, options, table for the methods that read it) is computed again and rewritten;
* the whole experiment writes its three CSVs and the figure, ``best`` certifies at least what every
  method certifies on the same images, and a second run reads everything from the cache;
* the published numbers stand beside the right rows; notebook 05 is a thin driver.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights, smoke_context

from certsdp.bounds import best
from certsdp.experiments import context
from certsdp.experiments import per_example as pe
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp import solve_pairs

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_per_example_certificates.ipynb"


def _net(seed: int = 0, label: str = "tiny (ours)") -> pe.Net:
    weights = random_weights(seed, 6, 8, 3, scale=0.5)
    return pe.Net(label, weights, solve_pairs(weights, progress=False), TwoLayerNet.from_weights(weights))


@pytest.fixture()
def ctx(tmp_path: Path) -> context.Context:
    """A smoke context rooted in ``tmp_path`` whose test set is 12 random images of the tiny network."""
    return smoke_context(tmp_path, _net().weights)


def test_a_bound_array_is_cached_and_checked_on_load(ctx, capsys) -> None:
    net = _net()
    first = pe.cached_bounds(ctx, net, "clipped", "crown", 10)
    assert "computed" in capsys.readouterr().out and not first["cached"]
    files = list(pe.cache_dir(ctx).glob("crown-*.npz"))
    assert len(files) == 1
    again = pe.cached_bounds(ctx, net, "clipped", "crown", 10)
    assert again["cached"] and again["bounds"].tobytes() == first["bounds"].tobytes()
    files[0].write_bytes(b"not an npz")
    assert not pe.cached_bounds(ctx, net, "clipped", "crown", 10)["cached"]
    X, y = ctx.test_set
    key = pe.cache_key(net, X[:10], y[:10], "clipped", "crown", {})
    pe._write(files[0], {**key, "weights": "0" * 64}, first["bounds"], {"seconds": 0.0, "clean_error": 0.0})
    entry = pe.cached_bounds(ctx, net, "clipped", "crown", 10)
    assert not entry["cached"] and entry["bounds"].tobytes() == first["bounds"].tobytes()
    assert pe.cached_bounds(ctx, net, "clipped", "crown", 10)["cached"]  # rewritten with the right key


def test_a_long_run_is_cached_in_chunks_and_resumes_from_the_last_one(ctx, monkeypatch, capsys) -> None:
    net = _net()
    whole = pe.cached_bounds(ctx, net, "unclipped", "crown", 12)
    monkeypatch.setattr(pe, "CHUNK", 5)
    chunked = pe.cached_bounds(ctx, net, "unclipped", "crown", 12)
    assert not chunked["cached"] and "images 10 .. 11" in capsys.readouterr().out
    assert chunked["bounds"].tobytes() == whole["bounds"].tobytes()  # crown works example by example
    assert chunked["clean_error"] == pytest.approx(whole["clean_error"])
    files = sorted(pe.cache_dir(ctx).glob("crown-*.npz"), key=lambda f: f.stat().st_mtime)
    assert len(files) == 4  # the whole run and its three chunks
    files[-2].unlink()  # one chunk: only that one is computed again
    again = pe.cached_bounds(ctx, net, "unclipped", "crown", 12)
    out = capsys.readouterr().out
    assert out.count("images ") == 1 and again["bounds"].tobytes() == whole["bounds"].tobytes()
    assert pe.cached_bounds(ctx, net, "unclipped", "crown", 12)["cached"]


def test_best_s_chunks_join_into_one_cascade(ctx, monkeypatch) -> None:
    monkeypatch.setattr(pe, "CHUNK", 5)
    entry = pe.cached_bounds(ctx, _net(), "clipped", "best", 12)
    assert len(entry["decided_by"]) == 12 and len(entry["bounds"]) == 12
    certified = int(np.sum(entry["bounds"] < 0))
    assert entry["cascade"][-1]["certified"] == certified == sum(d is not None for d in entry["decided_by"])
    assert [s["method"] for s in entry["cascade"]] == [m for m in best.CASCADE if m in pe.BOUNDS]


def test_the_key_holds_what_a_bound_depends_on(ctx) -> None:
    net, other = _net(0), _net(1)
    X, y = ctx.test_set
    key = pe.cache_key(net, X, y, "clipped", "lp", {})
    assert key["table"] is None and pe.cache_key(net, X, y, "clipped", "sdp", {})["table"] is not None
    assert pe.cache_key(net, X, y, "clipped", "best", {})["table"] is not None
    for changed in (pe.cache_key(other, X, y, "clipped", "lp", {}),
                    pe.cache_key(net, X, y, "unclipped", "lp", {}),
                    pe.cache_key(net, X[:5], y[:5], "clipped", "lp", {}),
                    pe.cache_key(net, X, y, "clipped", "best", {"skip_expensive": True})):
        assert changed != key
    assert len(key["code"]) == 64 and key["eps"] == pe.EPS


def test_the_experiment_end_to_end(ctx, monkeypatch, capsys) -> None:
    monkeypatch.setitem(pe.SIZES, "smoke", pe.Sizes(n=12, subset=4, sdp_cert=3))
    monkeypatch.setattr(pe, "networks", lambda _ctx: [_net()])
    results = pe.compute(ctx)
    for name in (pe.CSV, pe.CSV_SUBSET, pe.CSV_DECIDED):
        assert (ctx.results / name).is_file()
    table = results.table
    assert list(table.index) == [("tiny (ours)", "unclipped"), ("tiny (ours)", "clipped")]
    assert (table["n"] == 12).all() and (table["n best"] == 4).all() and (table["n lp-triangle"] == 4).all()
    assert (table["n sdp-cert"] == 3).all() and "sdp-cert %" not in results.subset  # fewer than subset
    assert table["clean error %"].tolist() == pytest.approx([100 * 2 / 12] * 2)
    subset = results.subset
    methods = [f"{label} %" for label in pe.methods() if label != "sdp-cert"]
    for column in methods:  # best certifies at least what each method does, on the same 4 images
        assert (subset["best %"] <= subset[column]).all(), column
    assert (results.decided_by.drop(columns="n").sum(axis=1) == 4).all()
    pe.figure(ctx, table)
    assert (ctx.figures / f"{pe.FIGURE}.png").is_file() and (ctx.figures / f"{pe.FIGURE}.pdf").is_file()
    capsys.readouterr()
    again = pe.compute(ctx)
    out = capsys.readouterr().out
    assert "(computed" not in out and "(cached" in out
    assert again.table.equals(table)


def test_published_numbers_stand_beside_the_paper_networks() -> None:
    unclipped = pe.published("SDP-NN (paper)", "unclipped")
    assert unclipped == {"sdp % (published)": 35.0, "lp % (published)": 99.0}
    clipped = pe.published("SDP-NN (paper)", "clipped")
    assert clipped == {"sdp-cert % (published)": 20.0, "lp % (published)": 97.0,
                       "Dvijotham et al. 2019 % (published)": 16.32}
    assert pe.published("LP-NN (paper)", "unclipped") == {"sdp % (published)": 93.0, "lp % (published)": 26.0}
    assert pe.published("SDP-NN (ours)", "clipped") == {}
