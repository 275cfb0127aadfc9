"""certsdp.atomic: whole-or-nothing writes, one-line failures, concurrent writers never interleave."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from certsdp import atomic
from certsdp.errors import InputError


def test_write_json_roundtrip_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "r.json"
    atomic.write_json(target, {"a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2]}
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.json"]


def test_failed_writer_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "r.bin"
    atomic.write_bytes(target, b"old")

    def broken(handle) -> None:
        handle.write(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.bin"]


def test_nan_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write"):
        atomic.write_json(tmp_path / "r.json", {"x": float("nan")})


@pytest.mark.parametrize("make", ["parent_is_file", "pseudo_fs", "empty", "folder"])
def test_check_writable_refuses_in_one_line(tmp_path: Path, make: str) -> None:
    if make == "parent_is_file":
        (tmp_path / "f").write_text("x")
        path, expect = str(tmp_path / "f" / "r.json"), "is a file, not a folder"
    elif make == "pseudo_fs":
        path, expect = "/proc/certsdp-no-such/r.json", "cannot write"
    elif make == "empty":
        path, expect = "", "empty"
    else:
        path, expect = str(tmp_path), "is a folder"
    with pytest.raises(InputError, match=expect) as info:
        atomic.check_writable(path, "--out")
    assert "\n" not in str(info.value) and ".probe" not in str(info.value)


def _writer(path: str, tag: int) -> None:
    for i in range(40):
        atomic.write_text(path, f"{tag}:{i}:" + "x" * 50_000)


def test_concurrent_writers_leave_one_whole_version(tmp_path: Path) -> None:
    target = tmp_path / "shared.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(target), tag)) for tag in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    text = target.read_text()
    tag, i, body = text.split(":")
    assert body == "x" * 50_000 and tag in ("0", "1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.txt"]
