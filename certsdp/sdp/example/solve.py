"""Certified bounds for every target of one example: the interior-point solve, then the dual certificate.

:func:`certify_targets` runs :func:`certsdp.sdp.example.ipm.solve_ipm` for each target of an
:class:`~certsdp.sdp.example.problem.ExampleSDP` and certifies the final dual point with
:func:`~certsdp.sdp.example.certificate.certify_example`; the reported bound is that certificate, never
the solver's objective. Without unstable units the SDP is linear in ``x``, and the dual point
``c_x = |M_0x|`` (``c_0`` from the Schur complement) certifies its exact value ``const + |ox|_1``.

With ``stop_at_sign`` a target stops as soon as its sign is decided: a certified bound ``< 0`` (the
target is certified) or a nearly feasible primal value ``> 0`` (the SDP cannot certify it; the bound
reported is then the current, looser, certified dual value).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from certsdp.sdp.example.arrow import Operators
from certsdp.sdp.example.certificate import ExampleCertificate, certify_example
from certsdp.sdp.example.ipm import Iterate, snapshot, solve_ipm, warm_start
from certsdp.sdp.example.problem import ExampleSDP, Multipliers

_ZERO = Multipliers(nu=np.zeros(0), beta=np.zeros(0), gamma=np.zeros(0))


#: iterations of the cold solve of the targets' mean objective whose iterate warm-starts every target
WARM_ITERATIONS = 6


@dataclass(frozen=True)
class WarmStart:
    """The shared warm start of an example's targets and the ``x^`` rows (:class:`Operators`) it has."""

    iterate: Iterate
    rows: np.ndarray


@dataclass(frozen=True)
class SolveOptions:
    """``tol``: relative duality gap (and primal residual) at which a target stops; ``max_iter``:
    interior-point iterations per target; ``stop_at_sign``: stop once the sign is decided; ``warm``:
    start every target from :func:`example_start` (:data:`WARM_ITERATIONS` iterations on the mean objective);
    ``mixed``: float32 directions far from the optimum (:mod:`certsdp.sdp.example.ipm`)."""

    tol: float = 1e-5
    max_iter: int = 60
    stop_at_sign: bool = True
    warm: bool = True
    mixed: bool = True


@dataclass(frozen=True)
class TargetResult:
    """One target: the certified ``upper`` bound (``inf`` if no certificate), the solver's primal value
    (a floating-point estimate of the SDP value from below, not rigorous), iterations and seconds."""

    upper: float
    primal: float
    iterations: int
    seconds: float
    converged: bool
    cpu: float = 0.0  # process CPU seconds


def multipliers(ops: Operators, y: np.ndarray) -> tuple[Multipliers, np.ndarray, np.ndarray]:
    """``(nu, beta, gamma)`` of the unnormalised constraints, ``c_x`` and ``c_z`` from an IPM dual point."""
    cU, cx_rows, nu, be, ga = ops.split(y)
    sig = ops.sigma
    cx = np.zeros(ops.d_full)
    cx[ops.rows] = cx_rows  # the rows left out get the certificate's floor
    return Multipliers(nu=nu / sig, beta=be / sig, gamma=ga / sig), cx, cU[1:]


def _linear(problem: ExampleSDP, k: int) -> ExampleCertificate | None:
    """No unstable unit: ``c_x = |M_0x|`` certifies ``const + |ox|_1``."""
    return certify_example(problem, k, _ZERO, np.abs(0.5 * problem.ox[k]), np.zeros(0))


def _certify(problem: ExampleSDP, k: int, ops: Operators, y: np.ndarray) -> ExampleCertificate | None:
    mult, cx, cz = multipliers(ops, y)
    return certify_example(problem, k, mult, cx, cz)


def sign_decided(problem: ExampleSDP, k: int, ops: Operators, y: np.ndarray, dual: float, primal: float,
                 res: float, tol: float) -> tuple[bool, ExampleCertificate | None]:
    """Whether the sign of target ``k``'s SDP value is known at the IPM iterate ``y``: a certified bound
    ``< 0`` (returned), or a nearly feasible (residual ``<= tol``) primal value ``> tol (1 + |dual|)``."""
    if dual < 0.0:
        cert = _certify(problem, k, ops, y)
        if cert is not None and cert.upper < 0.0:
            return True, cert
    return res <= tol and primal > tol * (1.0 + abs(dual)), None


def _solve(problem: ExampleSDP, k: int, ops: Operators, options: SolveOptions, start: Iterate | None,
           max_iter: int) -> tuple[TargetResult, bool]:
    """One interior-point solve and its certificate; the flag says whether it converged or was decided."""
    t0, c0 = time.perf_counter(), time.process_time()
    found: list[ExampleCertificate | None] = []  # the decision's certificate (None: primal > 0)

    def stop(y: np.ndarray, dual: float, primal: float, res: float) -> bool:
        decided, cert = sign_decided(problem, k, ops, y, dual, primal, res, options.tol)
        if decided:
            found.append(cert)
        return decided

    result = solve_ipm(ops, tol=options.tol, max_iter=max_iter, stop=stop if options.stop_at_sign else None,
                       start=start, mixed=options.mixed)
    cert = found[0] if found and found[0] is not None else _certify(problem, k, ops, result.y)
    upper = math.inf if cert is None else cert.upper
    done = result.converged or bool(found)
    return TargetResult(upper=upper, primal=result.primal, iterations=result.iterations,
                        seconds=time.perf_counter() - t0, converged=result.converged,
                        cpu=time.process_time() - c0), done


def certify_target(problem: ExampleSDP, k: int, options: SolveOptions, warm: WarmStart | None = None
                   ) -> TargetResult:
    """Solve and certify target ``k`` of ``problem``, from the shared warm start of its example
    (:func:`example_start`) if given and usable, else (or if the warm-started solve neither converges
    nor decides the sign) from the cold start; the lower of the certified bounds is reported."""
    t0, c0 = time.perf_counter(), time.process_time()
    if problem.p == 0:
        cert = _linear(problem, k)
        upper = math.inf if cert is None else cert.upper
        return TargetResult(upper=upper, primal=float(problem.const[k] + np.sum(np.abs(problem.ox[k]))),
                            iterations=0, seconds=time.perf_counter() - t0, converged=True,
                            cpu=time.process_time() - c0)
    ops = Operators(problem, k)
    usable = warm is not None and np.array_equal(warm.rows, ops.rows)
    start = warm_start(ops, warm.iterate) if usable else None
    if start is None:
        return _solve(problem, k, ops, options, None, options.max_iter)[0]
    # a warm start gets half the budget (a cold solve takes 15-20 iterations), then the cold start
    result, done = _solve(problem, k, ops, options, start, max(1, options.max_iter // 2))
    if not done:
        cold, _ = _solve(problem, k, ops, options, None, options.max_iter)
        result = TargetResult(upper=min(result.upper, cold.upper), primal=cold.primal,
                              iterations=result.iterations + cold.iterations,
                              seconds=time.perf_counter() - t0, converged=cold.converged,
                              cpu=time.process_time() - c0)
    return result


def _mean_objective(problem: ExampleSDP) -> ExampleSDP:
    """``problem`` with one target whose objective is the mean of its targets' objectives (the targets
    share every constraint and differ only in row 0 of ``C``). Only :class:`Operators` reads it: the
    certificate's error terms (``ox_abs``, ``const_abs``, ``objective_error``) are not averaged."""
    return replace(problem, ox=problem.ox.mean(axis=0)[None], oz=problem.oz.mean(axis=0)[None],
                   const=problem.const.mean(keepdims=True), targets=problem.targets[:1])


def example_start(problem: ExampleSDP, options: SolveOptions) -> WarmStart | None:
    """The warm start shared by the targets of ``problem``: the iterate after :data:`WARM_ITERATIONS`
    iterations of the SDP whose objective is the targets' mean (:func:`_mean_objective`). It depends on
    no single target, so every target's result is the same whichever targets are solved; on the paper's
    SDP-NN it is closer to each target's path than the first target's iterate was (fewer iterations in
    all, see ``docs/sdp-cert.md``). None without unstable units or with ``warm=False``."""
    if not options.warm or problem.p == 0:
        return None
    ops = Operators(_mean_objective(problem), 0)
    iterate = snapshot(ops, WARM_ITERATIONS, options.mixed)
    return None if iterate is None else WarmStart(iterate=iterate, rows=ops.rows)


def certify_targets(problem: ExampleSDP, options: SolveOptions | None = None,
                    need: np.ndarray | None = None) -> list[TargetResult | None]:
    """:func:`certify_target` for every target of ``problem`` (or those with ``need[k]``; None for the
    others), all warm-started from :func:`example_start`."""
    opts = options or SolveOptions()
    needed = np.ones(len(problem.targets), dtype=bool) if need is None else np.asarray(need, dtype=bool)
    if not needed.any():
        return [None] * len(problem.targets)
    warm = example_start(problem, opts)
    return [certify_target(problem, k, opts, warm) if needed[k] else None
            for k in range(len(problem.targets))]
