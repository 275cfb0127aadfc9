"""The paper's own SDP-NN and LP-NN: download, conversion and verification, with pinned provenance.

Both are 784-500-10 ReLU networks ``scores = V relu(W x + b) + c`` (paper section 2). They are
published as TensorFlow 1 checkpoints ``models/nips_sdp.ckpt`` and ``models/nips_lp.ckpt`` in the
public GitHub repository ``alwaysbyx/NN-verification`` (which states that its models come from the
authors' code base), pinned here to one commit. :func:`download_networks` fetches the four files,
checks each against its pinned SHA-256 sum and size, reads the raw float32 tensors with the strict
pure-Python reader :mod:`certsdp.data.tensor_bundle` (block and tensor CRC32-C checked), transposes
the kernels from TensorFlow's ``(in, out)`` to certsdp's ``W`` (m x d) and ``V`` (k x m), checks
the pinned :meth:`Weights.content_hash` of the result (end to end: bytes -> arrays), and writes
``sdp_nn.npz``, ``lp_nn.npz`` (float32, the format of :meth:`Weights.save`) and ``SOURCE.md``.

The networks' folder is chosen by :func:`resolve_nets_dir`. The pinned values live in
:data:`PAPER_NETWORKS`; every function takes the manifest as a parameter (``None``: this module's
:data:`PAPER_NETWORKS`, looked up at call time) so tests can substitute synthetic checkpoints.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certsdp.atomic import write_bytes, write_text, write_with
from certsdp.data.tensor_bundle import read_bundle
from certsdp.errors import InputError
from certsdp.network.weights import WEIGHT_KEYS, Weights

ENV_VAR = "CERTSDP_NETS"
DEFAULT_CACHE_DIR = Path("~/.cache/certsdp/original_nets")
REPOSITORY = "alwaysbyx/NN-verification"
COMMIT = "7e3adc4f151dc15adf19b786ddd0a025dcdd48eb"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/"
CHECKPOINT_DIR = "checkpoints"  # downloaded TensorFlow files, kept beside the .npz files
SOURCE_FILE = "SOURCE.md"

#: certsdp weight -> (checkpoint tensor, transposed?). TF dense kernels are (in, out).
TENSOR_MAP: dict[str, tuple[str, bool]] = {
    "W": ("model1/dense/kernel", True),
    "b": ("model1/dense/bias", False),
    "V": ("model1/dense_1/kernel", True),
    "c": ("model1/dense_1/bias", False),
}

_CHUNK = 1 << 20
_HINT = f"run `certsdp nets download`, or set {ENV_VAR} or --dest to a folder holding the networks"


@dataclass(frozen=True)
class SourceFile:
    """One file of the source repository (``path`` relative to its root), pinned by SHA-256 and size."""

    path: str
    sha256: str
    size: int

    @property
    def name(self) -> str:
        """The file name (last path component)."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PaperNetwork:
    """A network to download: its checkpoint files and the pinned hash of the converted weights."""

    name: str
    title: str
    description: str
    index: SourceFile
    data: SourceFile
    content_hash: str
    paper_clean_error: str = "-"
    measured_clean_error: str = "-"

    @property
    def filename(self) -> str:
        """The converted network's file name, ``NAME.npz``."""
        return f"{self.name}.npz"

    @property
    def files(self) -> tuple[SourceFile, SourceFile]:
        """The checkpoint's index and data files."""
        return (self.index, self.data)


#: The paper's networks at :data:`COMMIT` of :data:`REPOSITORY`.
PAPER_NETWORKS: tuple[PaperNetwork, ...] = (
    PaperNetwork(
        name="sdp_nn",
        title="SDP-NN",
        description="trained with the SDP dual regularizer (the paper's Table 1, row SDP-NN)",
        index=SourceFile(
            "models/nips_sdp.ckpt.index",
            "4e6a3df1ed12dc34f9d6788900b73731c70b6e3b2b1bd0de2af4b639da1d093d", 239,
        ),
        data=SourceFile(
            "models/nips_sdp.ckpt.data-00000-of-00001",
            "5d1d9c3028e3dd89dc6578bb45ff5e1a533e2793022ce32256da22e0ca61aa6c", 1590040,
        ),
        content_hash="5210cd8fd1b68185e25b385f03b39ad99a2f94fbb0e7550e3d71471dbf1bd847",
        paper_clean_error="4.2%",
        measured_clean_error="4.18%",
    ),
    PaperNetwork(
        name="lp_nn",
        title="LP-NN",
        description="trained by Wong & Kolter with their LP objective, same architecture (Table 1, LP-NN)",
        index=SourceFile(
            "models/nips_lp.ckpt.index",
            "ccb2b82fd486b3f2aeeae13aca25b937787881a7ca53b10a8e1ef16da9c0fbfa", 239,
        ),
        data=SourceFile(
            "models/nips_lp.ckpt.data-00000-of-00001",
            "8cdaf68d3d240465fb4ed580ad25fa21f1b7d9444a3de1d22ae97ae86db51e48", 1590040,
        ),
        content_hash="fcc53977fafa2f666f2262001a32fce5a61af43054e7639128ad8ecd654c8450",
        paper_clean_error="- (not reported)",
        measured_clean_error="8.73%",
    ),
)


def resolve_nets_dir(dest: str | Path | None = None) -> Path:
    """The networks' folder: ``dest`` if given, else ``$CERTSDP_NETS``, else a default.

    The default is ``<repository>/../shared/data/original_nets`` when certsdp runs from a checkout
    (a ``pyproject.toml`` beside the package) whose sibling ``shared/data`` folder exists, else
    ``~/.cache/certsdp/original_nets``. ``~`` is expanded; the folder need not exist.
    """
    if dest is not None and str(dest) != "":
        return Path(dest).expanduser()
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser()
    root = Path(__file__).resolve().parents[2]
    shared = root.parent / "shared" / "data"
    if (root / "pyproject.toml").is_file() and shared.is_dir():
        return shared / "original_nets"
    return DEFAULT_CACHE_DIR.expanduser()


def _verified_bytes(path: Path, pinned: SourceFile) -> bytes | None:
    """The bytes of ``path`` if it has the pinned size and SHA-256, else ``None``."""
    try:
        if path.stat().st_size != pinned.size:
            return None
        blob = path.read_bytes()
    except OSError:
        return None
    return blob if hashlib.sha256(blob).hexdigest() == pinned.sha256 else None


def convert_checkpoint(index: bytes, data: bytes, what: str = "checkpoint") -> Weights:
    """The :class:`Weights` held in a tensor-bundle checkpoint (see :data:`TENSOR_MAP`).

    Kernels are transposed from TensorFlow's ``(in, out)`` layout; the float32 values are held
    exactly in float64. Raises :class:`InputError` on a corrupt bundle or missing tensors.
    """
    tensors = read_bundle(index, data, what)
    missing = [tensor for tensor, _ in TENSOR_MAP.values() if tensor not in tensors]
    if missing:
        raise InputError(f"{what} lacks the tensors {', '.join(missing)} (has {', '.join(sorted(tensors))})")
    arrays = {}
    for key, (tensor, transpose) in TENSOR_MAP.items():
        arr = tensors[tensor].astype(np.float64)
        arrays[key] = arr.T if transpose else arr
    try:
        return Weights(**arrays)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None


def _save_float32(weights: Weights, path: Path) -> None:
    """Write ``weights`` atomically in the ``.npz`` format of :meth:`Weights.save` (float32, C order)."""
    arrays = {key: np.ascontiguousarray(getattr(weights, key), dtype=np.float32) for key in WEIGHT_KEYS}
    write_with(path, lambda handle: np.savez(handle, **arrays), what="network")


def _download(url: str, pinned: SourceFile) -> bytes:
    """The bytes at ``url``, refused unless their size and SHA-256 are the pinned ones.

    The download is held in memory (the files are small) and stops as soon as it exceeds the pinned
    size, so nothing is written before it is verified.
    """
    chunks, size = [], 0
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > pinned.size:
                    raise InputError(f"downloaded {url} is larger than the pinned {pinned.size} bytes")
                chunks.append(chunk)
    except InputError:
        raise
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        raise InputError(f"could not download {url}: {_reason(exc)}") from None
    blob = b"".join(chunks)
    digest = hashlib.sha256(blob).hexdigest()
    if size != pinned.size or digest != pinned.sha256:
        raise InputError(
            f"downloaded {url} has {size} bytes and sha256 {digest}, expected {pinned.size} bytes and "
            f"sha256 {pinned.sha256}; not saved"
        )
    return blob


def _reason(exc: BaseException) -> str:
    """Why a download failed, on one line."""
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        text = str(exc.reason)
    else:
        text = str(exc)
    return " ".join(text.split()) or type(exc).__name__


def _fetch_checkpoint(
    net: PaperNetwork, folder: Path, base: str, force: bool, log: Callable[[str], None]
) -> tuple[Weights, dict[Path, bytes]]:
    """``net``'s weights, from verified files in ``folder`` or downloaded ones, and the downloads.

    Returns the converted weights and ``{path: bytes}`` of the files downloaded (not yet written).
    """
    blobs, fresh = [], {}
    for pinned in net.files:
        target = folder / pinned.name
        blob = None if force else _verified_bytes(target, pinned)
        if blob is None:
            blob = fresh[target] = _download(base + pinned.path, pinned)
            log(f"downloaded  {CHECKPOINT_DIR}/{pinned.name} ({pinned.size} bytes, sha256 verified)")
        else:
            log(f"present     {CHECKPOINT_DIR}/{pinned.name} (sha256 verified)")
        blobs.append(blob)
    return convert_checkpoint(blobs[0], blobs[1], str(folder / net.index.name.removesuffix(".index"))), fresh


def _network_ok(path: Path, net: PaperNetwork) -> tuple[bool, str]:
    """Whether ``path`` holds ``net`` (pinned content hash); the reason when it does not."""
    if not path.is_file():
        return False, "not found"
    try:
        found = Weights.load(path).content_hash()
    except InputError as exc:
        return False, str(exc)
    if found != net.content_hash:
        return False, f"content hash {found[:16]}..., expected {net.content_hash[:16]}..."
    return True, ""


def download_networks(
    dest: str | Path | None = None,
    base_url: str = DEFAULT_BASE_URL,
    force: bool = False,
    networks: Sequence[PaperNetwork] | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Download, verify and convert the paper's networks into ``dest`` (see :func:`resolve_nets_dir`).

    Each checkpoint file is fetched from ``base_url + path`` (``https://`` or ``file://``) into
    memory and refused unless its size and SHA-256 are the pinned ones; it is converted, and the
    network must match its pinned content hash; only then are the checkpoint files written to
    ``dest/checkpoints/`` and the network to ``NAME.npz`` (each atomically). Networks (and
    checkpoint files) already present and verified are skipped unless ``force``. ``SOURCE.md`` is
    written with the first converted network, or when it is absent. ``log`` gets one line per file.

    Returns:
        The networks' folder.

    Raises:
        InputError: a download fails, a hash or size is wrong, a checkpoint is corrupt, or a file
            cannot be written. Nothing unverified or partial is written (not even a folder).
    """
    networks = PAPER_NETWORKS if networks is None else networks
    folder = resolve_nets_dir(dest)
    say = log if log is not None else (lambda line: None)
    base = base_url if base_url.endswith("/") else base_url + "/"
    wrote_source = False
    for net in networks:
        target = folder / net.filename
        if not force and _network_ok(target, net)[0]:
            say(f"present     {net.filename} (content hash verified)")
            continue
        weights, downloaded = _fetch_checkpoint(net, folder / CHECKPOINT_DIR, base, force, say)
        if weights.content_hash() != net.content_hash:
            raise InputError(
                f"{net.title} converted from {net.index.path} has content hash {weights.content_hash()}, "
                f"expected {net.content_hash}; not saved"
            )
        for path, blob in downloaded.items():
            write_bytes(path, blob, what="checkpoint file")
        _save_float32(weights, target)
        say(f"converted   {net.filename} (W {weights.m}x{weights.d}, V {weights.k}x{weights.m}, "
            "content hash verified)")
        if not wrote_source:
            wrote_source = _write_source(folder, networks, say)
    if not wrote_source and not (folder / SOURCE_FILE).is_file():
        _write_source(folder, networks, say)
    return folder


def _write_source(folder: Path, networks: Sequence[PaperNetwork], log: Callable[[str], None]) -> bool:
    write_text(folder / SOURCE_FILE, source_markdown(networks), what="provenance file")
    log(f"wrote       {SOURCE_FILE}")
    return True


@dataclass(frozen=True)
class NetworkCheck:
    """State of one file: ``status`` is ``"OK"``, ``"MISSING"`` or ``"CORRUPT"``."""

    name: str
    path: Path
    status: str
    detail: str = ""
    required: bool = True


def check_networks(
    dest: str | Path | None = None, networks: Sequence[PaperNetwork] | None = None
) -> list[NetworkCheck]:
    """Check the networks in ``dest`` against their pinned content hashes, without raising.

    The downloaded checkpoint files are checked too when present (``required=False``: the
    converted ``.npz`` files are what certsdp uses).
    """
    networks = PAPER_NETWORKS if networks is None else networks
    folder = resolve_nets_dir(dest)
    results = []
    for net in networks:
        path = folder / net.filename
        ok, reason = _network_ok(path, net)
        status = "OK" if ok else ("MISSING" if reason == "not found" else "CORRUPT")
        results.append(NetworkCheck(net.filename, path, status, reason or net.content_hash[:16] + "..."))
        for pinned in net.files:
            path = folder / CHECKPOINT_DIR / pinned.name
            name = f"{CHECKPOINT_DIR}/{pinned.name}"
            if not path.is_file():
                results.append(NetworkCheck(name, path, "MISSING", "not downloaded", required=False))
            elif _verified_bytes(path, pinned) is not None:
                results.append(NetworkCheck(name, path, "OK", f"sha256 {pinned.sha256[:16]}...", False))
            else:
                results.append(NetworkCheck(name, path, "CORRUPT", "size or sha256 differs", False))
    return results


def load_paper_network(name: str, dest: str | Path | None = None) -> Weights:
    """Load ``"sdp_nn"`` or ``"lp_nn"`` from :func:`resolve_nets_dir`, checking its content hash."""
    nets = {net.name: net for net in PAPER_NETWORKS}
    if name not in nets:
        raise InputError(f"unknown paper network {name!r}; expected one of {', '.join(nets)}")
    path = resolve_nets_dir(dest) / nets[name].filename
    if not path.is_file():
        raise InputError(f"weights file not found: {path}; {_HINT}")
    weights = Weights.load(path)
    if weights.content_hash() != nets[name].content_hash:
        raise InputError(f"{path} is not the paper's {nets[name].title} (content hash differs); {_HINT}")
    return weights


def source_markdown(networks: Sequence[PaperNetwork] | None = None) -> str:
    """The ``SOURCE.md`` written beside the networks: where they come from and what was checked."""
    networks = PAPER_NETWORKS if networks is None else networks
    rows = "\n".join(
        f"| {net.filename} | {net.title}: {net.description} | {net.paper_clean_error} "
        f"| {net.measured_clean_error} |"
        for net in networks
    )
    hashes = "\n".join(f"- `{net.filename}`: `{net.content_hash}`" for net in networks)
    files = "\n".join(
        f"| `{pinned.path}` | {pinned.size} | `{pinned.sha256}` |" for net in networks for pinned in net.files
    )
    mapping = "\n".join(
        f"- `{key}` = `{tensor}`" + (", transposed" if transpose else "")
        for key, (tensor, transpose) in TENSOR_MAP.items()
    )
    return f"""# The paper's own trained networks

Written by `certsdp nets download`. One-hidden-layer ReLU networks in certsdp's `.npz` format
(float32 `W` (m x d), `b` (m), `V` (k x m), `c` (k)), so that `scores = V @ relu(W @ x + b) + c`,
with `x` the MNIST image flattened row-major and scaled to [0, 1].

| file | network | clean error (paper) | clean error (certsdp, 10,000 MNIST test images) |
| --- | --- | --- | --- |
{rows}

## Provenance

TensorFlow 1 checkpoints in the public GitHub repository `{REPOSITORY}`,
commit `{COMMIT}` (the repository states that its models come from the authors' code base),
at `{DEFAULT_BASE_URL}<file>`. Every downloaded file, from there or from a mirror given with
`--base-url`, was checked against these sizes and SHA-256 sums:

| file | bytes | sha256 |
| --- | --- | --- |
{files}

## Conversion

The raw float32 tensors were read from the data files at the offsets given by the index files
(a TensorFlow tensor bundle, read without TensorFlow; every block and tensor CRC32-C checked),
and the dense kernels transposed from TensorFlow's (in, out) layout to certsdp's (out, in):

{mapping}

The converted weights match these pinned content hashes (`certsdp.network.weights.Weights.content_hash`,
SHA-256 of the float64 values of the float32 tensors):

{hashes}
"""
