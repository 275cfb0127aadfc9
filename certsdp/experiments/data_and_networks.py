"""The inputs of every figure, checked in one place: MNIST and the paper's seven networks (section 6).

* :func:`mnist_files`: the four IDX files, checked against their published md5 sums.
* :func:`network_table`: the networks of ``results/networks.json``; the clean test error is
  recomputed from the committed weights on all 10,000 test images and must equal the one recorded
  at evaluation (the paper states a clean error only for its SDP-NN: 4.2%).
* :func:`retrain`: train (or resume) networks at the paper's scale and evaluate them.
* :func:`demo_training`: the training path end to end on a tiny configuration (784-20-10), in a
  temporary folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from certsdp.bounds import certify
from certsdp.data import check_mnist
from certsdp.experiments.context import EPS, Context
from certsdp.experiments.evaluate import evaluate_and_record
from certsdp.experiments.manifest import SDP_TABLE_NAME
from certsdp.experiments.paper import paper_value
from certsdp.network import load_network
from certsdp.network.checkpoint import load_checkpoint
from certsdp.training import WEIGHTS_NAME, get_config, train

COLUMNS = ("network", "clean error %", "recorded %", "paper %", "epochs", "train minutes", "device")


def mnist_files() -> pd.DataFrame:
    """One row per MNIST file: name, status (``OK``, ``MISSING``, ``CORRUPT``) and number of items."""
    return pd.DataFrame([{"file": c.name, "status": c.status, "items": c.count} for c in check_mnist()])


def first_of_each_class(X: np.ndarray, y: np.ndarray) -> Figure:
    """The first test image of each class, as the network sees it (pixels in [0, 1])."""
    fig, axes = plt.subplots(1, 10, figsize=(10, 1.3))
    for k, ax in enumerate(axes):
        n = int((y == k).argmax())
        ax.imshow(X[n].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"label {y[n]}", fontsize=8)
        ax.axis("off")
    fig.suptitle("first test image of each class (pixels in [0, 1]; eps = 0.1 is 10% of the range)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def retrain(ctx: Context, names: str) -> None:
    """Train (or resume) each network of the comma-separated ``names`` at the paper's scale, evaluate
    it and record it in the manifest (as ``certsdp train --resume`` and ``certsdp evaluate`` do)."""
    X, y = ctx.test_set
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        folder = ctx.results / name
        before = _weights_hash(folder)
        train(get_config(name), folder, resume=True)
        if _weights_hash(folder) != before:  # the old pair table would be refused: solved anew on use
            (folder / SDP_TABLE_NAME).unlink(missing_ok=True)
        evaluate_and_record(folder / "checkpoint.pt", X, y, folder / "eval_eps0.1.json", name=name,
                            attack_limit=1000, root=ctx.root)
        print(f"{name}: trained and evaluated -> {ctx.rel(folder / 'eval_eps0.1.json')}")


def _weights_hash(folder: Path) -> str | None:
    """The content hash of ``folder/weights.npz``, None if there is none."""
    path = folder / WEIGHTS_NAME
    return load_network(path).content_hash() if path.is_file() else None


def network_table(ctx: Context) -> pd.DataFrame:
    """The trained networks: recomputed and recorded clean error, paper value, epochs, training time.

    Raises AssertionError if a metrics file belongs to other weights or its clean error differs from
    the one recomputed here.
    """
    X, y = ctx.test_set
    rows = []
    for name, entry in ctx.trained().items():
        weights, metrics = entry.load_weights(), entry.load_metrics()
        if metrics.get("weights_sha256") != weights.content_hash():
            raise AssertionError(f"{name}: metrics are for other weights")
        clean = 100 * certify(weights, X, y, EPS, "fro", progress=False).clean_error
        rows.append({"network": name, "clean error %": clean, "recorded %": 100 * metrics["clean_error"],
                     "paper %": paper_value(name, "clean error"), "epochs": metrics.get("epochs_trained"),
                     "train minutes": metrics.get("train_seconds", 0) / 60,
                     "device": metrics.get("machine", {}).get("device")})
    table = pd.DataFrame(rows, columns=list(COLUMNS)).set_index("network")
    if len(table) and (table["clean error %"] - table["recorded %"]).abs().max() >= 1e-9:
        raise AssertionError("a recomputed clean error differs from the recorded one")
    return table


def demo_training() -> str:
    """Train ``tiny-SDP`` (784-20-10, 512 images, 2 epochs) in a temporary folder; one line on it."""
    with tempfile.TemporaryDirectory() as tmp:
        train(get_config("tiny-SDP"), tmp, progress=False)
        _, config, extra = load_checkpoint(Path(tmp) / "checkpoint.pt")
    last = extra["metrics"][-1]
    return (f"tiny-SDP: {extra['epoch']} epochs in {extra['seconds']:.1f} s, test error "
            f"{100 * last['test_error']:.1f}% on {config['eval_limit']} images, "
            f"SDP certified error (eps {config['sdp_eps']}) {100 * last['sdp_cert_error']:.1f}%")
