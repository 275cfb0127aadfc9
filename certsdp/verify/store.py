"""The output folder of ``certsdp verify``: durable verdicts, resumable runs, one writer at a time.

Layout of ``DIR``:

``run.json``        the run's key (weights sha256, eps, box, inputs sha256, time limit); a re-run with
                    other arguments is refused, one with the same resumes
``verdicts.csv``    ``index,label,verdict,decided_by,upper,lower,seconds``, appended as verdicts
                    arrive, each batch written, flushed and fsynced
``witnesses.log``   append-only float64 records ``(index, x~)`` (fsynced *before* the verdict rows
                    they back, so a ``not_robust`` row always has its witness on disk)
``witnesses.npz``   ``index (n_w)``, ``X (n_w, d)``: the witnesses of the ``not_robust`` rows,
                    rewritten atomically from the log (:mod:`certsdp.atomic`), compressed; a folder
                    without the log (a committed one) rebuilds it from here to resume
``summary.json``    counts and fractions per verdict, rewritten atomically
``.lock``           held with ``flock`` while a run writes: a second run on the same folder is
                    refused; the kernel releases it when the process dies, even by SIGKILL

A kill at any moment leaves every complete line of ``verdicts.csv`` (and every complete log record)
intact; at most the last line or record is torn. Loading ignores it and truncates it away before
appending, so the file always parses. Anything else malformed is refused with one line.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from certsdp.atomic import write_json, write_with
from certsdp.errors import InputError
from certsdp.verify.pipeline import VERDICTS, PointResult

HEADER = "index,label,verdict,decided_by,upper,lower,seconds"
WITNESSES = "witnesses.npz"
RUN_FORMAT = "certsdp-verify/1"


def _fsync_append(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path``: one write, flushed and fsynced before returning."""
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _complete_part(path: Path, unit: int | None = None) -> bytes:
    """The file's bytes up to its last complete line (``unit`` None) or record; the rest is cut off."""
    data = path.read_bytes()
    keep = len(data) - len(data) % unit if unit else data.rfind(b"\n") + 1
    if keep < len(data):
        os.truncate(path, keep)
    return data[:keep]


def read_witnesses(folder: Path, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``index`` (int64) and ``X`` (float64, ``(n_w, d)``) of ``folder/witnesses.npz``; InputError when
    it is missing, unreadable or of the wrong shape."""
    path = folder / WITNESSES
    try:
        with np.load(path) as data:
            index = np.asarray(data["index"], dtype=np.int64)
            X = np.asarray(data["X"], dtype=np.float64)
    except (OSError, ValueError, KeyError):
        raise InputError(f"{path} is missing or unreadable; use another folder") from None
    if X.shape != (len(index), d):
        raise InputError(f"{path}: X has shape {X.shape}, expected ({len(index)}, {d})")
    return index, X


def format_row(r: PointResult) -> str:
    """One CSV line (floats in round-trip form, ``inf`` for no bound)."""
    return f"{r.index},{r.label},{r.verdict},{r.decided_by},{r.upper!r},{r.lower!r},{r.seconds:.6f}\n"


def parse_row(line: str) -> dict[str, Any]:
    """A CSV line as a dict; ValueError if it is not a verdict row."""
    fields = line.split(",")
    if len(fields) != 7 or fields[2] not in VERDICTS:
        raise ValueError(line)
    return {"index": int(fields[0]), "label": int(fields[1]), "verdict": fields[2], "decided_by": fields[3],
            "upper": float(fields[4]), "lower": float(fields[5]), "seconds": float(fields[6])}


class RunStore:
    """An opened, locked output folder; :meth:`open` checks it, :meth:`close` releases it."""

    def __init__(self, folder: Path, d: int, lock_fd: int) -> None:
        self.folder = folder
        self.d = d
        self._lock_fd = lock_fd
        self.rows: dict[int, dict[str, Any]] = {}
        self.witnesses: dict[int, np.ndarray] = {}

    @property
    def csv(self) -> Path:
        return self.folder / "verdicts.csv"

    @property
    def log(self) -> Path:
        return self.folder / "witnesses.log"

    @classmethod
    def open(cls, folder: str | Path, key: dict[str, Any], d: int) -> RunStore:
        """Create or resume ``folder`` for the run ``key``; InputError (one line) when it cannot."""
        path = Path(folder)
        if path.exists() and not path.is_dir():
            raise InputError(f"--out {path} is a file; give a folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"cannot use --out {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            raise InputError(f"--out {path} is in use by another certsdp verify run") from None
        store = cls(path, d, lock_fd)
        try:
            store._check_key(key)
            store._load()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release the lock (the files stay)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _check_key(self, key: dict[str, Any]) -> None:
        run = self.folder / "run.json"
        if not run.exists():
            if self.csv.exists():
                raise InputError(f"--out {self.folder} holds verdicts.csv without run.json; use another "
                                 "folder")
            write_json(run, {"format": RUN_FORMAT, "key": key}, "--out run.json")
            return
        try:
            stored = json.loads(run.read_text())
            old = stored["key"]
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(f"--out {self.folder}: run.json is unreadable; use another folder") from None
        differ = sorted(name for name in set(key) | set(old) if key.get(name) != old.get(name))
        if differ:
            raise InputError(f"--out {self.folder} holds a run with other arguments ({', '.join(differ)} "
                             "differ); use another folder or the same arguments to resume")

    def _load(self) -> None:
        """Read the finished verdicts and witnesses, cutting off a torn last line or record."""
        if not self.csv.exists() or self.csv.stat().st_size == 0:
            write_with(self.csv, lambda handle: handle.write((HEADER + "\n").encode()), "verdicts.csv")
        lines = _complete_part(self.csv).decode("utf-8", errors="replace").splitlines()
        if not lines:
            _fsync_append(self.csv, (HEADER + "\n").encode())
        elif lines[0] != HEADER:
            raise InputError(f"{self.csv} is not a verdicts file (header {lines[0][:60]!r})")
        for number, line in enumerate(lines[1:], start=2):
            try:
                row = parse_row(line)
            except ValueError:
                raise InputError(f"{self.csv} line {number} is malformed: {line[:60]!r}") from None
            self.rows.setdefault(row["index"], row)
        if not self.log.exists():
            self._seed_log()
        if self.log.exists():
            unit = 8 * (self.d + 1)
            records = np.frombuffer(_complete_part(self.log, unit), dtype=np.float64).reshape(-1, self.d + 1)
            for record in records:
                self.witnesses[int(record[0])] = record[1:].copy()
        missing = [i for i, row in self.rows.items()
                   if row["verdict"] == "not_robust" and i not in self.witnesses]
        if missing:
            raise InputError(f"{self.folder}: not_robust rows without a witness in witnesses.log "
                             f"(first: index {missing[0]}); use another folder")

    def _seed_log(self) -> None:
        """Rebuild ``witnesses.log`` from ``witnesses.npz`` (a committed folder keeps only the npz)."""
        if not (self.folder / WITNESSES).exists():
            return
        index, X = read_witnesses(self.folder, self.d)
        if len(index):
            _fsync_append(self.log, np.column_stack([index.astype(np.float64), X]).tobytes())

    def append(self, results: list[PointResult]) -> None:
        """Make ``results`` durable: their witnesses first, then their rows (each fsynced)."""
        new = [r for r in results if r.index not in self.rows]
        records = [np.concatenate([[float(r.index)], r.witness]) for r in new if r.witness is not None]
        if records:
            _fsync_append(self.log, np.asarray(records, dtype=np.float64).tobytes())
        if new:
            _fsync_append(self.csv, "".join(format_row(r) for r in new).encode())
        for r in new:
            self.rows[r.index] = parse_row(format_row(r).rstrip("\n"))
            if r.witness is not None:
                self.witnesses[r.index] = r.witness

    def write_witnesses(self) -> None:
        """``witnesses.npz`` of the ``not_robust`` rows, atomically."""
        index = np.array(sorted(i for i, row in self.rows.items() if row["verdict"] == "not_robust"),
                         dtype=np.int64)
        X = np.array([self.witnesses[i] for i in index], dtype=np.float64).reshape(len(index), self.d)
        write_with(self.folder / WITNESSES,
                   lambda handle: np.savez_compressed(handle, index=index, X=X), WITNESSES)

    def write_summary(self, info: dict[str, Any], n_points: int) -> dict[str, Any]:
        """``summary.json``: ``info`` plus counts and fractions per verdict over ``n_points``."""
        counts = {v: 0 for v in VERDICTS}
        decided_by: dict[str, int] = {}
        for row in self.rows.values():
            counts[row["verdict"]] += 1
            decided_by[row["decided_by"]] = decided_by.get(row["decided_by"], 0) + 1
        done = sum(counts.values())
        summary = {**info, "n": n_points, "done": done, "remaining": n_points - done, "counts": counts,
                   "fractions": {v: (c / done if done else 0.0) for v, c in counts.items()},
                   "decided_by": decided_by,
                   "point_seconds": math.fsum(row["seconds"] for row in self.rows.values())}
        write_json(self.folder / "summary.json", summary, "summary.json")
        return summary
