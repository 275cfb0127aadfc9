"""``certsdp nets``: the tensor-bundle reader, and download + conversion of the paper's networks.

No network access: synthetic checkpoints (written by the small writer below, in TensorFlow's
tensor-bundle format) are served through ``file://`` URLs with a manifest pinned to them.
"""

from __future__ import annotations

import hashlib
import importlib
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from certsdp.data import paper_networks as pn
from certsdp.data.tensor_bundle import TABLE_MAGIC, crc32c, mask_crc, read_bundle
from certsdp.errors import InputError
from certsdp.network.weights import Weights

# the module, not the function that certsdp.cli exports under the same name
cli_main = importlib.import_module("certsdp.cli.main")

# --------------------------------------------------------------------------- a tensor-bundle writer


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _entry_proto(shape: tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    dims = b"".join(_field(2, 2, _varint(len(d)) + d) for d in (_field(1, 0, _varint(n)) for n in shape))
    return (_field(1, 0, _varint(1)) + _field(2, 2, _varint(len(dims)) + dims) + _field(4, 0, _varint(offset))
            + _field(5, 0, _varint(size)) + _field(6, 5, struct.pack("<I", crc)))


def _block(entries: list[tuple[bytes, bytes]], restart_interval: int, kind: int = 0) -> bytes:
    """A block with prefix-compressed entries and its 5-byte trailer."""
    body, restarts, last = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(body))
        else:
            while shared < min(len(key), len(last)) and key[shared] == last[shared]:
                shared += 1
        body += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        last = key
    body += b"".join(struct.pack("<I", r) for r in restarts or [0]) + struct.pack("<I", len(restarts or [0]))
    return bytes(body) + bytes([kind]) + struct.pack("<I", mask_crc(crc32c(bytes(body) + bytes([kind]))))


def write_bundle(tensors: dict[str, np.ndarray], per_block: int = 2, restart_interval: int = 2,
                 sizes: dict[str, int] | None = None) -> tuple[bytes, bytes]:
    """``(index, data)`` bytes of a TensorFlow tensor-bundle checkpoint of float32 ``tensors``.

    ``sizes`` overrides the byte size recorded for a tensor (to write an inconsistent entry).
    """
    data, entries = b"", [(b"", _field(1, 0, _varint(1)) + _field(3, 2, b"\x02\x08\x01"))]
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        size = (sizes or {}).get(name, len(raw))
        entries.append((name.encode(), _entry_proto(tensors[name].shape, len(data), size,
                                                     mask_crc(crc32c(raw)))))
        data += raw
    table, index_entries = b"", []
    for start in range(0, len(entries), per_block):
        chunk = entries[start : start + per_block]
        block = _block(chunk, restart_interval)
        index_entries.append((chunk[-1][0], _varint(len(table)) + _varint(len(block) - 5)))
        table += block
    handles = []
    for block in (_block([], 1), _block(index_entries, 1)):  # metaindex, index
        handles.append(_varint(len(table)) + _varint(len(block) - 5))
        table += block
    footer = b"".join(handles).ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC)
    return table + footer, data


# --------------------------------------------------------------------------- fixtures


def tiny_tensors(seed: int = 0, d: int = 6, m: int = 5, k: int = 3) -> dict[str, np.ndarray]:
    """Random float32 tensors named and laid out like the paper's checkpoints (kernels are (in, out))."""
    rng = np.random.default_rng(seed)
    return {
        "model1/dense/kernel": rng.standard_normal((d, m)).astype(np.float32),
        "model1/dense/bias": rng.standard_normal(m).astype(np.float32),
        "model1/dense_1/kernel": rng.standard_normal((m, k)).astype(np.float32),
        "model1/dense_1/bias": rng.standard_normal(k).astype(np.float32),
    }


def _pinned(path: str, blob: bytes) -> pn.SourceFile:
    return pn.SourceFile(path, hashlib.sha256(blob).hexdigest(), len(blob))


def make_mirror(root: Path, index: bytes, data: bytes, tensors: dict[str, np.ndarray],
                name: str = "tiny") -> pn.PaperNetwork:
    """Write ``models/NAME.ckpt.*`` under ``root``; return a manifest entry pinned to these bytes."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    files = {f"models/{name}.ckpt.index": index, f"models/{name}.ckpt.data-00000-of-00001": data}
    for path, blob in files.items():
        (root / path).write_bytes(blob)
    weights = Weights(W=tensors["model1/dense/kernel"].T, b=tensors["model1/dense/bias"],
                      V=tensors["model1/dense_1/kernel"].T, c=tensors["model1/dense_1/bias"])
    index_file, data_file = (_pinned(path, blob) for path, blob in files.items())
    return pn.PaperNetwork(name=f"{name}_nn", title=name.upper(), description="a synthetic network",
                           index=index_file, data=data_file, content_hash=weights.content_hash())


@pytest.fixture()
def mirror(tmp_path: Path) -> tuple[str, pn.PaperNetwork, dict[str, np.ndarray]]:
    """A ``file://`` base URL serving one synthetic checkpoint, its manifest entry and its tensors."""
    tensors = tiny_tensors()
    net = make_mirror(tmp_path / "mirror", *write_bundle(tensors), tensors)
    return (tmp_path / "mirror").as_uri() + "/", net, tensors


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``certsdp ARGV`` through the real entry point."""
    return cli_main.main(argv)


# --------------------------------------------------------------------------- the reader


def test_crc32c_matches_published_check_values() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720, B.4
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283
    crc = 0x12345678
    assert mask_crc(crc) == ((crc >> 15 | crc << 17) % 2**32 + 0xA282EAD8) % 2**32


@pytest.mark.parametrize(("per_block", "restart_interval"), [(1, 1), (2, 2), (5, 1), (5, 3), (5, 16)])
def test_read_bundle_round_trip(per_block: int, restart_interval: int) -> None:
    tensors = tiny_tensors(1) | {"scalar": np.float32(2.5).reshape(()), "empty": np.zeros((0, 3), np.float32)}
    found = read_bundle(*write_bundle(tensors, per_block, restart_interval))
    assert sorted(found) == sorted(tensors)
    for name, arr in tensors.items():
        assert found[name].dtype == np.float32 and found[name].shape == arr.shape
        assert found[name].tobytes() == arr.tobytes()


def _flip(blob: bytes, pos: int) -> bytes:
    return blob[:pos] + bytes([blob[pos] ^ 0x01]) + blob[pos + 1 :]


CORRUPTIONS = {
    "bad magic": (lambda i, d: (i[:-1] + b"\0", d), "bad magic number"),
    "index block bit flip": (lambda i, d: (_flip(i, 3), d), "checksum mismatch"),
    "index too short": (lambda i, d: (i[-20:], d), "too short"),
    "data bit flip": (lambda i, d: (i, _flip(d, len(d) // 2)), "CRC32-C mismatch"),
    "data truncated": (lambda i, d: (i, d[:-4]), "truncated"),
    "index truncated": (lambda i, d: (i[:40] + i[-48:], d), "runs past the end"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_read_bundle_refuses_corruption(case: str) -> None:
    corrupt, message = CORRUPTIONS[case]
    with pytest.raises(InputError, match=message):
        read_bundle(*corrupt(*write_bundle(tiny_tensors())))


def test_read_bundle_refuses_size_that_disagrees_with_shape() -> None:
    index, data = write_bundle(tiny_tensors(), sizes={"model1/dense/bias": 16})
    with pytest.raises(InputError, match="model1/dense/bias has 16 bytes, but shape"):
        read_bundle(index, data)


def test_read_bundle_refuses_compressed_blocks() -> None:
    index, data = write_bundle(tiny_tensors())
    table = _block([(b"", b"\x08\x01")], 1, kind=1)  # snappy
    footer = (_varint(0) + _varint(len(table) - 5)) * 2
    with pytest.raises(InputError, match="compressed"):
        read_bundle(table + footer.ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC), data)


# --------------------------------------------------------------------------- download and convert


def test_download_converts_and_skips_verified_files(mirror, tmp_path: Path) -> None:
    base, net, tensors = mirror
    dest, lines = tmp_path / "nets", []
    pn.download_networks(dest, base_url=base, networks=[net], log=lines.append)
    with np.load(dest / "tiny_nn.npz") as z:
        assert {key: z[key].dtype for key in "WbVc"} == dict.fromkeys("WbVc", np.float32)
        assert z["W"].tobytes() == np.ascontiguousarray(tensors["model1/dense/kernel"].T).tobytes()
        assert z["V"].tobytes() == np.ascontiguousarray(tensors["model1/dense_1/kernel"].T).tobytes()
        assert z["b"].tobytes() == tensors["model1/dense/bias"].tobytes()
        assert z["c"].tobytes() == tensors["model1/dense_1/bias"].tobytes()
    source = (dest / "SOURCE.md").read_text()
    assert pn.COMMIT in source and net.data.sha256 in source and net.content_hash in source
    assert [line.split()[0] for line in lines] == ["downloaded", "downloaded", "converted", "wrote"]
    assert sorted(p.name for p in dest.iterdir()) == ["SOURCE.md", "checkpoints", "tiny_nn.npz"]
    assert sorted(p.name for p in (dest / "checkpoints").iterdir()) == ["tiny.ckpt.data-00000-of-00001",
                                                                        "tiny.ckpt.index"]
    for path in (tmp_path / "mirror" / "models").iterdir():  # the source is gone: nothing is fetched
        path.unlink()
    lines.clear()
    pn.download_networks(dest, base_url=base, networks=[net], log=lines.append)
    assert lines == ["present     tiny_nn.npz (content hash verified)"]
    with pytest.raises(InputError, match="could not download"):
        pn.download_networks(dest, base_url=base, networks=[net], force=True)
    assert all(r.status == "OK" for r in pn.check_networks(dest, [net]))


def test_download_reuses_verified_checkpoints_for_a_corrupt_network(mirror, tmp_path: Path) -> None:
    base, net, _ = mirror
    dest = tmp_path / "nets"
    pn.download_networks(dest, base_url=base, networks=[net])
    (dest / "tiny_nn.npz").write_bytes(b"not a zip")
    assert pn.check_networks(dest, [net])[0].status == "CORRUPT"
    lines: list[str] = []
    pn.download_networks(dest, base_url="file:///nonexistent/", networks=[net], log=lines.append)
    assert [line.split()[0] for line in lines] == ["present", "present", "converted", "wrote"]
    assert pn.check_networks(dest, [net])[0].status == "OK"


def test_download_refuses_a_hash_mismatch(mirror, tmp_path: Path) -> None:
    base, net, _ = mirror
    bad = replace(net, data=pn.SourceFile(net.data.path, "0" * 64, net.data.size))
    dest = tmp_path / "nets"
    with pytest.raises(InputError, match=r"has \d+ bytes and sha256 [0-9a-f]{64}, expected .* not saved"):
        pn.download_networks(dest, base_url=base, networks=[bad])
    assert not dest.exists()


def test_download_refuses_a_file_larger_than_pinned(mirror, tmp_path: Path) -> None:
    base, net, _ = mirror
    small = replace(net, index=pn.SourceFile(net.index.path, net.index.sha256, 10))
    with pytest.raises(InputError, match="larger than the pinned 10 bytes"):
        pn.download_networks(tmp_path / "nets", base_url=base, networks=[small])
    assert not (tmp_path / "nets").exists()


@pytest.mark.parametrize(("case", "message"), [("data truncated", "truncated"),
                                               ("data bit flip", "CRC32-C mismatch"),
                                               ("index block bit flip", "checksum mismatch")])
def test_download_refuses_a_corrupt_bundle_even_with_matching_hashes(case: str, message: str,
                                                                     tmp_path: Path) -> None:
    index, data = CORRUPTIONS[case][0](*write_bundle(tiny_tensors()))
    net = make_mirror(tmp_path / "mirror", index, data, tiny_tensors())  # pinned to the corrupt bytes
    dest = tmp_path / "nets"
    with pytest.raises(InputError, match=message):
        pn.download_networks(dest, base_url=(tmp_path / "mirror").as_uri(), networks=[net])
    assert not dest.exists()


def test_download_refuses_a_wrong_content_hash(mirror, tmp_path: Path) -> None:
    base, net, _ = mirror
    wrong = replace(net, content_hash="f" * 64)
    with pytest.raises(InputError, match="content hash .* expected f{64}; not saved"):
        pn.download_networks(tmp_path / "nets", base_url=base, networks=[wrong])
    assert not (tmp_path / "nets").exists()


def test_download_refuses_a_checkpoint_without_the_network_tensors(tmp_path: Path) -> None:
    tensors = tiny_tensors()
    del tensors["model1/dense_1/bias"]
    index, data = write_bundle(tensors | {"other": np.ones(3, np.float32)})
    net = make_mirror(tmp_path / "mirror", index, data, tiny_tensors())
    with pytest.raises(InputError, match="lacks the tensors model1/dense_1/bias"):
        pn.download_networks(tmp_path / "nets", base_url=(tmp_path / "mirror").as_uri(), networks=[net])


# --------------------------------------------------------------------------- the command line


def test_cli_unreachable_url_is_one_line_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    url = (tmp_path / "no-such-mirror").as_uri()
    code = run_cli(["nets", "download", "--dest", str(tmp_path / "nets"), "--base-url", url], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("certsdp nets: error: could not download " + url)
    assert not (tmp_path / "nets").exists()


def test_cli_download_then_check(mirror, tmp_path: Path, monkeypatch, capsys) -> None:
    base, net, _ = mirror
    monkeypatch.setattr(pn, "PAPER_NETWORKS", (net,))
    dest = str(tmp_path / "nets")
    assert run_cli(["nets", "download", "--dest", dest, "--base-url", base], monkeypatch) == 0
    assert "converted   tiny_nn.npz" in capsys.readouterr().out
    assert run_cli(["nets", "check", "--dest", dest], monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.count("OK ") == 3 and "verified in" in out
    (tmp_path / "nets" / "checkpoints" / "tiny.ckpt.index").unlink()  # optional: still OK
    assert run_cli(["nets", "check", "--dest", dest], monkeypatch) == 0
    capsys.readouterr()
    Weights(W=np.eye(3), b=np.zeros(3), V=np.eye(3), c=np.zeros(3)).save(tmp_path / "nets" / "tiny_nn.npz")
    assert run_cli(["nets", "check", "--dest", dest], monkeypatch) == 2
    captured = capsys.readouterr()
    assert "CORRUPT  tiny_nn.npz" in captured.out
    assert captured.err.count("\n") == 1 and "run `certsdp nets download`" in captured.err


def test_cli_check_of_an_empty_folder_fails(tmp_path: Path, monkeypatch, capsys) -> None:
    assert run_cli(["nets", "check", "--dest", str(tmp_path)], monkeypatch) == 2
    captured = capsys.readouterr()
    assert "MISSING  sdp_nn.npz" in captured.out and "MISSING  lp_nn.npz" in captured.out
    assert captured.err.count("\n") == 1


# --------------------------------------------------------------------------- folders and the real files


def test_resolve_nets_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(pn.ENV_VAR, str(tmp_path / "env"))
    assert pn.resolve_nets_dir(tmp_path / "arg") == tmp_path / "arg"
    assert pn.resolve_nets_dir() == tmp_path / "env"
    monkeypatch.delenv(pn.ENV_VAR)
    root = Path(pn.__file__).resolve().parents[2]
    shared = root.parent / "shared" / "data"
    expected = shared / "original_nets" if shared.is_dir() else pn.DEFAULT_CACHE_DIR.expanduser()
    assert pn.resolve_nets_dir() == expected


def test_load_paper_network_names_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="weights file not found: .*certsdp nets download"):
        pn.load_paper_network("sdp_nn", tmp_path)
    with pytest.raises(InputError, match="unknown paper network"):
        pn.load_paper_network("at_nn", tmp_path)


def test_pinned_content_hashes_match_the_shared_networks(original_nets: Path) -> None:
    """The shared float32 files (converted by hand earlier) are the networks the manifest pins."""
    checks = [r for r in pn.check_networks(original_nets) if r.required]
    assert [(r.name, r.status) for r in checks] == [("sdp_nn.npz", "OK"), ("lp_nn.npz", "OK")]
    weights = pn.load_paper_network("sdp_nn", original_nets)
    assert (weights.m, weights.d, weights.k) == (500, 784, 10)


def test_a_failing_second_network_keeps_the_verified_first(mirror, tmp_path: Path) -> None:
    base, net, _ = mirror
    other = make_mirror(tmp_path / "mirror", *write_bundle(tiny_tensors(7)), tiny_tensors(7), name="other")
    dest = tmp_path / "nets"
    with pytest.raises(InputError, match="OTHER converted from models/other.ckpt.index has content hash"):
        pn.download_networks(dest, base_url=base, networks=[net, replace(other, content_hash="0" * 64)])
    assert sorted(p.name for p in dest.iterdir()) == ["SOURCE.md", "checkpoints", "tiny_nn.npz"]
    assert [(r.name, r.status) for r in pn.check_networks(dest, [net, other]) if r.required] == [
        ("tiny_nn.npz", "OK"), ("other_nn.npz", "MISSING")]
    pn.download_networks(dest, base_url=base, networks=[net, other])
    assert all(r.status == "OK" for r in pn.check_networks(dest, [net, other]))
