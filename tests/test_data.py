"""Tests for :mod:`certsdp.data` (MNIST, user inputs) and the ``certsdp data`` subcommand."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from certsdp.cli import main
from certsdp.data import download_mnist, load_inputs, load_mnist, resolve_data_dir
from certsdp.data import mnist as data
from certsdp.data.mnist import MNIST_MD5
from certsdp.errors import InputError

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _copy(src: Path, dst: Path, names=tuple(MNIST_MD5)) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(src / name, dst / name)
    return dst


def _flip_byte(path: Path, offset: int | None = None) -> None:
    raw = bytearray(path.read_bytes())
    i = len(raw) // 2 if offset is None else offset
    raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


# ---------------------------------------------------------------- resolve_data_dir


def test_resolve_data_dir_precedence(monkeypatch, tmp_path):
    """Argument, then $CERTSDP_DATA, then ../shared/data/mnist beside the repository, then the cache."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CERTSDP_DATA", raising=False)
    repo = tmp_path / "work" / "repo"
    package = repo / "certsdp"
    package.mkdir(parents=True)
    cache = tmp_path / "home" / ".cache" / "certsdp" / "mnist"
    assert resolve_data_dir(package_dir=package) == cache  # no pyproject.toml: not a repository
    (repo / "pyproject.toml").write_text("")
    assert resolve_data_dir(package_dir=package) == cache  # a repository without the shared folder
    shared = tmp_path / "work" / "shared" / "data" / "mnist"
    shared.mkdir(parents=True)
    assert resolve_data_dir(package_dir=package).resolve() == shared
    monkeypatch.setenv("CERTSDP_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(package_dir=package) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_default_data_dir_is_the_repository_layout(monkeypatch):
    """In this repository, with $CERTSDP_DATA unset, the MNIST folder is ../shared/data/mnist."""
    monkeypatch.delenv("CERTSDP_DATA", raising=False)
    repo = Path(__file__).resolve().parents[1]
    shared = repo.parent / "shared" / "data" / "mnist"
    if not shared.is_dir():
        pytest.skip(f"{shared} is absent")
    assert resolve_data_dir().resolve() == shared


# ---------------------------------------------------------------- load_mnist on the genuine files


def test_load_test_split(mnist_dir):
    X, y = load_mnist("test", data_dir=mnist_dir)
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    # every value is exactly pixel / 255 for an integer pixel
    pixels = np.rint(X * 255.0)
    assert np.array_equal(X, pixels.astype(np.float32) / np.float32(255.0))
    assert np.bincount(y, minlength=10).tolist() == TEST_COUNTS
    assert sum(TEST_COUNTS) == 10000
    assert abs(float(pixels.mean()) - 33.791) < 1e-3


def test_loaded_arrays_are_writable_copies(mnist_dir):
    """They were read-only views of the cache (torch.from_numpy warned); now each call gets its own."""
    X, y = load_mnist("test", data_dir=mnist_dir, limit=3)
    assert X.flags.writeable and y.flags.writeable
    X0, y0 = X.copy(), y.copy()
    X[:] = 7.0
    y[:] = 7
    X2, y2 = load_mnist("test", data_dir=mnist_dir, limit=3)
    assert np.array_equal(X2, X0) and np.array_equal(y2, y0)


def test_load_train_split(mnist_dir):
    X, y = load_mnist("train", data_dir=mnist_dir)
    assert X.shape == (60000, 784) and y.shape == (60000,)
    assert np.bincount(y, minlength=10).tolist() == TRAIN_COUNTS
    assert abs(float(X.mean(dtype=np.float64)) * 255.0 - 33.318) < 1e-3


def test_load_limit_cache_and_env(mnist_dir, monkeypatch):
    X, y = load_mnist("test", data_dir=mnist_dir)
    X5, y5 = load_mnist("test", data_dir=mnist_dir, limit=5)
    assert X5.shape == (5, 784) and np.array_equal(X5, X[:5]) and np.array_equal(y5, y[:5])
    assert load_mnist("test", data_dir=mnist_dir, limit=10**6)[0].shape == (10000, 784)
    assert load_mnist("test", data_dir=mnist_dir, limit=0)[0].shape == (0, 784)
    # decoded once (the cache keys on the files' state), then converted on every call
    assert data._decode_split.cache_info().currsize >= 1
    monkeypatch.setenv("CERTSDP_DATA", str(mnist_dir))
    assert np.array_equal(load_mnist()[0], X)
    with pytest.raises(InputError, match="limit"):
        load_mnist("test", data_dir=mnist_dir, limit=-1)
    with pytest.raises(InputError, match="split"):
        load_mnist("valid", data_dir=mnist_dir)


# ---------------------------------------------------------------- load_mnist errors


def test_missing_dir_mentions_env_var(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match="CERTSDP_DATA") as info:
        load_mnist("test", data_dir=missing)
    msg = str(info.value)
    assert str(missing) in msg and "certsdp data download" in msg and "\n" not in msg


def test_missing_file_is_named(mnist_dir, tmp_path):
    d = _copy(mnist_dir, tmp_path / "m", names=("t10k-labels-idx1-ubyte.gz",))
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte.gz") as info:
        load_mnist("test", data_dir=d)
    assert "CERTSDP_DATA" in str(info.value) and str(d) in str(info.value)


def test_corrupt_file_is_named(mnist_dir, tmp_path):
    d = _copy(mnist_dir, tmp_path / "m", names=data.SPLIT_FILES["test"])
    _flip_byte(d / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte.gz.*corrupt") as info:
        load_mnist("test", data_dir=d)
    assert str(d) in str(info.value) and MNIST_MD5["t10k-images-idx3-ubyte.gz"] in str(info.value)
    # without the MD5 check, the damaged gzip stream is still caught
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte.gz"):
        load_mnist("test", data_dir=d, verify=False)


def _write_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    path.write_bytes(gzip.compress(struct.pack(f">I{len(dims)}I", magic, *dims) + payload))


def test_malformed_idx(tmp_path):
    images, labels = (tmp_path / name for name in data.SPLIT_FILES["test"])
    _write_idx(labels, data.LABELS_MAGIC, (3,), bytes([0, 1, 2]))
    _write_idx(images, 0x00000801, (3, 28, 28), bytes(3 * 784))
    with pytest.raises(InputError, match="magic"):
        load_mnist("test", data_dir=tmp_path, verify=False)
    _write_idx(images, data.IMAGES_MAGIC, (3, 28, 28), bytes(2 * 784))
    with pytest.raises(InputError, match="expected"):
        load_mnist("test", data_dir=tmp_path, verify=False)
    _write_idx(images, data.IMAGES_MAGIC, (2, 28, 28), bytes(2 * 784))
    with pytest.raises(InputError, match="2 images but 3 labels"):
        load_mnist("test", data_dir=tmp_path, verify=False)
    images.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="gzip"):
        load_mnist("test", data_dir=tmp_path, verify=False)
    # a well-formed tiny file decodes; with verification it is rejected as not genuine
    _write_idx(images, data.IMAGES_MAGIC, (3, 28, 28), bytes(range(256)) * 9 + bytes(3 * 784 - 2304))
    X, y = load_mnist("test", data_dir=tmp_path, verify=False)
    assert X.shape == (3, 784) and y.tolist() == [0, 1, 2] and X[0, 255] == 1.0
    with pytest.raises(InputError, match="corrupt"):
        load_mnist("test", data_dir=tmp_path)


# ---------------------------------------------------------------- download_mnist


def test_download_from_file_url(mnist_dir, tmp_path):
    target = tmp_path / "dl" / "mnist"
    lines: list[str] = []
    assert download_mnist(target, base_url=mnist_dir.as_uri(), log=lines.append) == target
    assert sorted(p.name for p in target.iterdir()) == sorted(MNIST_MD5)
    assert all(line.startswith("downloaded") for line in lines) and len(lines) == 4
    X, y = load_mnist("test", data_dir=target)
    X0, y0 = load_mnist("test", data_dir=mnist_dir)
    assert np.array_equal(X, X0) and np.array_equal(y, y0)
    # good files are kept; a corrupt one is fetched again; --force fetches all
    _flip_byte(target / "t10k-labels-idx1-ubyte.gz", offset=100)
    lines.clear()
    download_mnist(target, base_url=mnist_dir.as_uri() + "/", log=lines.append)
    assert [line.split()[0] for line in lines] == ["present", "present", "present", "downloaded"]
    lines.clear()
    download_mnist(target, base_url=mnist_dir.as_uri(), force=True, log=lines.append)
    assert [line.split()[0] for line in lines] == ["downloaded"] * 4
    assert all(data.check_mnist(target)[i].status == "OK" for i in range(4))


def test_download_failures_leave_nothing(mnist_dir, tmp_path):
    source = _copy(mnist_dir, tmp_path / "src", names=("train-images-idx3-ubyte.gz",))
    target = tmp_path / "dst"
    with pytest.raises(InputError, match="could not download .*train-labels-idx1-ubyte.gz"):
        download_mnist(target, base_url=source.as_uri())
    assert [p.name for p in target.iterdir()] == ["train-images-idx3-ubyte.gz"]

    bad = _copy(mnist_dir, tmp_path / "bad", names=("train-images-idx3-ubyte.gz",))
    _flip_byte(bad / "train-images-idx3-ubyte.gz")
    target2 = tmp_path / "dst2"
    with pytest.raises(InputError, match="md5"):
        download_mnist(target2, base_url=bad.as_uri())
    assert list(target2.iterdir()) == []


# ---------------------------------------------------------------- load_inputs


def test_load_inputs_ok(tmp_path):
    p = tmp_path / "in.npz"
    np.savez(p, X=np.ones((3, 4), dtype=np.float32), y=np.array([0, 2, 1], dtype=np.uint8))
    X, y = load_inputs(p, d=4, k=3)
    assert X.dtype == np.float64 and X.shape == (3, 4)
    assert y.dtype == np.int64 and y.tolist() == [0, 2, 1]
    np.savez(p, X=np.zeros((2, 4)), y=np.array([1.0, 3.0]))  # integral floats are accepted
    assert load_inputs(p, d=4)[1].tolist() == [1, 3]


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"X": np.zeros((2, 4))}, "lacks y"),
        ({"y": np.zeros(2, dtype=int)}, "lacks X"),
        ({"X": np.zeros((2, 5)), "y": np.zeros(2, dtype=int)}, r"shape \(n, 4\)"),
        ({"X": np.zeros(4), "y": np.zeros(1, dtype=int)}, r"shape \(n, 4\)"),
        ({"X": np.zeros((0, 4)), "y": np.zeros(0, dtype=int)}, "no rows"),
        ({"X": np.zeros((2, 4)), "y": np.zeros(3, dtype=int)}, r"y must have shape \(2,\)"),
        ({"X": np.full((2, 4), np.nan), "y": np.zeros(2, dtype=int)}, "NaN or infinite"),
        ({"X": np.array([[0, 0, 0, np.inf]] * 2), "y": np.zeros(2, dtype=int)}, "NaN or infinite"),
        ({"X": np.array([["a"] * 4] * 2), "y": np.zeros(2, dtype=int)}, "real numbers"),
        ({"X": np.zeros((2, 4)), "y": np.array([0.5, 1.0])}, "integer"),
        ({"X": np.zeros((2, 4)), "y": np.array(["a", "b"])}, "integer"),
        ({"X": np.zeros((2, 4)), "y": np.array([0, -1])}, "negative"),
        ({"X": np.zeros((2, 4)), "y": np.array([0, 10])}, "labels >= k"),
    ],
)
def test_load_inputs_errors(tmp_path, arrays, match):
    p = tmp_path / "in.npz"
    np.savez(p, **arrays)
    with pytest.raises(InputError, match=match):
        load_inputs(p, d=4, k=10)


def test_load_inputs_bad_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_inputs(tmp_path / "missing.npz", d=4)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(InputError) as info:  # was numpy's pickle message
        load_inputs(text, d=4)
    assert str(info.value) == f"inputs file {text} is not an .npz archive"
    npy = tmp_path / "arr.npy"
    np.save(npy, np.zeros((2, 4)))
    with pytest.raises(InputError, match="not an .npz"):
        load_inputs(npy, d=4)
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, X=np.array([object()] * 4, dtype=object).reshape(1, 4), y=np.zeros(1, dtype=int))
    with pytest.raises(InputError, match="not a valid .npz"):
        load_inputs(pickled, d=4)


# ---------------------------------------------------------------- certsdp data (CLI)


def test_cli_check_good_dir(mnist_dir, capsys):
    assert main(["data", "check", "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[:4]] == ["OK"] * 4
    assert "60000 images" in out[0] and "10000 labels" in out[3]


def test_cli_check_bad_dirs(mnist_dir, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["data", "check", "--data-dir", str(missing)]) == 2
    captured = capsys.readouterr()
    assert [line.split()[0] for line in captured.out.splitlines()] == ["MISSING"] * 4
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("certsdp data: error:")
    assert "CERTSDP_DATA" in err and str(missing) in err

    d = _copy(mnist_dir, tmp_path / "m", names=data.SPLIT_FILES["test"])
    _flip_byte(d / "t10k-labels-idx1-ubyte.gz")
    assert main(["data", "check", "--data-dir", str(d)]) == 2
    captured = capsys.readouterr()
    status = {line.split()[1]: line.split()[0] for line in captured.out.splitlines()}
    assert status == {
        "train-images-idx3-ubyte.gz": "MISSING",
        "train-labels-idx1-ubyte.gz": "MISSING",
        "t10k-images-idx3-ubyte.gz": "OK",
        "t10k-labels-idx1-ubyte.gz": "CORRUPT",
    }
    assert "t10k-labels-idx1-ubyte.gz" in captured.err and "\n" not in captured.err.strip()


def test_cli_download(mnist_dir, tmp_path, capsys):
    target = tmp_path / "dl"
    assert main(["data", "download", "--data-dir", str(target), "--base-url", mnist_dir.as_uri()]) == 0
    assert main(["data", "check", "--data-dir", str(target)]) == 0
    bad = tmp_path / "empty"
    bad.mkdir()
    assert main(["data", "download", "--data-dir", str(target), "--base-url", bad.as_uri(), "--force"]) == 2
    assert "could not download" in capsys.readouterr().err


def test_data_dir_help_states_the_convention(capsys):
    assert main(["certify", "--help"]) == 0
    assert main(["data", "check", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    help_text = ("MNIST directory (default: $CERTSDP_DATA, else ../shared/data/mnist beside the repository, "
                 "else ~/.cache/certsdp/mnist)")
    assert out.count(help_text) == 2


def test_public_names():
    import certsdp
    import certsdp.data

    assert set(certsdp.data.__all__) == {"load_mnist", "load_inputs", "check_mnist", "download_mnist",
                                         "resolve_data_dir", "PAPER_NETWORKS", "check_networks",
                                         "download_networks", "load_paper_network", "resolve_nets_dir"}
    assert certsdp.load_inputs is load_inputs and certsdp.load_mnist is load_mnist
