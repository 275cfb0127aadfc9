"""A whole run: the points not yet decided, on Dask or in this process, their verdicts made durable.

Execution:

* ``workers`` 0 or 1 and no scheduler: every point in this process, one after the other (tests,
  debugging);
* ``workers`` N > 1: a :class:`dask.distributed.LocalCluster` of N worker processes with one thread
  each (Dask's nanny also sets ``OMP_NUM_THREADS=1`` and friends in them);
* ``scheduler`` ADDRESS: an existing cluster, reached within :data:`CONNECT_TIMEOUT`; its workers must
  have certsdp installed.

The :class:`~certsdp.verify.pipeline.Verifier` (weights, settings, prepared bounds, the SDP pair
table) is sent to each worker once; each task is one point. Results are written as they arrive
(:class:`~certsdp.verify.store.RunStore`: witnesses, then rows, fsynced), and ``witnesses.npz`` and
``summary.json`` are rewritten atomically every :data:`REWRITE_SECONDS` and at the end. A re-run with
the same arguments skips the points already in ``verdicts.csv``.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from dask.distributed import Client, LocalCluster, as_completed
from tqdm import tqdm

import certsdp
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.verify.highs import highspy_version
from certsdp.verify.pipeline import PointResult, Verifier, VerifyConfig, verify_point
from certsdp.verify.store import RunStore

CONNECT_TIMEOUT = "3s"
REWRITE_SECONDS = 30.0

PointFunction = Callable[[Verifier, int, np.ndarray, int], PointResult]


def inputs_hash(indices: np.ndarray, X: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of the selected points: their dataset indices, float64 inputs and int64 labels."""
    h = hashlib.sha256()
    for arr in (np.asarray(indices, dtype=np.int64), np.asarray(X, dtype=np.float64),
                np.asarray(y, dtype=np.int64)):
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def run_key(weights: Weights, cfg: VerifyConfig, indices: np.ndarray, X: np.ndarray, y: np.ndarray) -> dict:
    """What identifies a run's folder: weights, eps, box (its exact ends), inputs and the time limit per
    point; a resume with any of them changed is refused. The attack settings and the certificates are
    not part of it: every verdict is proved on its own (a witness or a rigorous bound), so verdicts
    found with other settings stay true; they only change ``decided_by`` and the times."""
    box = "unclipped" if cfg.clip is None else f"clipped to [{cfg.clip[0]:.17g}, {cfg.clip[1]:.17g}]"
    return {"weights_sha256": weights.content_hash(), "eps": cfg.eps, "box": box,
            "inputs_sha256": inputs_hash(indices, X, y), "n": int(len(indices)), "time_limit": cfg.time_limit}


def versions() -> dict[str, str]:
    """The versions of the software that decided the verdicts."""
    return {"certsdp": certsdp.__version__, "numpy": np.__version__, "highspy": highspy_version(),
            "scipy": version("scipy"), "dask": version("dask"), "distributed": version("distributed")}


def connect(workers: int, scheduler: str | None) -> tuple[Client, LocalCluster | None]:
    """A client of the cluster at ``scheduler``, or of a new local cluster of ``workers`` processes."""
    if scheduler is not None:
        if "://" not in scheduler and ":" not in scheduler:
            raise InputError(f"--scheduler must be an address such as tcp://HOST:PORT, got {scheduler!r}")
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False), None
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            reason = _first_line(exc)
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {reason}") from None
    try:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise InputError(f"cannot start a local Dask cluster of {workers} workers: {_first_line(exc)} "
                         "(a script calling verify needs `if __name__ == '__main__':`)") from None
    return Client(cluster, set_as_default=False), cluster


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _in_process(verifier: Verifier, todo: list[tuple[int, np.ndarray, int]],
                solve: PointFunction) -> Iterator[list[PointResult]]:
    for index, x, label in todo:
        yield [solve(verifier, index, x, label)]


def _on_dask(client: Client, verifier: Verifier, todo: list[tuple[int, np.ndarray, int]],
             solve: PointFunction) -> Iterator[list[PointResult]]:
    shipped = client.scatter(verifier, broadcast=True, hash=False)
    futures = [client.submit(solve, shipped, index, x, label, pure=False) for index, x, label in todo]
    try:
        for batch in as_completed(futures, loop=client.loop, with_results=True).batches():
            yield [result for _, result in batch]
    finally:
        client.cancel(futures)


class _Progress:
    """The bar (decided / unknown / remaining) and the periodic rewrites of the derived files."""

    def __init__(self, store: RunStore, n: int, info: dict[str, Any], show: bool,
                 on_result: Callable[[PointResult], None] | None) -> None:
        self.store, self.n, self.info, self.on_result = store, n, info, on_result
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=n, initial=len(store.rows), desc="verify", unit="pt", disable=not show)
        self.last_write = time.monotonic()
        self.postfix()

    def postfix(self) -> None:
        rows = self.store.rows.values()
        unknown = sum(row["verdict"] == "unknown" for row in rows)
        self.bar.set_postfix(decided=len(self.store.rows) - unknown, unknown=unknown,
                             remaining=self.n - len(self.store.rows), refresh=False)

    def add(self, results: list[PointResult]) -> None:
        before = len(self.store.rows)
        self.store.append(results)
        for result in results if self.on_result is not None else ():
            self.on_result(result)
        self.bar.update(len(self.store.rows) - before)
        self.postfix()
        if time.monotonic() - self.last_write > REWRITE_SECONDS:
            self.write()

    def write(self) -> dict[str, Any]:
        """Rewrite ``witnesses.npz`` and ``summary.json`` (``seconds``: this session's wall time)."""
        self.last_write = time.monotonic()
        self.info["seconds"] = time.perf_counter() - self.t0
        self.store.write_witnesses()
        return self.store.write_summary(self.info, self.n)


def open_store(weights: Weights, cfg: VerifyConfig, indices: np.ndarray, X: np.ndarray, y: np.ndarray,
               out: str | Path) -> RunStore:
    """Lock ``out`` and check (or record) the run's key, before any expensive preparation."""
    return RunStore.open(out, run_key(weights, cfg, indices, X, y), weights.d)


def run_verification(verifier: Verifier, store: RunStore, indices: np.ndarray, X: np.ndarray, y: np.ndarray,
                     *, workers: int = 1, scheduler: str | None = None, progress: bool = False,
                     solve: PointFunction = verify_point,
                     on_result: Callable[[PointResult], None] | None = None) -> dict[str, Any]:
    """Decide every point not yet in ``store``; returns the summary (also ``summary.json``).

    Trusted inputs (checked by :func:`certsdp.verify.api.verify`); the caller closes ``store``.
    ``solve`` is the per-point function (default :func:`~certsdp.verify.pipeline.verify_point`;
    tests count calls through it); ``on_result`` sees every new result once it is stored (with its
    per-stage times, for benchmarks).
    """
    weights, cfg = verifier.weights, verifier.config
    client = cluster = tracker = None
    try:
        todo = [(int(i), X[j], int(y[j])) for j, i in enumerate(indices) if int(i) not in store.rows]
        info = {**run_key(weights, cfg, indices, X, y), "clip": list(cfg.clip) if cfg.clip else None,
                "bounds": [bound.name for bound, _ in verifier.bounds],
                "attack": {"steps": cfg.attack_steps, "restarts": cfg.attack_restarts, "seed": cfg.seed},
                "workers": workers, "scheduler": scheduler, "versions": versions()}
        tracker = _Progress(store, len(indices), info, progress and sys.stderr.isatty(), on_result)
        if todo and (scheduler is not None or workers > 1):
            client, cluster = connect(workers, scheduler)
            batches = _on_dask(client, verifier, todo, solve)
        else:
            batches = _in_process(verifier, todo, solve)
        for batch in batches:
            tracker.add(batch)
        tracker.bar.close()
        summary = tracker.write()
        tracker = None
        return summary
    finally:
        if tracker is not None:  # interrupted: the derived files still describe every stored verdict
            tracker.bar.close()
            tracker.write()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
