"""One entry point for network files: :func:`load_network` reads any of them as :class:`Weights`.

Accepted, recognised by content (the suffix only helps the messages):

* an ``.npz`` archive with ``W, b, V, c`` (:meth:`Weights.load`; numpy only);
* a certsdp checkpoint written by training (:func:`certsdp.network.checkpoint.load_checkpoint`,
  which verifies its hashes);
* a ``torch.save`` of the ``state_dict`` of ``nn.Sequential(Linear, ReLU, Linear)`` (keys
  ``0.weight, 0.bias, 2.weight, 2.bias``) or of a :class:`~certsdp.network.torch_model.TwoLayerNet`.

torch is imported only for the torch files, lazily in :func:`_load_torch_file`: that is the one
place it is done, so that certifying an ``.npz`` never imports torch.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from certsdp.data.npz import is_npy
from certsdp.errors import InputError
from certsdp.network.weights import NPZ_HINT, Weights

TORCH_SUFFIXES = (".pt", ".pth")


def load_network(path: str | Path) -> Weights:
    """:class:`Weights` from an ``.npz``, a certsdp ``.pt`` checkpoint or a torch ``state_dict`` file.

    Raises :class:`InputError` (one line) for a missing, unreadable or unsupported file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"weights file not found: {p}")
    try:
        if is_npy(p):
            raise InputError(f"weights file {p} is a .npy array{NPZ_HINT}")
        torch_file = _is_torch_zip(p) or (p.suffix in TORCH_SUFFIXES and not zipfile.is_zipfile(p))
    except OSError as exc:
        raise InputError(f"weights file {p} cannot be read: {exc.strerror or exc}") from None
    return _load_torch_file(p) if torch_file else Weights.load(p)


def _is_torch_zip(path: Path) -> bool:
    """Whether ``path`` is a ``torch.save`` zip (it holds ``<name>/data.pkl``; an ``.npz`` does not)."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _load_torch_file(path: Path) -> Weights:
    """The weights in a certsdp checkpoint or in a ``state_dict`` saved with ``torch.save``."""
    # the one lazy import of the package: torch only when a torch file is given
    from certsdp.network.checkpoint import load_checkpoint
    from certsdp.network.torch_model import read_torch_file, weights_from_state_dict

    payload = read_torch_file(path)
    if isinstance(payload, dict) and "format" in payload:
        return load_checkpoint(path)[0].to_weights()
    if not isinstance(payload, dict):
        raise InputError(f"torch file {path} holds a {type(payload).__name__}, not a certsdp checkpoint "
                         "or a state_dict")
    return weights_from_state_dict(payload, f"torch file {path}")
