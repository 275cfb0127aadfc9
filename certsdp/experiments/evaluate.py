"""Evaluate a trained network the way the paper's figures need it, and record it in the manifest.

For one network at one eps: clean error, FGSM/PGD/CW error (lower bounds on the adversarial error)
and certified errors (upper bounds; by default those of the paper's Table 1 and Figure 2: SDP
eq. 12, LP, spectral eq. 18, Frobenius eq. 17; any bound of :data:`certsdp.bounds.BOUNDS` on
request), plus the training time and machine recorded in its checkpoint. Attacks use the paper's
unclipped box unless ``clip`` is given, and every metrics file says which box each number uses.
Attacks go through the on-disk attack cache, the SDP pair table through
:func:`certsdp.sdp.acquire_pair_table`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from certsdp.atomic import write_text
from certsdp.attacks import cached_attack_report
from certsdp.bounds import BOUNDS, certify
from certsdp.errors import InputError
from certsdp.experiments.manifest import update_manifest
from certsdp.network import Weights, load_network
from certsdp.network.checkpoint import load_checkpoint
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp import PairTable, acquire_pair_table

#: the certificates of the paper's Table 1 and Figure 2, reported by default as <method>_certified_error
#: (the registry also holds slow references, e.g. lp-triangle, that a 10,000-image evaluation skips)
PAPER_METHODS = ("sdp", "lp", "spectral", "fro")
#: the attacks a metrics file reports, as ``<attack>_error``
ATTACKS = ("fgsm", "pgd", "cw")
#: the attack cache of :func:`evaluate_and_record`, relative to the repository root
CACHE_DIR = Path("runs") / "attack_cache"


def evaluate_network(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float = 0.1,
                     attack_limit: int | None = None, clip: tuple[float, float] | None = None,
                     table: PairTable | None = None, seed: int = 0, progress: bool = True,
                     cache_dir: str | Path | None = None, label: str = "",
                     methods: Sequence[str] = PAPER_METHODS) -> dict[str, Any]:
    """Metrics dict: certified errors on all of ``(X, y)``, attack errors on the first ``attack_limit``.

    ``methods`` are names of :data:`certsdp.bounds.BOUNDS` (InputError for any other, before any
    work). The pair table is solved unless given; attacks are read from ``cache_dir`` when they were run
    before (``None``: no cache). With ``progress``: progress bars, and one line per attack on stderr.
    """
    unknown = [method for method in methods if method not in BOUNDS]
    if unknown:
        raise InputError(f"unknown method {unknown[0]!r}; choose from {', '.join(BOUNDS)}")
    t0 = time.perf_counter()
    table = table or acquire_pair_table(weights, progress=progress)
    out: dict[str, Any] = {"eps": eps, "n": int(X.shape[0]), "certify_clip": None,
                           "weights_sha256": weights.content_hash(),
                           "sdp_max_gap": table.max_gap, "sdp_max_rel_gap": table.max_rel_gap}
    for method in methods:
        result = certify(weights, X, y, eps, method, table=table, progress=False)
        out["clean_error"] = result.clean_error
        out[f"{method}_certified_error"] = result.certified_error
    n_att = X.shape[0] if attack_limit is None else min(attack_limit, X.shape[0])
    out["attack_n"] = n_att
    out["attack_clip"] = list(clip) if clip else None
    net = TwoLayerNet.from_weights(weights)
    Xt = torch.as_tensor(np.array(X[:n_att]), dtype=torch.float32)
    yt = torch.as_tensor(np.array(y[:n_att]), dtype=torch.int64)
    for attack in ATTACKS:
        report = cached_attack_report(net, Xt, yt, eps, attack, cache_dir=cache_dir, clip=clip, seed=seed,
                                      label=label, log=_stderr if progress else None, progress=progress)
        out[f"{attack}_error"] = report["error"]
    out["evaluate_seconds"] = time.perf_counter() - t0
    return out


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def evaluate_and_record(weights_path: str | Path, X: np.ndarray, y: np.ndarray, out: str | Path,
                        name: str | None = None, eps: float = 0.1, attack_limit: int | None = 1000,
                        clip: tuple[float, float] | None = None, seed: int = 0, progress: bool = True,
                        root: str | Path = ".", cache_dir: str | Path | None = CACHE_DIR,
                        methods: Sequence[str] = PAPER_METHODS) -> dict[str, Any]:
    """Evaluate a ``.npz`` or checkpoint (:func:`evaluate_network`), save to ``out``, record in the manifest.

    For a ``.pt`` checkpoint the metrics also record its config, epochs, training seconds and
    machine (and ``forked_from`` for a run started from another's checkpoint, see
    :func:`certsdp.training.loop.train`), and the manifest entry points at the ``weights.npz`` beside it.
    Paths in the manifest ``root/results/networks.json`` are relative to ``root`` (the repository
    root); so is a relative ``cache_dir`` (the attack cache; ``None``: attack afresh).
    """
    root = Path(root).resolve()
    weights_path, out = Path(weights_path).resolve(), Path(out).resolve()
    if cache_dir is not None:
        cache_dir = root / cache_dir
    weights = load_network(weights_path)
    metrics = evaluate_network(weights, X, y, eps, attack_limit=attack_limit, clip=clip, seed=seed,
                               progress=progress, cache_dir=cache_dir, label=name or "", methods=methods)
    checkpoint = weights_path if weights_path.suffix == ".pt" else None
    if checkpoint is not None:
        metrics.update(_checkpoint_record(checkpoint))
    write_text(out, json.dumps(metrics, indent=1) + "\n", "metrics")
    if name:
        weights_file = _export_beside(checkpoint, weights) if checkpoint else weights_path
        update_manifest(root, name, _relative(checkpoint, root) if checkpoint else None,
                        _relative(weights_file, root), _relative(out, root))
    return metrics


def _checkpoint_record(checkpoint: Path) -> dict[str, Any]:
    """Config, epochs, training seconds and machine of a checkpoint (and ``forked_from`` if set)."""
    _, config, extra = load_checkpoint(checkpoint)
    record = {"config": config, "epochs_trained": extra.get("epoch"), "train_seconds": extra.get("seconds"),
              "machine": extra.get("machine")}
    if extra.get("forked_from"):  # its first epochs (and their seconds) are another run's
        record["forked_from"] = extra["forked_from"]
    return record


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root``; InputError if it lies outside (the manifest stores relative paths)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        raise InputError(f"{path} is outside the repository root {root}: the manifest stores "
                         "paths relative to it") from None


def _export_beside(checkpoint: Path, weights: Weights) -> Path:
    """``weights.npz`` beside ``checkpoint`` holding exactly ``weights`` (written if missing or stale).

    Training writes it only when a run finishes, so a checkpoint evaluated mid-run (or retrained
    since) would otherwise leave the manifest pointing at no file or at other weights.
    """
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
