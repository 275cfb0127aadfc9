"""Notebook 06's experiment (certsdp.experiments.verification): the sandwich of the adversarial error.

* a hand-written ``verdicts.csv`` gives the percentages its counts say; the exact error only without
  unknown points; a torn last line is left out;
* an incomplete folder is reported as such (and left out of the table), a folder of other weights is
  refused as stale;
* end to end on a tiny network: ``certsdp verify`` runs, attack <= exact <= upper, every cheap
  certificate's certified error on the same points is >= the verified upper bound, the CSV and the
  figure are written, and a committed copy of the folder gives the same row;
* the certificates' errors of a folder are kept in it and computed again only when their key differs;
* the published numbers stand beside the paper's SDP-NN; notebook 06 is a thin driver.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights, smoke_context

from certsdp.errors import InputError
from certsdp.experiments import context
from certsdp.experiments import verification as ve
from certsdp.sdp import solve_pairs
from certsdp.verify.store import HEADER

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_complete_verification.ipynb"


def _net(seed: int = 0) -> ve.Net:
    weights = random_weights(seed, 6, 8, 3, scale=3.0)
    return ve.Net("tiny (ours)", "tiny", weights, solve_pairs(weights, progress=False))


@pytest.fixture()
def ctx(tmp_path: Path) -> context.Context:
    """A smoke context rooted in ``tmp_path`` whose test set is 12 random images of the tiny network,
    the first two mislabelled."""
    return smoke_context(tmp_path, _net().weights)


def _write_run(folder: Path, verdicts: list[tuple[str, str]], n: int | None = None,
               torn: str = "") -> Path:
    """A verify folder with one row per ``(verdict, decided_by)`` and a summary of ``n`` points."""
    folder.mkdir(parents=True)
    lines = [HEADER] + [f"{i},0,{v},{by},-1.0,-2.0,0.5" for i, (v, by) in enumerate(verdicts)]
    (folder / "verdicts.csv").write_text("\n".join(lines) + "\n" + torn)
    n = len(verdicts) if n is None else n
    (folder / "summary.json").write_text(json.dumps({"n": n, "done": len(verdicts),
                                                     "remaining": n - len(verdicts)}))
    return folder


HAND_WRITTEN = [("robust", "sdp")] * 4 + [("robust", "lp+bab"), ("not_robust", "pgd-ce"),
                                          ("not_robust", "pgd-margin"), ("not_robust", "milp"),
                                          ("misclassified", "clean"), ("unknown", "none")]


def test_the_sandwich_row_counts_the_verdicts(tmp_path) -> None:
    run = ve.read_run(_write_run(tmp_path / "a", HAND_WRITTEN, torn="10,0,robust,sd"))
    assert run.complete and len(run.verdicts) == 10  # the torn line is not a row
    row = ve.counts_row(run)
    assert row["n"] == 10 and row["clean error %"] == pytest.approx(10.0)
    assert row["PGD %"] == pytest.approx(30.0)  # 2 pgd witnesses + 1 misclassified
    assert row["verified attack %"] == pytest.approx(40.0)  # every witness + misclassified
    assert row["verified upper %"] == pytest.approx(50.0)  # not robust: 3 + 1 + 1 unknown
    assert row["unknown %"] == pytest.approx(10.0) and math.isnan(row["exact error %"])
    decided = [(v, by) if v != "unknown" else ("robust", "bab") for v, by in HAND_WRITTEN]
    row = ve.counts_row(ve.read_run(_write_run(tmp_path / "b", decided)))
    assert row["unknown %"] == 0 and row["verified upper %"] == pytest.approx(40.0)
    assert row["verified attack %"] == row["exact error %"] == row["verified upper %"]


def test_an_incomplete_folder_is_reported_and_left_out(ctx, capsys) -> None:
    folder = _write_run(ctx.results / ve.FOLDER / "LP-NN_eps0.1_clipped", HAND_WRITTEN, n=12)
    run = ve.read_run(folder)
    assert not run.complete and run.status() == "incomplete: 10 of 12 points have a verdict"
    with pytest.raises(InputError, match="incomplete"):
        ve.counts_row(run)
    assert ve.committed_rows(ctx, {}) == []
    out = capsys.readouterr().out
    assert "results/verify/LP-NN_eps0.1_clipped: incomplete: 10 of 12" in out
    assert "no complete verify folder under results/verify" in out
    with pytest.raises(InputError, match="summary.json"):
        ve.read_run(ctx.results)


def test_the_experiment_end_to_end(ctx, monkeypatch, capsys, one_thread) -> None:
    net = _net()
    smoke = ve.Plan("smoke", 12, ("tiny",), ("unclipped", "clipped"), ve.SMOKE_FOLDER, time_limit=10.0,
                    workers=0, bounds=ve.CERTIFICATES, fresh=True, committed=True)
    monkeypatch.setitem(ve.PLANS, "smoke", smoke)
    monkeypatch.setattr(ve, "load_net", lambda _ctx, name: net)
    table = ve.compute(ctx).table
    assert list(table.index) == [("tiny (ours)", "unclipped", "smoke"), ("tiny (ours)", "clipped", "smoke")]
    assert (ctx.results / ve.CSV["smoke"]).is_file()
    assert (table["n"] == 12).all() and table["clean error %"].tolist() == pytest.approx([100 * 2 / 12] * 2)
    assert (table["unknown %"] == 0).all(), "the tiny network is decided within the time limit"
    assert (table["PGD %"] <= table["verified attack %"]).all()
    assert (table["verified attack %"] == table["exact error %"]).all()
    assert (table["exact error %"] == table["verified upper %"]).all()
    assert (table["errors re-checked"] == (table["verified attack %"] * 12 / 100).round()).all()  # audited
    for name in ve.CERTIFICATES:  # a certified point is proved robust: no certificate beats the verifier
        assert (table[f"{name} %"] >= table["verified upper %"]).all(), name
    assert table.loc[("tiny (ours)", "clipped", "smoke"), "lp %"] <= table.loc[
        ("tiny (ours)", "unclipped", "smoke"), "lp %"]  # the clipped box is smaller
    ve.figure(ctx, table)
    assert (ctx.figures / f"{ve.FIGURE}.png").is_file() and (ctx.figures / f"{ve.FIGURE}.pdf").is_file()
    # a committed copy of the clipped folder gives the same row, and only for the same weights
    smoke_folder = ctx.root / ve.SMOKE_FOLDER / ve.folder_name("tiny", "clipped")
    shutil.copytree(smoke_folder, ctx.results / ve.FOLDER / "tiny_eps0.1_clipped")
    monkeypatch.setitem(ve.NETWORKS, "tiny", ("tiny (ours)", "tiny"))
    capsys.readouterr()
    rows = ve.committed_rows(ctx, {})
    assert len(rows) == 1 and rows[0]["run"] == "full"
    for column in ve.CHECKED:
        assert rows[0][column] == pytest.approx(table.loc[("tiny (ours)", "clipped", "smoke"), column])
    with pytest.raises(InputError, match="stale"):
        ve.sandwich_row(ctx, smoke_folder, _net(seed=1), "clipped", "smoke")
    with pytest.raises(InputError, match="not 0.1 unclipped"):
        ve.sandwich_row(ctx, smoke_folder, net, "unclipped", "smoke")
    forged = ctx.results / ve.FOLDER / "tiny_eps0.1_clipped"
    with np.load(forged / "witnesses.npz") as data:
        index, Z = data["index"], data["X"].copy()
    assert len(index), "the test needs a witness"
    Z[0] = np.where(Z[0] > 0.5, 0.0, 1.0)  # a witness moved outside its box is refused
    np.savez_compressed(forged / "witnesses.npz", index=index, X=Z)
    with pytest.raises(InputError, match="outside its box|classified correctly"):
        ve.sandwich_row(ctx, forged, net, "clipped", "full")


def test_certificates_are_kept_in_the_folder_and_checked(ctx, monkeypatch, one_thread) -> None:
    net = _net()
    X, y = ctx.test_set
    folder = ctx.root / "run"
    ve.verify(net.weights, X, y, ve.EPS, folder, clip=ve.PIXEL_BOX, time_limit=10.0, workers=0,
              bounds=ve.CERTIFICATES, table=net.table)
    first = ve.sandwich_row(ctx, folder, net, "clipped", "full")
    stored = json.loads((folder / ve.CERTIFICATES_FILE).read_text())
    assert set(stored) == set(ve.CERTIFICATES) and stored["lp"]["key"]["table"] is None

    def no_certify(*args, **kwargs):
        raise AssertionError("certified again")

    monkeypatch.setattr(ve, "certify", no_certify)
    again = ve.sandwich_row(ctx, folder, net, "clipped", "full")  # read back, not computed
    assert again == first
    stored["lp"]["key"]["box"] = "unclipped"  # a key that differs: computed again
    (folder / ve.CERTIFICATES_FILE).write_text(json.dumps(stored))
    with pytest.raises(AssertionError, match="certified again"):
        ve.sandwich_row(ctx, folder, net, "clipped", "full")
    monkeypatch.undo()
    # a stale key (e.g. a pair table solved again elsewhere) with the same number: computed again,
    # but the committed file stays as it is; a different number is written (lp's key is still the
    # one changed above, so lp is computed again too)
    stored["sdp"]["key"]["table"] = "solved elsewhere"
    (folder / ve.CERTIFICATES_FILE).write_text(json.dumps(stored))
    before = (folder / ve.CERTIFICATES_FILE).read_bytes()

    def numbers(row: dict) -> dict:
        return {k: v for k, v in row.items() if k != "seconds"}

    assert numbers(ve.sandwich_row(ctx, folder, net, "clipped", "full")) == numbers(first)
    assert (folder / ve.CERTIFICATES_FILE).read_bytes() == before
    stored["sdp"]["percent"] += 1.0
    (folder / ve.CERTIFICATES_FILE).write_text(json.dumps(stored))
    assert numbers(ve.sandwich_row(ctx, folder, net, "clipped", "full")) == numbers(first)
    rewritten = json.loads((folder / ve.CERTIFICATES_FILE).read_text())
    assert rewritten["sdp"]["percent"] == stored["sdp"]["percent"] - 1.0
    assert rewritten["sdp"]["key"]["table"] != "solved elsewhere"


def test_folder_names_and_published_numbers() -> None:
    assert ve.folder_name("paper-LP-NN", "clipped") == "paper-LP-NN_eps0.1_clipped"
    assert ve.parse_folder_name("results/verify/paper-SDP-NN_eps0.1_unclipped") == (
        "paper-SDP-NN", 0.1, "unclipped")
    assert ve.parse_folder_name("sandwich.csv") is None
    assert ve.published("SDP-NN (paper)", "clipped") == {"PGD % (published)": 15.0,
                                                         "unknown % (published)": 16.0}
    assert ve.published("SDP-NN (paper)", "unclipped") == {"sdp % (published)": 35.0,
                                                           "lp % (published)": 99.0}
    assert ve.published("SDP-NN (ours)", "clipped") == {}
    assert "MIPVerify" in ve.MILP_STUDY.source and "120 s" in ve.MILP_STUDY.source


def test_the_full_profile_names_the_command_of_every_missing_folder(ctx) -> None:
    """The full profile verifies nothing itself; each missing (network, box) gets a command that the
    CLI parses, with the folder the notebook reads."""
    import shlex

    from certsdp.cli.main import build_parser

    lines = ve.missing_folders(ctx)
    assert len(lines) == len(ve.NETWORKS) * len(ve.BOXES)
    (ctx.results / ve.FOLDER / "paper-LP-NN_eps0.1_clipped").mkdir(parents=True)
    lines = ve.missing_folders(ctx)
    assert len(lines) == len(ve.NETWORKS) * len(ve.BOXES) - 1
    assert not any("paper-LP-NN_eps0.1_clipped" in line for line in lines)
    for line in lines:
        argv = shlex.split(line.removeprefix("not yet run: ").replace("$CERTSDP_NETS", "nets"))
        args = build_parser("verify").parse_args(argv[1:])
        name, eps, box = ve.parse_folder_name(args.out)
        assert eps == ve.EPS and args.eps == ve.EPS and name in ve.NETWORKS
        assert args.clip == (box == "clipped")
    assert ve.PLANS["full"].networks == () and ve.PLANS["full"].committed
