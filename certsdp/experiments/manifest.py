"""The trained networks of this repository: the ``results/networks.json`` manifest and its files.

``results/networks.json`` maps each of the paper's network names (:data:`NETWORK_NAMES`) that has been
trained to ``{"checkpoint", "weights", "metrics"}`` paths relative to the repository root (written by
``certsdp evaluate --name`` through :func:`update_manifest`). The notebooks read networks only
through this module, so a network that is not trained yet is reported as missing, with the command
that trains it, instead of failing deep inside. Each network's SDP pair table (the ``S_ij`` of
eq. 12) is kept beside its weights as ``sdp_table.npz`` (:func:`sdp_table`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certsdp.atomic import write_text
from certsdp.errors import InputError
from certsdp.network import Weights, load_network
from certsdp.sdp import PairTable, acquire_pair_table

#: the seven networks of the paper's section 6, in the order the figures show them
NETWORK_NAMES = ("NT-NN", "Fro-NN", "Spe-NN", "AT-NN", "SDP-NN", "SDP-NN-unweighted", "LP-NN")
#: the manifest, relative to the repository root
MANIFEST = Path("results") / "networks.json"
SDP_TABLE_NAME = "sdp_table.npz"


@dataclass(frozen=True)
class TrainedNetwork:
    """One manifest entry with absolute paths (``checkpoint`` may be None for weights-only entries)."""

    name: str
    weights: Path
    metrics: Path
    checkpoint: Path | None

    @property
    def folder(self) -> Path:
        return self.weights.parent

    def load_weights(self) -> Weights:
        """The network's float64 :class:`certsdp.network.weights.Weights` (validated)."""
        return load_network(self.weights)

    def load_metrics(self) -> dict[str, Any]:
        """The evaluation metrics written by ``certsdp evaluate`` ({} if the file is absent)."""
        return json.loads(self.metrics.read_text()) if self.metrics.is_file() else {}


def train_command(name: str) -> str:
    """The commands that train and evaluate ``name`` at the paper's scale (for 'missing' messages)."""
    return (f"certsdp train --config {name} && certsdp evaluate --weights results/{name}/checkpoint.pt "
            f"--name {name} --attack-limit 1000 --out results/{name}/eval_eps0.1.json")


def load_manifest(root: str | Path) -> dict[str, TrainedNetwork]:
    """The manifest ``root/results/networks.json`` as ``name -> TrainedNetwork`` ({} if there is none).

    Raises :class:`InputError` if the manifest is malformed or names a weights file that is missing.
    """
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must map network names to entries")
    out: dict[str, TrainedNetwork] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not {"weights", "metrics"} <= set(entry):
            raise InputError(f"{path}: entry {name!r} needs 'weights' and 'metrics' paths")
        weights = root / entry["weights"]
        if not weights.is_file():
            raise InputError(f"{path}: the weights of {name!r} ({entry['weights']}) are missing")
        checkpoint = root / entry["checkpoint"] if entry.get("checkpoint") else None
        out[name] = TrainedNetwork(name, weights, root / entry["metrics"], checkpoint)
    return out


def update_manifest(root: str | Path, name: str, checkpoint: str | None, weights: str, metrics: str) -> None:
    """Record ``name -> {checkpoint, weights, metrics}`` (paths relative to ``root``) in its manifest."""
    path = Path(root) / MANIFEST
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[name] = {"checkpoint": checkpoint, "weights": weights, "metrics": metrics}
    write_text(path, json.dumps(dict(sorted(data.items())), indent=1) + "\n", "manifest")


def available(root: str | Path, names: tuple[str, ...] | list[str] = NETWORK_NAMES
              ) -> tuple[dict[str, TrainedNetwork], list[str]]:
    """``(found, missing)``: the manifest entries among ``names`` (in that order) and the absent names."""
    manifest = load_manifest(root)
    found = {name: manifest[name] for name in names if name in manifest}
    return found, [name for name in names if name not in manifest]


def sdp_table(network: TrainedNetwork, weights: Weights | None = None, solve: bool = False,
              progress: bool = False) -> PairTable:
    """The SDP pair table of a manifest network (the certified ``S_ij`` of eq. 12).

    Loaded from ``<folder>/sdp_table.npz`` with every stored dual point re-certified (the file is
    never trusted; one of other weights is refused), or solved and saved there when it is absent.
    With ``solve``: solved afresh, the file neither read nor written.
    """
    weights = weights if weights is not None else network.load_weights()
    return acquire_pair_table(weights, None if solve else network.folder / SDP_TABLE_NAME, progress=progress)
