"""MNIST from the original IDX ``.gz`` files: loading, checking and downloading them.

The four genuine MNIST distribution files are looked up in the data directory chosen by
:func:`resolve_data_dir`. Each file's MD5 is checked against the published sum before use; the
result of that check is remembered per ``(path, size, mtime, ...)`` so that repeated loads in one
process only ``stat`` the files. The decoded pixels are cached in-process; every call of
:func:`load_mnist` returns new, writable arrays.

Images are returned as float32 rows of 784 pixels (row-major 28 x 28) scaled to ``[0, 1]`` by
``pixel / 255``; labels as int64.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certsdp.atomic import atomic_path
from certsdp.errors import InputError
from certsdp.validation import check_int

ENV_VAR = "CERTSDP_DATA"
#: the MNIST folder of the repository's layout, relative to the repository root
REPOSITORY_DATA_DIR = Path("..") / "shared" / "data" / "mnist"
#: the MNIST folder when neither ``$CERTSDP_DATA`` nor the repository's folder is there
DEFAULT_DATA_DIR = Path("~/.cache/certsdp/mnist")
PACKAGE_DIR = Path(__file__).resolve().parents[1]
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


def repository_root(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The repository that holds the ``certsdp`` package: its parent if that has a ``pyproject.toml``."""
    root = package_dir.parent
    return root if (root / "pyproject.toml").is_file() else None


def resolve_data_dir(data_dir: str | Path | None = None, package_dir: Path = PACKAGE_DIR) -> Path:
    """The MNIST directory; this is the one data-folder convention of certsdp.

    In order: ``data_dir`` if given (and not empty); else ``$CERTSDP_DATA`` if set (and not empty);
    else ``../shared/data/mnist`` relative to the repository root if that folder exists (the
    repository's layout; the root is the parent of the ``certsdp`` package folder when it holds
    ``pyproject.toml``); else ``~/.cache/certsdp/mnist``. ``~`` is expanded; the returned directory
    need not exist.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser()
    root = repository_root(package_dir)
    if root is not None and (root / REPOSITORY_DATA_DIR).is_dir():
        return Path(os.path.normpath(root / REPOSITORY_DATA_DIR))
    return DEFAULT_DATA_DIR.expanduser()


def _stamp(path: Path) -> tuple[str, int, int, int, int]:
    """``(resolved path, size, mtime_ns, ctime_ns, inode)``: the state a cached result is valid for."""
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
    """Decode one split into read-only ``uint8`` arrays ``(pixels (n, 784), labels (n,))``.

    ``stamps`` only keys the cache to the files' state.
    """
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
    pixels = pixels.reshape(n, rows * cols)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


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
        and ``y`` int64 ``(n,)`` with labels in ``0..9``; new writable arrays on every call.

    Raises:
        InputError: unknown split, bad ``limit``, missing directory or file, MD5 mismatch, or a
            malformed IDX file.
    """
    if split not in SPLIT_FILES:
        raise InputError(f"unknown MNIST split {split!r}; expected 'train' or 'test'")
    if limit is not None:
        limit = check_int("limit", limit, minimum=0)
    directory = resolve_data_dir(data_dir)
    paths = [_require_file(directory, name) for name in SPLIT_FILES[split]]
    if verify:
        for path in paths:
            _verify(path)
    try:
        stamps = tuple(_stamp(path) for path in paths)
    except OSError as exc:
        raise InputError(f"cannot read MNIST files in {directory}: {exc}") from None
    pixels, labels = _decode_split(stamps[0][0], stamps[1][0], stamps)
    pixels, labels = pixels[:limit], labels[:limit]
    return pixels.astype(np.float32) / np.float32(255.0), labels.astype(np.int64)


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
    """Fetch ``url`` to ``target`` atomically; nothing is written unless its MD5 is ``expected``."""
    with atomic_path(target, "MNIST file") as tmp:
        h = hashlib.md5()
        try:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
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
    _md5_cache[_stamp(target)] = actual
