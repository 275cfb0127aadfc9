"""Attack reports cached on disk, so that a long run resumes without redoing finished attacks.

The notebooks' ``full`` profile attacks all 10,000 test images at several radii for every network
(about an hour of PGD on a 2-core CPU for Figure 2 alone). :func:`cached_attack_report` runs
:func:`certsdp.attacks.report.attack_report` once per distinct question and stores the JSON report; an
interrupted notebook, or another notebook asking the same question (Table 1 and Figure 2 both attack
SDP-NN at eps = 0.1), reads it back instead, and each attack prints one line as it finishes.

The key is the SHA-256 of everything the report depends on: the network's parameters (values, dtype,
device type), the attacked inputs and labels, eps, the attack with its options, the clip range, the
seed, the examples' indices when a subset is attacked (below), and the source of the attack code
(:func:`code_version`: any change to it starts a fresh cache, so a fixed attack can never serve an old
result). ``batch_size`` is not part of it: the report does not depend on it (random starts are drawn
per example). A cache file that is
unreadable, or whose stored key or example count does not match, is ignored and overwritten. Attacks
give *lower* bounds on the robust error; nothing here touches a certificate.

Subsets: ``indices`` names each attacked row's index in the whole data set, and its random starts
are drawn from ``(seed, index)`` (:func:`certsdp.attacks.report.example_noise`), exactly as when the
whole set is attacked. So attacking only the examples whose outcome is still open (the experiments
skip certified, misclassified and already fooled ones) gives each of them the report it has in the
attack of everything.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from certsdp.atomic import write_text
from certsdp.attacks.base import Attack
from certsdp.attacks.report import attack_report, example_noise, fooled_at, make_attack
from certsdp.errors import InputError
from certsdp.validation import check_int

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CODE_SOURCES = ("attacks/**/*.py", "network/margins.py", "numerics/box.py")
"""The sources an attack report depends on, relative to the ``certsdp`` package: the attacks, the
margins they rank and step by, and the box rule. The network enters the key through its parameters
only: after changing a network class's ``forward``, clear the cache."""


def code_files() -> list[Path]:
    """The files of :data:`CODE_SOURCES`, in path order."""
    return sorted({path for pattern in CODE_SOURCES for path in PACKAGE_DIR.glob(pattern)})


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 of the attack code (:func:`code_files`: each file's path in the package and bytes)."""
    h = hashlib.sha256()
    for path in code_files():
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _array_hash(a: Any) -> str:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def network_hash(net: nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes, values, device type)."""
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(f"{name}:{tensor.device.type}:".encode())
        h.update(_array_hash(tensor).encode())
    return h.hexdigest()


def attack_key(net: nn.Module, X: Any, y: Any, eps: float, attack: str, clip: Any, seed: int,
               options: dict[str, Any], indices: np.ndarray | None = None) -> dict[str, Any]:
    """The fields that determine an attack report (see the module docstring)."""
    return {
        "network": network_hash(net),
        "inputs": _array_hash(X),
        "labels": _array_hash(y),
        "eps": float(eps),
        "attack": attack,
        "clip": None if clip is None else [float(c) for c in clip],
        "seed": int(seed),
        "indices": None if indices is None else _array_hash(indices),
        "options": json.loads(json.dumps(options, sort_keys=True, default=str)),  # as read back from disk
        "code": code_version(),
    }


def cached_attack_report(
    net: nn.Module,
    X: Any,
    y: Any,
    eps: float,
    attack: str,
    *,
    cache_dir: str | Path | None,
    clip: tuple[float, float] | None = None,
    seed: int = 0,
    batch_size: int = 500,
    label: str = "",
    log: Callable[[str], None] | None = print,
    progress: bool = False,
    indices: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`certsdp.attacks.report.attack_report`, stored in ``cache_dir`` (``None``: no cache).

    Returns the same report, with ``"cached": True`` when it was read back. ``log`` (``print`` by
    default, ``None`` for silence) receives one line per call: what was attacked, the error, and the
    attack's own seconds; ``progress`` shows the attack's progress bar. ``indices`` (one distinct
    integer >= 0 per row of ``X``): the rows are these examples of a larger set, and each draws the
    random starts it draws there (:func:`indexed_report`). Bad arguments (the attack's options
    included) raise :class:`InputError` before anything is read or run.
    """
    configured = make_attack(attack, eps, clip, **options)  # bad arguments fail before the cache is read
    eps, clip = configured.eps, configured.clip
    seed = check_int("seed", seed, minimum=0)
    n = len(X)
    if indices is not None:
        indices = check_indices(indices, n)
    where = f"{label}: " if label else ""
    clip_text = "unclipped" if clip is None else f"clipped to [{clip[0]:g}, {clip[1]:g}]"
    path = None
    if cache_dir is not None:
        key = attack_key(net, X, y, eps, attack, clip, seed, options, indices)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        path = Path(cache_dir) / f"{attack}-{digest[:24]}.json"
        report = _read(path, key, n)
        if report is not None:
            if log is not None:
                log(f"{where}{attack} eps={eps:g} on {n} images, {clip_text}: error "
                    f"{100 * report['error']:.2f}% (cached, {report['seconds']:.1f} s when run)")
            return {**report, "cached": True}
    t0 = time.perf_counter()
    if indices is None:
        report = attack_report(net, X, y, eps, attack, clip=clip, seed=seed, batch_size=batch_size,
                               progress=progress, **options)
    else:
        report = indexed_report(configured, net, X, y, indices, seed=seed, batch_size=batch_size)
    if path is not None:
        _write(path, key, report)
    if log is not None:
        log(f"{where}{attack} eps={eps:g} on {n} images, {clip_text}: error {100 * report['error']:.2f}% "
            f"({time.perf_counter() - t0:.1f} s)")
    return {**report, "cached": False}


def check_indices(indices: Any, n: int) -> np.ndarray:
    """``indices`` as int64: one distinct integer >= 0 per attacked row; :class:`InputError` otherwise."""
    arr = np.asarray(indices)
    if arr.shape != (n,) or (n and (arr.dtype.kind not in "iu" or arr.min() < 0)):
        raise InputError(f"indices must be {n} integers >= 0, one per attacked example")
    arr = arr.astype(np.int64)
    if len(np.unique(arr)) != n:
        raise InputError("indices must be distinct")
    return arr


def indexed_report(attack: Attack, net: nn.Module, X: Any, y: Any, indices: np.ndarray, *, seed: int,
                   batch_size: int) -> dict[str, Any]:
    """:func:`certsdp.attacks.report.report_attack` on rows that are the examples ``indices`` of a larger
    set: row ``r`` draws its random starts from ``(seed, indices[r])``, as in the attack of the whole set.

    The summary has the same fields; ``n`` and ``fooled`` count the given rows.
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    x_all, y_all = attack.check_batch(net, X, y, batch_size)
    n, d = x_all.shape
    if n == 0:
        raise InputError("inputs: no examples to attack")
    fooled = np.zeros(n, dtype=bool)
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        noise = None
        if attack.n_random > 0 and attack.eps > 0:
            noise = torch.cat([example_noise(seed, int(i), int(i) + 1, attack.n_random, d)
                               for i in indices[start:stop]], dim=1)
        x_adv = attack.run(net, x_all[start:stop], y_all[start:stop], noise=noise)
        fooled[start:stop] = fooled_at(net, x_adv, y_all[start:stop]).cpu().numpy()
    if x_all.device.type == "cuda":
        torch.cuda.synchronize(x_all.device)
    return {"attack": attack.name, "eps": attack.eps, "n": int(n), "error": float(fooled.mean()),
            "seconds": time.perf_counter() - t0, "fooled": [bool(v) for v in fooled],
            "clip": list(attack.clip) if attack.clip is not None else None}


def _read(path: Path, key: dict[str, Any], n: int) -> dict[str, Any] | None:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    report = stored.get("report")
    if not isinstance(report, dict) or report.get("n") != n or len(report.get("fooled", ())) != n:
        return None
    return report


def _write(path: Path, key: dict[str, Any], report: dict[str, Any]) -> None:
    write_text(path, json.dumps({"key": key, "report": report}) + "\n", "attack cache file")
