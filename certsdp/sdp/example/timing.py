"""Per-pair timing of ``sdp-cert`` and its comparison with ``lp`` and the global ``sdp`` bound on MNIST.

``python -m certsdp.sdp.example.timing --weights NET.npz --limit 20 --eps 0.1 [--clip] [--exact]
[--double] --out FILE.json`` certifies every (image, wrong class) pair of the first ``limit`` test
images exactly as the bound ``sdp-cert`` does (:func:`certsdp.sdp.example.solve.certify_target`,
warm-started from :func:`~certsdp.sdp.example.solve.example_start`; ``stop_at_sign`` unless
``--exact``; mixed precision unless ``--double``) and records per pair the certified bound, the wall
and CPU seconds (the shared warm start of an image is reported separately and spread over its pairs in
the summary) and the iterations, with the bounds of ``lp`` and of the global ``sdp`` (eq. 12, pair
table solved by the fast solver). ``--summary`` summarises a report (``--out``) or printed logs
(``--logs``); ``--first`` resumes a run cut short.
The numbers quoted in ``docs/sdp-cert.md`` come from this module.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from certsdp.bounds.certify import certify
from certsdp.bounds.linear_relaxation import ReluNet, center_radius, preactivation_bounds
from certsdp.data.mnist import load_mnist
from certsdp.network.weights import Weights
from certsdp.sdp.example.problem import build_example
from certsdp.sdp.example.solve import SolveOptions, certify_target, example_start
from certsdp.sdp.pairs import solve_pairs


def run(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float, clip, options: SolveOptions,
        first: int = 0) -> dict[str, Any]:
    """The per-pair records (and per-image warm-start seconds) with the bounds of ``lp`` and ``sdp``, for
    the images ``first ..``; each record is also printed as one JSON line (a log that
    :func:`read_log` turns back into a report if the run is cut short)."""
    C, R = center_radius(X, eps, clip)
    pre = preactivation_bounds(ReluNet(weights), C, R)
    lp = certify(weights, X, y, eps, "lp", clip=clip, progress=False).upper
    sdp = certify(weights, X, y, eps, "sdp", table=solve_pairs(weights, progress=False), progress=False).upper
    pairs, warm_seconds, warm_cpu = [], [0.0] * X.shape[0], [0.0] * X.shape[0]
    for n in range(first, X.shape[0]):
        targets = np.array([i for i in range(weights.k) if i != y[n]])
        radius = R if np.ndim(R) == 0 else R[n]
        problem = build_example(weights, C[n], radius, pre.L[n], pre.U[n], int(y[n]), targets)
        t0, c0 = time.perf_counter(), time.process_time()
        warm = example_start(problem, options)
        warm_seconds[n], warm_cpu[n] = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"image": n, "warm_seconds": warm_seconds[n], "warm_cpu": warm_cpu[n]}), flush=True)
        for k, i in enumerate(targets):
            r = certify_target(problem, k, options, warm)
            record = {"image": n, "target": int(i), "unstable": problem.p, "upper": r.upper,
                      "primal": r.primal, "seconds": r.seconds, "cpu": r.cpu, "iterations": r.iterations,
                      "converged": r.converged, "lp": float(lp[n, i]), "sdp": float(sdp[n, i])}
            pairs.append(record)
            print(json.dumps(record), flush=True)
    return {"eps": eps, "clip": clip, "tol": options.tol, "stop_at_sign": options.stop_at_sign,
            "mixed": options.mixed,
            "n": int(X.shape[0]), "images": list(range(first, X.shape[0])), "warm_seconds": warm_seconds,
            "warm_cpu": warm_cpu, "pairs": pairs}


def read_log(paths: list[str], n: int) -> dict[str, Any]:
    """A report from the JSON lines printed by :func:`run` (several logs may be joined; a later record of
    the same pair replaces an earlier one); only images with all their pairs are kept, and an image
    without a warm-start line counts its warm start as 0."""
    records: dict[tuple[int, int], dict[str, Any]] = {}
    warm_seconds, warm_cpu = np.zeros(n), np.zeros(n)
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                rec = json.loads(line)
                if "warm_seconds" in rec:
                    warm_seconds[rec["image"]], warm_cpu[rec["image"]] = rec["warm_seconds"], rec["warm_cpu"]
                else:
                    records[(rec["image"], rec["target"])] = rec
    pairs = list(records.values())
    counts = np.bincount([p["image"] for p in pairs], minlength=n)
    complete = [i for i in range(n) if counts[i] == 9]
    return {"n": n, "images": complete, "warm_seconds": warm_seconds.tolist(), "warm_cpu": warm_cpu.tolist(),
            "pairs": [p for p in pairs if p["image"] in complete]}


def _quantiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(arr)), "p90": float(np.quantile(arr, 0.9)), "max": float(arr.max())}


def _wins(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """How often and by how much the bound ``a`` is below ``b``, pair by pair."""
    diff = b - a
    lower, higher = diff > 0, diff < 0
    return {"pairs": int(diff.size), "a_lower": int(lower.sum()), "b_lower": int(higher.sum()),
            "median_gain_when_a_lower": float(np.median(diff[lower])) if lower.any() else 0.0,
            "median_gain_when_b_lower": float(np.median(-diff[higher])) if higher.any() else 0.0}


def summarize(report: dict[str, Any], correct: np.ndarray) -> dict[str, Any]:
    """Seconds per pair (the image's warm start spread over its pairs), iterations, certified errors of
    ``sdp-cert``, ``lp`` and ``sdp`` (``correct``: the clean prediction is right) and pairwise wins."""
    pairs, n = report["pairs"], report["n"]
    images = np.asarray(report.get("images", range(n)), dtype=np.intp)
    per_image = np.bincount([p["image"] for p in pairs], minlength=n)
    out: dict[str, Any] = {"pairs": len(pairs), "unstable": _quantiles([p["unstable"] for p in pairs])}
    for key, warm in (("seconds", "warm_seconds"), ("cpu", "warm_cpu")):
        share = np.asarray(report[warm]) / np.maximum(per_image, 1)
        out[key] = _quantiles([p[key] + share[p["image"]] for p in pairs])
    out["iterations"] = _quantiles([p["iterations"] for p in pairs])
    worst = {m: np.full(n, -np.inf) for m in ("upper", "lp", "sdp")}
    for p in pairs:
        for m, w in worst.items():
            w[p["image"]] = max(w[p["image"]], p[m])
    name = {"upper": "sdp-cert", "lp": "lp", "sdp": "sdp"}
    certified = {name[m]: (correct & (w < 0))[images] for m, w in worst.items()}
    out["images_counted"] = int(images.size)
    out["certified_error"] = {m: float(1.0 - c.mean()) for m, c in certified.items()}
    out["images"] = {f"{a}_not_{b}": int((certified[a] & ~certified[b]).sum())
                     for a in certified for b in certified if a != b}
    values = {m: np.array([p[m] for p in pairs]) for m in ("upper", "lp", "sdp")}
    out["sdp-cert_vs_lp"] = _wins(values["upper"], values["lp"])
    out["sdp-cert_vs_sdp"] = _wins(values["upper"], values["sdp"])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--clip", action="store_true")
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--exact", action="store_true", help="stop_at_sign=False: solve every pair to tol")
    parser.add_argument("--double", action="store_true", help="mixed=False: float64 directions throughout")
    parser.add_argument("--out", default="", help="the report (JSON) to write, or with --summary to read")
    parser.add_argument("--first", type=int, default=0, help="start at this image (resume a run)")
    parser.add_argument("--summary", action="store_true", help="summarise an existing --out file instead")
    parser.add_argument("--logs", nargs="+", help="with --summary: summarise these printed logs instead")
    args = parser.parse_args(argv)
    weights = Weights.load(args.weights)
    X, y = load_mnist("test", limit=args.limit)
    X = X.astype(np.float64)
    if args.summary:
        if args.logs:
            report = read_log(args.logs, args.limit)
        else:
            with open(args.out) as f:
                report = json.load(f)
        n = report["n"]
        print(json.dumps(summarize(report, weights.scores(X[:n]).argmax(axis=1) == y[:n]), indent=1))
        return
    options = SolveOptions(tol=args.tol, stop_at_sign=not args.exact, mixed=not args.double)
    report = run(weights, X, y, args.eps, (0.0, 1.0) if args.clip else None, options, args.first)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f)


if __name__ == "__main__":
    main()
