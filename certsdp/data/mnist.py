"""MNIST from the original IDX ``.gz`` files, and user input sets in ``.npz`` form.

The four genuine MNIST distribution files are looked up in a data directory chosen by
:func:`resolve_data_dir` (explicit argument, else the ``CERTSDP_DATA`` environment variable, else
``~/.cache/certsdp/mnist``). Each file's MD5 is checked against the published sum before use; the
result of that check is remembered per ``(path, size, mtime, ...)`` so that repeated loads in one
process only ``stat`` the files. Decoded arrays are cached in-process and handed out read-only.

Images are returned as float32 rows of 784 pixels (row-major 28 x 28) scaled to ``[0, 1]`` by
``pixel / 255``; labels as int64.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certsdp.errors import InputError

ENV_VAR = "CERTSDP_DATA"
DEFAULT_DATA_DIR = Path("~/.cache/certsdp/mnist")
DEFAULT_BASE_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

#: The genuine MNIST files and their published MD5 sums.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: ``split -> (images file, labels file)``.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SPLIT_SIZES = {"train": 60000, "test": 10000}

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IMAGE_SIDE = 28
NUM_CLASSES = 10

_HINT = f"set {ENV_VAR} or --data-dir to a folder holding the MNIST .gz files, or run `certsdp data download`"
_CHUNK = 1 << 20

# (resolved path, size, mtime_ns, ctime_ns, inode) -> md5 hex digest of the file's bytes.
_md5_cache: dict[tuple[str, int, int, int, int], str] = {}


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """Return the MNIST directory: ``data_dir`` if given, else ``$CERTSDP_DATA``, else the default.

    The default is ``~/.cache/certsdp/mnist``. ``~`` is expanded; the directory need not exist.
    """
    if data_dir is None or str(data_dir) == "":
        env = os.environ.get(ENV_VAR, "")
        data_dir = env if env else DEFAULT_DATA_DIR
    return Path(data_dir).expanduser()


def _stamp(path: Path) -> tuple[str, int, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def file_md5(path: str | Path) -> str:
    """MD5 hex digest of a file, remembered per ``(path, size, mtime, ctime, inode)``."""
    p = Path(path)
    key = _stamp(p)
    digest = _md5_cache.get(key)
    if digest is None:
        h = hashlib.md5()
        with p.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        digest = h.hexdigest()
        _md5_cache[key] = digest
    return digest


def _require_file(directory: Path, name: str) -> Path:
    """Path of MNIST file ``name`` in ``directory``, or :class:`InputError` if it is absent."""
    if not directory.is_dir():
        raise InputError(f"MNIST directory not found: {directory}; {_HINT}")
    path = directory / name
    if not path.is_file():
        raise InputError(f"MNIST file {name} not found in {directory}; {_HINT}")
    return path


def _verify(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` has the published MD5 of its MNIST file."""
    expected = MNIST_MD5[path.name]
    try:
        actual = file_md5(path)
    except OSError as exc:
        raise InputError(f"MNIST file {path.name} in {path.parent} cannot be read: {exc}") from None
    if actual != expected:
        raise InputError(
            f"MNIST file {path.name} in {path.parent} is corrupt (md5 {actual}, expected {expected}); "
            f"delete it and run `certsdp data download`, or set {ENV_VAR} or --data-dir to a good copy"
        )


def _read_idx(path: Path, magic: int, ndim: int) -> tuple[tuple[int, ...], np.ndarray]:
    """Decompress an IDX ``.gz`` file and check its magic number and size; return (dims, bytes)."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"MNIST file {path.name} in {path.parent} is not a valid gzip file: {exc}") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"MNIST file {path.name} in {path.parent} is truncated ({len(raw)} bytes)")
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        raise InputError(
            f"MNIST file {path.name} in {path.parent} has IDX magic number 0x{found:08x}, "
            f"expected 0x{magic:08x}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise InputError(
            f"MNIST file {path.name} in {path.parent} has {len(raw)} bytes after decompression, "
            f"expected {expected} for dimensions {dims}"
        )
    return dims, np.frombuffer(raw, dtype=np.uint8, offset=header)


@functools.lru_cache(maxsize=4)
def _decode_split(
    images_path: str, labels_path: str, stamps: tuple[tuple[str, int, int, int, int], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one split into read-only arrays; ``stamps`` only keys the cache to the files' state."""
    del stamps
    ipath, lpath = Path(images_path), Path(labels_path)
    dims, pixels = _read_idx(ipath, IMAGES_MAGIC, 3)
    n, rows, cols = dims
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise InputError(
            f"MNIST file {ipath.name} in {ipath.parent} holds {rows} x {cols} images, "
            f"expected {IMAGE_SIDE} x {IMAGE_SIDE}"
        )
    (n_labels,), labels = _read_idx(lpath, LABELS_MAGIC, 1)
    if n_labels != n:
        raise InputError(
            f"MNIST files {ipath.name} and {lpath.name} in {ipath.parent} disagree: "
            f"{n} images but {n_labels} labels"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise InputError(
            f"MNIST file {lpath.name} in {lpath.parent} has label {int(labels.max())} outside 0..9"
        )
    X = pixels.reshape(n, rows * cols).astype(np.float32) / np.float32(255.0)
    y = labels.astype(np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def load_mnist(
    split: str = "test",
    data_dir: str | Path | None = None,
    limit: int | None = None,
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST split as ``(X, y)``.

    Args:
        split: ``"train"`` (60,000 examples) or ``"test"`` (10,000 examples).
        data_dir: directory holding the ``.gz`` files; see :func:`resolve_data_dir`.
        limit: if given, return only the first ``limit`` examples (at most all of them).
        verify: check each file's MD5 against the published sum (cached per file state).

    Returns:
        ``X`` float32 ``(n, 784)`` with values ``pixel / 255`` in ``[0, 1]`` (row-major 28 x 28),
        and ``y`` int64 ``(n,)`` with labels in ``0..9``. Both are **read-only** views of an
        in-process cache; call ``.copy()`` before modifying them.

    Raises:
        InputError: unknown split, bad ``limit``, missing directory or file, MD5 mismatch, or a
            malformed IDX file.
    """
    if split not in SPLIT_FILES:
        raise InputError(f"unknown MNIST split {split!r}; expected 'train' or 'test'")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int | np.integer):
            raise InputError(f"limit must be an integer or None, got {limit!r}")
        if limit < 0:
            raise InputError(f"limit must be non-negative, got {limit}")
    directory = resolve_data_dir(data_dir)
    paths = [_require_file(directory, name) for name in SPLIT_FILES[split]]
    if verify:
        for path in paths:
            _verify(path)
    try:
        stamps = tuple(_stamp(path) for path in paths)
    except OSError as exc:
        raise InputError(f"cannot read MNIST files in {directory}: {exc}") from None
    X, y = _decode_split(stamps[0][0], stamps[1][0], stamps)
    if limit is not None:
        X, y = X[:limit], y[:limit]
    return X, y


@dataclass(frozen=True)
class FileCheck:
    """State of one MNIST file: ``status`` is ``"OK"``, ``"MISSING"`` or ``"CORRUPT"``."""

    name: str
    path: Path
    status: str
    count: int | None = None
    detail: str = ""


def _idx_count(path: Path) -> int:
    """Number of items in an IDX ``.gz`` file, from its header."""
    with gzip.open(path, "rb") as f:
        header = f.read(8)
    return int(struct.unpack(">I", header[4:8])[0])


def check_mnist(data_dir: str | Path | None = None) -> list[FileCheck]:
    """Check the four MNIST files in ``data_dir`` (see :func:`resolve_data_dir`) without raising."""
    directory = resolve_data_dir(data_dir)
    results = []
    for name, expected in MNIST_MD5.items():
        path = directory / name
        if not path.is_file():
            results.append(FileCheck(name, path, "MISSING", detail=f"not found in {directory}"))
            continue
        try:
            actual = file_md5(path)
        except OSError as exc:
            results.append(FileCheck(name, path, "CORRUPT", detail=f"cannot be read: {exc}"))
            continue
        if actual != expected:
            results.append(FileCheck(name, path, "CORRUPT", detail=f"md5 {actual}, expected {expected}"))
            continue
        results.append(FileCheck(name, path, "OK", count=_idx_count(path)))
    return results


def download_mnist(
    data_dir: str | Path | None = None,
    base_url: str = DEFAULT_BASE_URL,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Download the four MNIST files into ``data_dir`` (see :func:`resolve_data_dir`).

    Files already present with the right MD5 are kept unless ``force``. Each file is fetched from
    ``base_url + name`` (``http(s)://`` or ``file://``), written to a temporary file in the same
    directory, MD5-checked, and only then renamed into place, so a failed download never leaves a
    partial or wrong file behind. ``log`` (if given) receives one line per file.

    Returns:
        The data directory.

    Raises:
        InputError: the directory cannot be created, a download fails, or a file's MD5 is wrong.
    """
    directory = resolve_data_dir(data_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create MNIST directory {directory}: {exc}") from None
    base = base_url if base_url.endswith("/") else base_url + "/"
    for name, expected in MNIST_MD5.items():
        target = directory / name
        if not force and target.is_file():
            try:
                if file_md5(target) == expected:
                    if log is not None:
                        log(f"present     {name}")
                    continue
            except OSError:
                pass
        url = base + name
        _fetch(url, target, expected)
        if log is not None:
            log(f"downloaded  {name}")
    return directory


def _fetch(url: str, target: Path, expected: str) -> None:
    """Fetch ``url`` to ``target`` atomically, checking its MD5 against ``expected``."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise InputError(f"cannot write to MNIST directory {target.parent}: {exc}") from None
    tmp = Path(tmp_name)
    try:
        h = hashlib.md5()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                while chunk := response.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise InputError(f"could not download {url}: {exc}") from None
        actual = h.hexdigest()
        if actual != expected:
            raise InputError(
                f"downloaded {url} has md5 {actual}, expected {expected}; not saved to {target.parent}"
            )
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise InputError(f"cannot write {target}: {exc}") from None
        _md5_cache[_stamp(target)] = actual
    finally:
        if tmp.exists():
            tmp.unlink()


def load_inputs(path: str | Path, d: int, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load user inputs from an ``.npz`` holding ``X`` (n x d) and integer labels ``y`` (n).

    Args:
        path: the ``.npz`` file.
        d: required input dimension (columns of ``X``).
        k: if given, labels must satisfy ``0 <= y < k``.

    Returns:
        ``X`` as float64 ``(n, d)`` and ``y`` as int64 ``(n,)``, with ``n >= 1``.

    Raises:
        InputError: missing file, not an ``.npz``, missing keys, wrong shapes, NaN/inf in ``X``,
            non-integer or negative labels, or (with ``k``) labels ``>= k``.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"inputs file not found: {p}")
    try:
        loaded = np.load(p, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise InputError(f"inputs file {p} is a .npy array, not an .npz archive with X and y")
        with loaded as z:
            missing = [key for key in ("X", "y") if key not in z.files]
            if missing:
                raise InputError(f"inputs file {p} lacks {', '.join(missing)} (has {z.files})")
            X_raw, y_raw = z["X"], z["y"]
    except InputError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled objects), OSError, ...
        raise InputError(f"inputs file {p} is not a valid .npz archive: {exc}") from None

    if X_raw.dtype.kind not in "biuf":
        raise InputError(f"inputs file {p}: X must be real numbers, got dtype {X_raw.dtype}")
    if X_raw.ndim != 2 or X_raw.shape[1] != d:
        raise InputError(f"inputs file {p}: X must have shape (n, {d}), got {X_raw.shape}")
    n = X_raw.shape[0]
    if n == 0:
        raise InputError(f"inputs file {p}: X has no rows")
    X = X_raw.astype(np.float64)
    if not np.all(np.isfinite(X)):
        bad = int(X.size - np.count_nonzero(np.isfinite(X)))
        raise InputError(f"inputs file {p}: X has {bad} NaN or infinite entries")

    if y_raw.shape != (n,):
        raise InputError(f"inputs file {p}: y must have shape ({n},) to match X, got {y_raw.shape}")
    if y_raw.dtype.kind in "iu":
        if y_raw.dtype.kind == "u" and y_raw.size and int(y_raw.max()) > np.iinfo(np.int64).max:
            raise InputError(f"inputs file {p}: y has labels too large for int64")
        y = y_raw.astype(np.int64)
    elif y_raw.dtype.kind == "f":
        if not np.all(np.isfinite(y_raw)) or not np.all(y_raw == np.round(y_raw)):
            raise InputError(f"inputs file {p}: y must hold integer class labels, got non-integer values")
        if y_raw.size and np.max(np.abs(y_raw)) > np.iinfo(np.int64).max:
            raise InputError(f"inputs file {p}: y has labels too large for int64")
        y = y_raw.astype(np.int64)
    else:
        raise InputError(f"inputs file {p}: y must hold integer class labels, got dtype {y_raw.dtype}")
    if np.any(y < 0):
        raise InputError(f"inputs file {p}: y has negative labels (min {int(y.min())})")
    if k is not None and np.any(y >= k):
        raise InputError(f"inputs file {p}: y has labels >= k = {k} (max {int(y.max())})")
    return X, y
