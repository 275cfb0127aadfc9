"""Training checkpoints: a network with its configuration and the state needed to resume, hashed whole.

A checkpoint is a ``torch.save`` dictionary (read back with ``weights_only=True``)::

    {"format": 2, "dims": (d, m, k), "state_dict": {...}, "config": {...}, "extra": {...},
     "weights_sha256": ..., "state_sha256": ...}

``config`` is a plain dict (``dataclasses.asdict`` of a training config), ``extra`` anything else
the trainer needs to continue (optimizer moments, dual vectors, pair weights, random states,
metrics). Two hashes are recorded:

* ``weights_sha256``: :meth:`certsdp.network.weights.Weights.content_hash` of the network;
* ``state_sha256`` (format 2): SHA-256 of a canonical serialisation of *every* other entry
  (:func:`payload_sha256`): tensors by dtype, shape and raw bytes, numbers exactly, dicts in key
  order. ``torch.load`` does not check the zip's CRCs, so without it a flipped byte in an Adam
  moment or a dual vector would load silently and resume a different run.

Format 1 (the checkpoints in ``results/``, written before ``state_sha256``) still loads for its
weights, which its ``weights_sha256`` verifies; its resume state cannot be verified, which
:attr:`Checkpoint.verified` says (the trainer refuses to resume or fork from it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from certsdp.atomic import atomic_path
from certsdp.errors import InputError
from certsdp.network.torch_model import TwoLayerNet

CHECKPOINT_FORMAT = 2
"""The format :func:`save_checkpoint` writes."""
READABLE_FORMATS = (1, 2)
STATE_HASH_KEY = "state_sha256"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read by :func:`read_checkpoint`.

    ``verified`` is true when the whole payload matched its recorded ``state_sha256`` (format 2);
    false for a format-1 file, whose weights alone are verified.
    """

    path: Path
    net: TwoLayerNet
    config: dict[str, Any]
    extra: dict[str, Any]
    format: int
    verified: bool


def _feed(h: Any, obj: Any) -> None:
    """Feed a canonical, type-tagged serialisation of ``obj`` to the hash ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        items = sorted(obj.items(), key=lambda kv: (type(kv[0]).__name__, repr(kv[0])))
        h.update(f"D{len(items)}:".encode())
        for key, val in items:
            _feed(h, key)
            _feed(h, val)
    elif isinstance(obj, list | tuple):
        h.update(f"L{len(obj)}:".encode())
        for val in obj:
            _feed(h, val)
    elif obj is None or isinstance(obj, bool):
        h.update(f"B{obj!r};".encode())
    elif isinstance(obj, int):
        h.update(f"I{obj};".encode())
    elif isinstance(obj, float):
        h.update(f"F{obj.hex()};".encode())
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        h.update(f"S{len(data)}:".encode())
        h.update(data)
    else:
        raise TypeError(f"a checkpoint cannot hold a {type(obj).__name__}")


def payload_sha256(payload: dict[str, Any]) -> str:
    """SHA-256 (hex) of every entry of ``payload`` except ``state_sha256`` itself."""
    h = hashlib.sha256()
    _feed(h, {key: val for key, val in payload.items() if key != STATE_HASH_KEY})
    return h.hexdigest()


def seal(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` as format 2 with its ``state_sha256`` (recomputed; for tools that edit a checkpoint)."""
    sealed = {key: val for key, val in payload.items() if key != STATE_HASH_KEY}
    sealed["format"] = CHECKPOINT_FORMAT
    sealed[STATE_HASH_KEY] = payload_sha256(sealed)
    return sealed


def save_checkpoint(
    path: str | Path, net: TwoLayerNet, config: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    """Write ``net`` with its training ``config`` and ``extra`` resume state (format 2, atomic)."""
    payload = seal({
        "format": CHECKPOINT_FORMAT,
        "dims": net.dims,
        "state_dict": {key: val.detach().cpu() for key, val in net.state_dict().items()},
        "config": dict(config),
        "extra": dict(extra or {}),
        "weights_sha256": net.to_weights().content_hash(),
    })
    with atomic_path(path, "checkpoint") as tmp:
        torch.save(payload, tmp)


def _read_payload(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise InputError(f"checkpoint not found: {p}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"checkpoint {p} could not be read: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") not in READABLE_FORMATS:
        raise InputError(f"checkpoint {p} is not a certsdp checkpoint (format 1 or 2)")
    return payload


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint. Raises :class:`InputError` if it is missing, malformed or corrupt.

    Format 2: the whole payload must match ``state_sha256``. Both formats: the weights must match
    ``weights_sha256``.
    """
    p = Path(path)
    payload = _read_payload(p)
    fmt = int(payload["format"])
    if fmt >= 2:
        try:
            recorded = payload[STATE_HASH_KEY]
            actual = payload_sha256(payload)
        except (KeyError, TypeError) as exc:
            raise InputError(f"checkpoint {p} is malformed: {type(exc).__name__}: {exc}") from None
        if actual != recorded:
            raise InputError(f"checkpoint {p} is corrupt: its contents do not match their recorded content "
                             f"hash ({STATE_HASH_KEY}); it cannot be used")
    try:
        net = TwoLayerNet(*payload["dims"])
        net.load_state_dict(payload["state_dict"])
        recorded = payload["weights_sha256"]
        config, extra = payload["config"], payload["extra"]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"checkpoint {p} is malformed: {type(exc).__name__}: {exc}") from None
    if net.to_weights().content_hash() != recorded:
        raise InputError(f"checkpoint {p}: weights do not match their recorded content hash")
    return Checkpoint(p, net, config, extra, fmt, verified=fmt >= 2)


def load_checkpoint(path: str | Path) -> tuple[TwoLayerNet, dict[str, Any], dict[str, Any]]:
    """Read a checkpoint (:func:`read_checkpoint`); returns ``(net, config, extra)``."""
    ckpt = read_checkpoint(path)
    return ckpt.net, ckpt.config, ckpt.extra
