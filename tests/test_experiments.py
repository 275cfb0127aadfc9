"""certsdp.experiments on tiny synthetic networks: the context, the curves, the figures' tables and files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import random_weights

from certsdp.bounds import certify
from certsdp.errors import InputError
from certsdp.experiments import context, curves, fig2, fig3, fig4, plots, table1
from certsdp.experiments import evaluate as evaluate_module
from certsdp.experiments.manifest import MANIFEST, load_manifest, update_manifest
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp.pairs import solve_pairs

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_context(tmp_path: Path, n: int = 40, d: int = 10, seed: int = 0) -> context.Context:
    """A smoke context rooted in ``tmp_path`` whose 'test set' is ``n`` random points in [0, 1]^d."""
    ctx = context.Context(profile=context.get_profile("smoke"), root=tmp_path, nets_dir=tmp_path / "nets")
    rng = np.random.default_rng(seed)
    ctx.__dict__["test_set"] = (rng.uniform(0, 1, size=(n, d)), rng.integers(0, 3, size=n))
    return ctx


def tiny_network(name: str, seed: int) -> context.Network:
    weights = random_weights(seed, 10, 8, 3, scale=0.3)
    table = solve_pairs(weights, progress=False)
    return context.Network(name, weights, table, TwoLayerNet.from_weights(weights))


# -- context ---------------------------------------------------------------------------------------

def test_profiles_are_frozen_and_unknown_names_refused() -> None:
    smoke, full = context.get_profile("smoke"), context.get_profile("full")
    assert (smoke.table1.n, smoke.fig2_fig3a.n, smoke.fig3b.n, smoke.fig4.n) == (200, 100, 200, 200)
    assert full.fig3b.n == full.table1.n == 10000 and full.solve_tables and not smoke.solve_tables
    assert context.CERT_EPS[8] == 0.1 and len(context.CERT_EPS) == 17 and len(context.DEMO_CERT_EPS) == 21
    with pytest.raises(dataclasses.FrozenInstanceError):
        smoke.name = "full"  # type: ignore[misc]
    with pytest.raises(InputError, match="profile must be one of"):
        context.load("fast")


def test_root_is_found_from_the_notebooks_folder(tmp_path: Path) -> None:
    assert context.find_root(ROOT / "notebooks") == ROOT
    assert context.find_root(tmp_path) == tmp_path.resolve()


def test_printed_paths_are_relative_to_the_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CERTSDP_NETS", str(tmp_path / "shared" / "nets"))
    monkeypatch.setenv("CERTSDP_DATA", str(tmp_path / "shared" / "mnist"))
    (tmp_path / "repo").mkdir()
    ctx = context.load("smoke", root=tmp_path / "repo")
    assert str(tmp_path) not in str(ctx) and "../shared/nets" in str(ctx)
    assert ctx.rel(ctx.results / "table1.csv") == "results/table1.csv"
    assert ctx.cache_dir == ctx.root / "runs" / "attack_cache"
    with pytest.raises(InputError, match="CERTSDP_NETS"):
        ctx.paper_net("sdp_nn.npz")


def test_manifest_is_defined_once_and_round_trips(tmp_path: Path) -> None:
    assert not hasattr(evaluate_module, "MANIFEST")  # one definition: certsdp.experiments.manifest
    random_weights(0, 6, 4, 3).save(tmp_path / "w.npz", dtype=np.float64)
    update_manifest(tmp_path, "NT-NN", None, "w.npz", "m.json")
    assert (tmp_path / MANIFEST).is_file()
    assert load_manifest(tmp_path)["NT-NN"].weights == tmp_path / "w.npz"


# -- curves ----------------------------------------------------------------------------------------

def test_certified_curve_is_certify_at_every_eps() -> None:
    """Figures 3 and 4 share one curve; it equals certify()'s certified error exactly, eps by eps."""
    weights = random_weights(3, 10, 8, 3, scale=0.3)
    X = np.random.default_rng(1).uniform(0, 1, size=(60, 10))
    y = weights.scores(X).argmax(axis=1)
    table = solve_pairs(weights, progress=False)
    eps = [0.0, 0.01, 0.05, 0.1, 0.3]
    curve = curves.certified_curve(weights, X, y, eps, table.upper, name="SDP")
    direct = [100 * certify(weights, X, y, e, "sdp", table=table, progress=False).certified_error
              for e in eps]
    assert curve.tolist() == direct and curve.name == "SDP" and list(curve.index) == eps
    assert 0 < curve.iloc[2] < 100 and curve.is_monotonic_increasing


def test_attack_curve_reads_finished_attacks_from_the_cache(tmp_path: Path, capsys) -> None:
    network = tiny_network("N", 1)
    net = network.net
    X = np.random.default_rng(2).uniform(0, 1, size=(12, 10)).astype(np.float32)
    y = network.weights.scores(X.astype(np.float64)).argmax(axis=1)  # correctly classified: attacked
    first = curves.attack_curve(net, X, y, [0.1, 0.05], "fgsm", n=8, cache_dir=tmp_path, label="N")
    out = capsys.readouterr().out
    assert out.count("N: fgsm") == 2 and "cached" not in out and out.index("eps=0.05") < out.index("eps=0.1")
    attacked = len(list(tmp_path.glob("fgsm-*.json")))
    again = curves.attack_curve(net, X, y, [0.1, 0.05], "fgsm", n=8, cache_dir=tmp_path, label="N")
    assert capsys.readouterr().out.count(", cached;") == attacked >= 1
    pd.testing.assert_series_equal(first, again)
    assert list(first.index) == [0.1, 0.05] and len(list(tmp_path.glob("fgsm-*.json"))) == attacked


def test_certified_masks_are_the_certificates() -> None:
    weights = random_weights(3, 10, 8, 3, scale=0.3)
    X = np.random.default_rng(1).uniform(0, 1, size=(60, 10))
    y = weights.scores(X).argmax(axis=1)
    table = solve_pairs(weights, progress=False)
    masks = curves.certified_masks(weights, X, y, [0.05, 0.1], [table.upper], ["lp"])
    for e, mask in masks.items():
        sdp = certify(weights, X, y, e, "sdp", table=table, progress=False).certified
        lp = certify(weights, X, y, e, "lp", progress=False).certified
        np.testing.assert_array_equal(mask, sdp | lp)
    assert masks[0.1].any() and not masks[0.1].all()
    assert not curves.certified_masks(weights, X, y, [0.1])[0.1].any()


# -- plots -----------------------------------------------------------------------------------------

def test_saved_pdf_is_reproducible_under_source_date_epoch(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    fig, ax = plots.new_figure(3, 2)
    plots.plot_curve(ax, pd.Series([1.0, np.nan, 3.0], index=[0.0, 0.1, 0.2]), "-")
    plots.eps_axes(ax, "t", mark=0.1)
    first = plots.save(fig, tmp_path / "a", "f")
    second = plots.save(fig, tmp_path / "b", "f")
    assert [p.name for p in first] == ["f.png", "f.pdf"]
    assert first[1].read_bytes() == second[1].read_bytes() and b"D:19700101" in first[1].read_bytes()
    monkeypatch.delenv("SOURCE_DATE_EPOCH")  # unset (a notebook run outside make): the same file
    assert plots.save(fig, tmp_path / "d", "f")[1].read_bytes() == first[1].read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(InputError, match="SOURCE_DATE_EPOCH"):
        plots.save(fig, tmp_path / "c", "f")
    plots.plt.close(fig)


# -- Table 1, Figures 2 and 3 ------------------------------------------------------------------------

def test_table1_has_the_committed_columns_without_timings() -> None:
    row = {"network": "SDP-NN (paper)", "clean error %": 4.18, "SDP certified %": 34.77,
           "LP certified %": 98.63, "PGD % (unclipped)": 18.5, "PGD % (clipped)": 11.5,
           "SDP max gap": 7.76272e-05}
    table = table1.assemble([row, {**row, "network": "LP-NN (ours)"}])
    committed = pd.read_csv(ROOT / "results" / "table1.csv", index_col="network")
    assert list(table.columns) == list(committed.columns)
    assert not any("second" in c for c in committed.columns), "a timing changes on every run"
    assert table.loc["LP-NN (ours)", "SDP certified % (paper Table 1)"] == 93
    text = table1.text(table)
    assert "Styler" not in text and "7.8e-05" in text and "34.77" in text and "93.00" in text


def test_table1_as_text_markdown_and_latex_shows_the_same_numbers() -> None:
    table = pd.read_csv(ROOT / "results" / "table1.csv", index_col="network")
    table.iloc[0, -1] = np.nan  # a missing paper value
    cells = table1.formatted(table)
    md = table1.markdown(table).splitlines()
    tex = table1.latex(table).splitlines()
    assert len(md) == 2 + len(table) and md[1] == "|:--" + "|--:" * len(table.columns) + "|"
    assert [c.strip() for c in md[0].strip("|").split("|")] == ["network", *table.columns]
    assert tex[:2] == [r"\begin{tabular}{l" + "r" * len(table.columns) + "}", r"\toprule"]
    assert tex[3] == r"\midrule" and tex[-2:] == [r"\bottomrule", r"\end{tabular}"]
    assert tex[2].startswith(r"network & clean error \% & SDP certified \%")
    text = table1.text(table).splitlines()
    for n, label in enumerate(table.index):
        row = [label, *cells.loc[label]]
        assert [c.strip() for c in md[2 + n].strip("|").split("|")] == row
        assert tex[4 + n] == " & ".join(row) + r" \\"
        assert text[2 + n].split() == label.split() + list(cells.loc[label])
    assert cells.iloc[0, -1] == "-" and cells.loc["SDP-NN (ours)", "SDP max gap"] == "8.2e-05"
    assert table1.latex_escape(r"a_b & 5% {x} \ ~") == r"a\_b \& 5\% \{x\} \textbackslash{} \textasciitilde{}"


def test_table1_compute_writes_csv_markdown_and_latex(tmp_path: Path, monkeypatch, capsys) -> None:
    ctx = tiny_context(tmp_path)
    net = tiny_network("SDP-NN", 7)
    monkeypatch.setattr(table1, "networks", lambda ctx: [table1.Row("SDP-NN (ours)", net.weights, net.table)])
    table = table1.compute(ctx)
    out = capsys.readouterr().out
    assert "written to results/table1.csv, results/table1.md, results/table1.tex" in out
    assert (tmp_path / "results" / "table1.md").read_text() == table1.markdown(table)
    assert (tmp_path / "results" / "table1.tex").read_text() == table1.latex(table)
    assert list(pd.read_csv(tmp_path / "results" / "table1.csv", index_col="network").columns) == list(
        table.columns)
    pgd = table.loc["SDP-NN (ours)", ["PGD % (unclipped)", "PGD % (clipped)"]]
    assert (pgd <= table.loc["SDP-NN (ours)", "SDP certified %"]).all()


def test_fig2_and_fig3a_tables_and_figures(tmp_path: Path) -> None:
    ctx = tiny_context(tmp_path)
    nets = [tiny_network("A-NN", 4), tiny_network("B-NN", 5)]
    bounds = fig2.compute(ctx, nets)
    assert list(bounds.index) == ["A-NN", "B-NN"]
    assert list(bounds.columns) == ["Frobenius certified %", "spectral certified %", "SDP certified %",
                                    "LP certified %", "clean error %", "SDP max gap", "PGD error %"]
    for _, row in bounds.iterrows():  # nested certificates; an attack never beats a certificate
        assert row["SDP certified %"] <= row["spectral certified %"] <= row["Frobenius certified %"]
    assert pd.read_csv(tmp_path / "results" / fig2.CSV, index_col="network").shape == bounds.shape
    assert list(fig2.with_paper(bounds).columns)[-1] == "LP certified % (paper)"
    ax = fig2.figure(ctx, bounds).axes[0]  # SDP, LP, PGD bars; Frobenius and spectral in a note
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "SDP certificate (eq. 12)", "LP bound (Wong & Kolter)", "PGD attack (lower bound, first 100 images)"]
    assert len(ax.containers) == 3 and [len(c) for c in ax.containers] == [2, 2, 2]
    assert any(t.get_text() == fig2.not_drawn_note(bounds) for t in ax.texts)
    curves_a = fig3.per_network(ctx, nets)
    assert curves_a.index.name == "eps" and list(curves_a.index) == list(context.CERT_EPS)
    assert list(curves_a.columns) == ["A-NN SDP certified %", "B-NN SDP certified %",
                                      "A-NN PGD error %", "B-NN PGD error %"]
    assert curves_a["A-NN PGD error %"].notna().sum() == len(ctx.profile.fig2_fig3a.eps)
    assert curves_a.loc[0.1, "A-NN SDP certified %"] == bounds.loc["A-NN", "SDP certified %"]
    assert curves_a.loc[0.1, "A-NN PGD error %"] == bounds.loc["A-NN", "PGD error %"]
    fig = fig3.per_network_figure(ctx, curves_a)  # one panel per network, one legend for all
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["A-NN", "B-NN"]
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert len(fig.legends[0].get_texts()) == 2
    for stem in (fig2.FIGURE, fig3.FIGURE_A):
        assert {p.name for p in (tmp_path / "figures").glob(f"{stem}.*")} == {f"{stem}.png", f"{stem}.pdf"}
    plots.plt.close("all")


def test_fig2_note_on_the_bounds_not_drawn() -> None:
    nothing = pd.DataFrame({"Frobenius certified %": [100.0, 100.0], "spectral certified %": [100.0, 100.0]})
    assert "certify nothing at eps = 0.1" in fig2.not_drawn_note(nothing)
    some = nothing.assign(**{"spectral certified %": [100.0, 61.5]})
    assert "(61.5-100% certified error" in fig2.not_drawn_note(some)


def test_figure_grid_shows_eps_ticks_above_an_empty_panel() -> None:
    fig, panels = plots.new_grid(5, 3, 2, 2)
    assert len(panels) == 5 and sum(ax.get_visible() for ax in fig.axes) == 5
    assert panels[2].xaxis.get_tick_params()["labelbottom"] and not panels[0].xaxis.get_tick_params()[
        "labelbottom"]
    plots.plt.close(fig)


def test_fig3b_error_vs_eps(tmp_path: Path) -> None:
    ctx = tiny_context(tmp_path)
    random_weights(6, 10, 8, 3, scale=0.3).save(tmp_path / "net.npz", dtype=np.float64)
    summary = fig3.error_vs_eps(ctx, "net.npz")
    assert list(summary.columns) == ["FGSM error %", "PGD error %", "CW error %", "SDP certified error %"]
    assert summary.index.name is None and list(summary.index) == list(context.CERT_EPS)
    attacked = summary.dropna()
    assert list(attacked.index) == list(ctx.profile.fig3b.eps)
    assert (attacked["PGD error %"] <= attacked["SDP certified error %"]).all()
    written = pd.read_csv(tmp_path / "results" / fig3.CSV_B, index_col=0)
    np.testing.assert_allclose(written.to_numpy(), summary.to_numpy(), rtol=1e-5)
    side = fig3.at_paper_eps(summary)
    assert side.loc["SDP certified error %", "paper's SDP-NN, Table 1 %"] == 35
    fig = fig3.error_vs_eps_figure(ctx, summary, "net.npz")
    assert fig.axes[0].get_title() == "Figure 3(b): net.npz: bounds on adversarial error"
    plots.plt.close("all")


# -- Figure 4 --------------------------------------------------------------------------------------

def fig4_networks(paper_scale: bool = True) -> dict[str, fig4.Trained]:
    """Two tiny 'SDP-NN's whose recorded training-time bounds are 1% above the exact SDP values."""
    nets = {}
    for seed, (kind, name) in enumerate(fig4.PAPER_NAMES.items()):
        weights = random_weights(10 + seed, 10, 8, 3, scale=0.3)
        upper = solve_pairs(weights, progress=False).upper
        recorded = [[None if i == j else 1.01 * upper[i, j] for j in range(3)] for i in range(3)]
        config = {"reg": "sdp", "sdp_weighted": kind == "weighted", "epochs": 2, "hidden": 8, "sdp_eps": 0.1,
                  "eval_limit": 40}
        extra = {"metrics": [{"test_error": 0.5, "sdp_bounds": recorded}]}
        nets[kind] = fig4.Trained(kind, name, TwoLayerNet.from_weights(weights), config, extra, None)
    return nets


def test_fig4_tables_checks_and_figures(tmp_path: Path, capsys) -> None:
    ctx = tiny_context(tmp_path)
    chosen = fig4.Networks(True, fig4_networks(), context.CERT_EPS, ctx.profile.fig4)
    fig4.pair_bounds(ctx, chosen)
    assert "1.01-1.01x the exact value" in capsys.readouterr().out
    result = fig4.curves(ctx, chosen)
    exact, dual = result.cert[("weighted", "exact SDP")], result.cert[("weighted", "dual from training")]
    assert (exact <= dual).all() and result.cert.index.name == "eps"  # larger bounds certify less
    check = fig4.check(chosen, result)
    assert list(check.columns) == ["SDP-NN (weighted)", "SDP-NN-unweighted"]
    assert list(check.index) == [0.0, *ctx.profile.fig4.eps]
    written = fig4.write_tables(ctx, chosen, result)
    assert written == ["results/fig4a_weighted_vs_unweighted.csv", "results/fig4b_dual_vs_exact_sdp.csv",
                       "results/fig4b_pair_bounds.csv"]
    for name in written:  # the committed CSVs' layout: the same columns in the same order
        ours = pd.read_csv(tmp_path / name)
        committed = pd.read_csv(ROOT / name)
        assert list(ours.columns) == list(committed.columns), name
        assert (ours["networks"] == "paper-scale networks (results/networks.json)").all()
    assert len(pd.read_csv(tmp_path / written[2])) == 2 * 3  # k (k - 1) / 2 pairs per network
    fig4.figure_a(ctx, chosen, result)
    fig = fig4.figure_b(ctx, chosen, result)
    assert (tmp_path / "figures" / "fig4b_dual_vs_exact_sdp.pdf").is_file()
    fig.canvas.draw()  # the legend lies below the axes, off the curves
    ax = fig.axes[0]
    assert ax.get_legend().get_window_extent().y1 < ax.get_window_extent().y0
    text = fig4.summary(chosen, result)
    assert text.startswith("Figure 4, paper-scale networks") and "35% and a PGD error of 15%" in text
    plots.plt.close("all")


def test_fig4_falls_back_to_demo_networks(tmp_path: Path, monkeypatch, capsys) -> None:
    """Without SDP-NN and SDP-NN-unweighted in the manifest, Figure 4 runs on demo networks."""
    ctx = tiny_context(tmp_path)
    demo = fig4_networks()
    monkeypatch.setattr(fig4, "train_demo", lambda: demo)
    chosen = fig4.networks(ctx)
    out = capsys.readouterr().out
    assert "Falling back to DEMO networks" in out and "certsdp train --config SDP-NN-unweighted" in out
    assert not chosen.paper_scale and chosen.cert_eps == context.DEMO_CERT_EPS
    assert chosen.attacks == ctx.profile.fig4_demo and chosen.description == "demo networks (tiny config)"


def test_fig4_refuses_a_network_trained_otherwise() -> None:
    net = fig4_networks()["weighted"]
    with pytest.raises(ValueError, match="not an SDP-NN trained unweighted"):
        fig4.Trained("unweighted", net.name, net.net, net.config, net.extra, None)
