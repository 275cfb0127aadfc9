"""Error as the l_inf radius eps varies: the certified upper bound and the attacks' lower bounds.

Certified error (paper eq. 12): ``(x, y)`` is certified at radius eps iff
``max_{i != y} f_i(x) - f_y(x) + eps/4 * S_iy < 0``, with ``S_iy`` a rigorous upper bound on the SDP
value of the pair, from the solved pair table or from the dual vectors trained with the network
(eq. 16). The ``S_ij`` do not depend on eps, so one table serves every radius, and
:func:`certsdp.bounds.certify.certified_error_curve` computes the clean margins once for the whole
sweep: the same numbers as ``certify(..., "sdp", table=table)`` at each eps. Every figure's
certified-error-vs-eps curve (Figures 3 and 4) is :func:`certified_curve`.

Attack error: the fraction of the first ``n`` test images that an attack (FGSM, PGD, CW) fools,
read from the attack cache when it was run before (:mod:`certsdp.attacks.cache`). Only the examples
whose outcome is open are attacked (:func:`attack_outcomes`); the others are decided by three rules:

1. *certified*: a sound certificate at this eps (:func:`certified_masks`: eq. 12 or the LP bound, for
   the unclipped box, which contains the clipped one) proves that no point of the box is misclassified,
   so no attack can fool the example;
2. *misclassified*: the clean point is one of every attack's candidates, so a clean mistake is always
   reported fooled (the attack's own rule, :func:`certsdp.attacks.report.misclassified`);
3. *fooled at a smaller eps*: the witness found there lies in every larger box, so the example is
   fooled at this eps too (radii are visited in increasing order).

Attacked examples keep the random starts they have when every example is attacked (drawn per
example index, :func:`certsdp.attacks.cache.indexed_report`), so rules 1 and 2 give exactly the
numbers of attacking everything. Rule 3 can only count *more* examples fooled than a fresh attack at
the larger eps would find (an attack that misses a witness it found at a smaller eps); the count it
gives is the sound one, since each of those examples has a witness in the box.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from certsdp.attacks import cached_attack_report, misclassified
from certsdp.bounds import certified_error_curve, certify, certify_pair_bounds
from certsdp.experiments.context import Context, Network
from certsdp.network import Weights

#: the attacks' display names (column headers)
ATTACK_NAMES = {"fgsm": "FGSM", "pgd": "PGD", "cw": "CW"}


def certified_curve(weights: Weights, X: np.ndarray, y: np.ndarray, eps: Sequence[float],
                    pair_bounds: np.ndarray, name: str | None = None) -> pd.Series:
    """Certified error in percent at every radius of ``eps`` (index), from the ``k x k`` ``pair_bounds``."""
    values = 100 * certified_error_curve(weights, X, y, list(eps), pair_bounds)
    return pd.Series(values, index=pd.Index(np.asarray(eps, dtype=np.float64)), name=name)


def certified_masks(weights: Weights, X: np.ndarray, y: np.ndarray, eps: Sequence[float],
                    pair_bounds: Sequence[np.ndarray] = (), methods: Sequence[str] = ()
                    ) -> dict[float, np.ndarray]:
    """Per radius of ``eps``, which rows of ``(X, y)`` a sound certificate proves robust.

    An example counts when eq. 12 certifies it with any of ``pair_bounds`` (rigorous upper bounds on
    the ``S_ij``: a solved pair table's ``upper``, the eq. 16 bounds from training) or any registered
    bound of ``methods`` (e.g. ``"lp"``) does, all for the unclipped box ``|x~ - x|_inf <= eps``.
    """
    masks = {}
    for e in eps:
        mask = np.zeros(len(y), dtype=bool)
        for bounds in pair_bounds:
            mask |= certify_pair_bounds(weights, X, y, e, bounds).certified
        for method in methods:
            mask |= certify(weights, X, y, e, method, progress=False).certified
        masks[float(e)] = mask
    return masks


def attack_outcomes(net: nn.Module, X: np.ndarray, y: np.ndarray, eps: Sequence[float], attack: str, *,
                    n: int, cache_dir: str | Path | None, label: str,
                    clip: tuple[float, float] | None = (0.0, 1.0),
                    certified: Mapping[float, np.ndarray] | None = None,
                    prune: bool = True) -> dict[float, np.ndarray]:
    """Per radius of ``eps``, which of the first ``n`` examples ``attack`` fools (boolean, length ``n``).

    With ``prune`` (the default), only the examples the rules of the module docstring leave open are
    attacked; ``certified`` maps a radius to a mask (length >= ``n``) of examples a sound certificate
    proves robust there (:func:`certified_masks`). Without ``prune`` every example is attacked at
    every radius. Radii are visited in increasing order; one line per radius is printed.
    """
    X, y = X[:n], y[:n]
    n = len(y)
    wrong = misclassified(net, X, y) if prune else np.zeros(n, dtype=bool)
    before = wrong.copy()  # fooled at a smaller radius (or at the clean point)
    clip_text = "unclipped" if clip is None else f"clipped to [{clip[0]:g}, {clip[1]:g}]"
    outcomes = {}
    for e in sorted(float(v) for v in eps):
        robust = np.zeros(n, dtype=bool)
        if prune and certified is not None and e in certified:
            robust = np.asarray(certified[e][:n], dtype=bool) & ~before
        fooled = before.copy()
        todo = np.flatnonzero(~(before | robust))
        t0, cached = time.perf_counter(), False
        if len(todo):
            whole = len(todo) == n  # then the report (and its cache entry) is that of the plain attack
            report = cached_attack_report(net, X if whole else X[todo], y if whole else y[todo], e, attack,
                                          clip=clip, cache_dir=cache_dir, label=label,
                                          indices=None if whole else todo, log=None)
            fooled[todo] = report["fooled"]
            cached = report["cached"]
        print(f"{label}: {attack} eps={e:g} on {n} images, {clip_text}: error {100 * fooled.mean():.2f}% "
              f"({len(todo)} attacked{', cached' if cached else f' in {time.perf_counter() - t0:.1f} s'}; "
              f"{int(robust.sum())} certified, {int(wrong.sum())} misclassified, "
              f"{int((before & ~wrong).sum())} fooled at a smaller eps)")
        outcomes[e] = fooled
        if prune:
            before = fooled
    return outcomes


def attack_curve(net: nn.Module, X: np.ndarray, y: np.ndarray, eps: Sequence[float], attack: str,
                 *, n: int, cache_dir: str | Path | None, label: str,
                 clip: tuple[float, float] | None = (0.0, 1.0), name: str | None = None,
                 certified: Mapping[float, np.ndarray] | None = None) -> pd.Series:
    """``attack``'s error in percent on the first ``n`` examples at every radius of ``eps`` (index).

    Clipped to the pixel range ``[0, 1]`` by default: the convention that reproduces the paper's
    attack numbers (Table 1); a clipped attack is also a lower bound for the unclipped box. Certified
    (``certified``: the certificates' masks) and misclassified examples are counted without an attack,
    exactly as the attack of every example counts them; an example fooled at a smaller radius counts
    as fooled (:func:`attack_outcomes`).
    """
    outcomes = attack_outcomes(net, X, y, eps, attack, n=n, cache_dir=cache_dir, label=label, clip=clip,
                               certified=certified)
    values = {float(e): 100 * float(outcomes[float(e)].mean()) for e in eps}
    return pd.Series(values, name=name, dtype=np.float64)


def network_pgd(ctx: Context, network: Network, methods: Sequence[str] = ("lp",)) -> pd.Series:
    """The PGD error % of Figures 2 and 3(a): ``network``'s first ``n`` test images at the profile's
    radii, box clipped to ``[0, 1]``; examples certified by its SDP pair table or ``methods`` skipped.

    Figure 2 reads the value at eps = 0.1 and Figure 3(a) the whole curve: the same attacks, run once
    (the second reads them from the cache).
    """
    X, y = ctx.test_set
    attacks = ctx.profile.fig2_fig3a
    certified = certified_masks(network.weights, X[:attacks.n], y[:attacks.n], attacks.eps,
                                [network.table.upper], methods)
    return attack_curve(network.net, X, y, attacks.eps, "pgd", n=attacks.n, cache_dir=ctx.cache_dir,
                        label=network.name, certified=certified)
