"""Evaluate a trained network the way the paper's figures need it, and keep the results manifest.

For one network at one eps: clean error, FGSM/PGD/CW error (lower bounds on the adversarial error),
and the Frobenius/spectral/SDP/LP certified errors (upper bounds), plus the training time and machine
recorded in its checkpoint. Attacks use the paper's unclipped box unless ``clip`` is given, and every
metrics file says which box each number uses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from certsdp.bounds.certify import certify
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp.pairs import PairTable, solve_pairs

MANIFEST = Path("results") / "networks.json"


def evaluate_network(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float = 0.1,
                     attack_limit: int | None = None, clip: tuple[float, float] | None = None,
                     table: PairTable | None = None, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Metrics dict: certified errors on all of ``(X, y)``, attack errors on the first ``attack_limit``."""
    from certsdp.attacks.engine import attack_report
    from certsdp.network.torch_model import TwoLayerNet

    t0 = time.perf_counter()
    table = table or solve_pairs(weights, progress=progress)
    out: dict[str, Any] = {"eps": eps, "n": int(X.shape[0]), "certify_clip": None,
                           "weights_sha256": weights.content_hash(),
                           "sdp_max_gap": table.max_gap, "sdp_max_rel_gap": table.max_rel_gap}
    for method in ("sdp", "lp", "spectral", "fro"):
        result = certify(weights, X, y, eps, method, table=table, progress=False)
        out["clean_error"] = result.clean_error
        out[f"{method}_certified_error"] = result.certified_error
    n_att = X.shape[0] if attack_limit is None else min(attack_limit, X.shape[0])
    net = TwoLayerNet.from_weights(weights)
    out["attack_n"] = n_att
    out["attack_clip"] = list(clip) if clip else None
    import torch

    Xt = torch.as_tensor(np.array(X[:n_att]), dtype=torch.float32)
    yt = torch.as_tensor(np.array(y[:n_att]), dtype=torch.int64)
    for attack in ("fgsm", "pgd", "cw"):
        report = attack_report(net, Xt, yt, eps, attack, clip=clip, seed=seed, progress=progress)
        out[f"{attack}_error"] = report["error"]
    out["evaluate_seconds"] = time.perf_counter() - t0
    return out


def evaluate_and_record(weights_path: str | Path, X: np.ndarray, y: np.ndarray, out: str | Path,
                        name: str | None = None, eps: float = 0.1, attack_limit: int | None = 1000,
                        clip: tuple[float, float] | None = None, seed: int = 0, progress: bool = True,
                        root: str | Path = ".") -> dict[str, Any]:
    """Evaluate a ``.npz`` or checkpoint (:func:`evaluate_network`), save to ``out``, record in the manifest.

    For a ``.pt`` checkpoint the metrics also record its config, epochs, training seconds and
    machine (and ``forked_from`` for a run started from another's checkpoint, see
    :func:`certsdp.training.loop.train`), and the manifest entry points at the ``weights.npz`` beside it.
    Paths in the manifest ``root/results/networks.json`` are relative to ``root`` (the repository
    root).
    """
    from certsdp.network.torch_model import load_checkpoint, load_network

    root = Path(root).resolve()
    weights_path, out = Path(weights_path).resolve(), Path(out).resolve()
    weights = load_network(weights_path)
    metrics = evaluate_network(weights, X, y, eps, attack_limit=attack_limit, clip=clip, seed=seed,
                               progress=progress)
    checkpoint = None
    if weights_path.suffix == ".pt":
        _, config, extra = load_checkpoint(weights_path)
        metrics.update(config=config, epochs_trained=extra.get("epoch"), train_seconds=extra.get("seconds"),
                       machine=extra.get("machine"))
        if extra.get("forked_from"):  # its first epochs (and their seconds) are another run's
            metrics["forked_from"] = extra["forked_from"]
        checkpoint = weights_path
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=1) + "\n")
    if name:
        def rel(path: Path) -> str:
            try:
                return str(path.relative_to(root))
            except ValueError:
                raise InputError(f"{path} is outside the repository root {root}: the manifest stores "
                                 "paths relative to it") from None

        weights_file = weights_path
        if checkpoint:
            weights_file = _export_beside(checkpoint, weights)
        update_manifest(name, rel(checkpoint) if checkpoint else None, rel(weights_file), rel(out),
                        manifest=root / MANIFEST)
    return metrics


def _export_beside(checkpoint: Path, weights: Weights) -> Path:
    """``weights.npz`` beside ``checkpoint`` holding exactly ``weights`` (written if missing or stale).

    Training writes it only when a run finishes, so a checkpoint evaluated mid-run (or retrained
    since) would otherwise leave the manifest pointing at no file or at other weights.
    """
    from certsdp.network.torch_model import load_network

    path = checkpoint.with_name("weights.npz")
    if path.is_file():
        try:
            if load_network(path).content_hash() == weights.content_hash():
                return path
        except InputError:
            pass  # damaged: written again below
    tmp = path.with_name(path.name + ".tmp.npz")
    weights.save(tmp)  # float32, exact for the float32 networks training makes
    if load_network(tmp).content_hash() != weights.content_hash():
        weights.save(tmp, dtype=np.float64)
    tmp.replace(path)
    return path


def update_manifest(name: str, checkpoint: str | None, weights: str, metrics: str,
                    manifest: Path = MANIFEST) -> None:
    """Record ``name -> {checkpoint, weights, metrics}`` (paths relative to the repository root)."""
    data = json.loads(manifest.read_text()) if manifest.is_file() else {}
    data[name] = {"checkpoint": checkpoint, "weights": weights, "metrics": metrics}
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n")
