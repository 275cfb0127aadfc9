"""A skeptic's re-check of a ``certsdp verify`` folder's evidence of errors, independent of the run.

Every error a folder claims is checked from the folder's files, the network and the test points alone:

* a ``misclassified`` row: the clean input ``x`` is misclassified, proved in exact arithmetic
  (:func:`certsdp.numerics.rounding.scores_lower_margins`: the float64 margin minus its
  rounding-error bound is ``>= 0``);
* a ``not_robust`` row: its witness ``x~`` in ``witnesses.npz`` lies in the real box (``|x~ - x| <=
  eps`` coordinate-wise in exact arithmetic, and inside the clip range with ``--clip``) and is
  misclassified, proved the same way; and no witness belongs to another row.

The box test is exact without rationals: it is the inner box of :func:`certsdp.verify.region.inner_box`
(the float corners ``fl(x -/+ eps)``, moved one step inwards where TwoSum shows they fall outside),
whose float vectors are exactly the float vectors of the real box, since a corner rounded to nearest
has no float of the real box beyond it. ``robust`` rows are proofs by sound bounds (their ``upper``
column); re-checking them means recomputing the certificates, which this module does not do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.rounding import scores_lower_margins
from certsdp.verify.region import inner_box


@dataclass(frozen=True)
class Audit:
    """What :func:`audit_errors` checked: the misclassified rows and the witnesses, all valid."""

    misclassified: int
    witnesses: int


def within(z: np.ndarray, x: np.ndarray, eps: float,
           clip: tuple[float, float] | None = None) -> np.ndarray:
    """Per row, whether ``|z - x| <= eps`` (and ``z`` inside ``clip``) holds coordinate-wise in exact
    arithmetic: ``z`` lies in :func:`~certsdp.verify.region.inner_box` (see the module docstring)."""
    lo, hi = inner_box(np.asarray(x, dtype=np.float64), eps, clip)
    return np.all((z >= lo) & (z <= hi), axis=1)


def audit_errors(weights: Weights, X: np.ndarray, y: np.ndarray, verdicts: dict[int, str],
                 index: np.ndarray, witnesses: np.ndarray, eps: float,
                 clip: tuple[float, float] | None) -> Audit:
    """Re-check the errors a run claims (see the module docstring); :class:`InputError` naming the first
    row that fails. ``verdicts`` maps test index to verdict; ``index``/``witnesses`` are ``witnesses.npz``."""
    index = np.asarray(index, dtype=np.int64)
    claimed = sorted(i for i, v in verdicts.items() if v == "not_robust")
    if sorted(index.tolist()) != claimed:
        raise InputError(f"the witnesses are for indices {sorted(set(index.tolist()) ^ set(claimed))[:5]} "
                         "without a not_robust row, or the reverse")
    clean = np.array(sorted(i for i, v in verdicts.items() if v == "misclassified"), dtype=np.int64)
    if clean.size and not (ok := _fooled(weights, X[clean], y[clean])).all():
        raise InputError(f"point {clean[~ok][0]} is marked misclassified but is classified correctly")
    Z = np.asarray(witnesses, dtype=np.float64).reshape(len(index), X.shape[1])
    inside = within(Z, X[index], eps, clip)
    if not inside.all():
        raise InputError(f"the witness of point {index[~inside][0]} lies outside its box")
    if len(index):
        fooled = _fooled(weights, Z, y[index])
        if not fooled.all():
            raise InputError(f"the witness of point {index[~fooled][0]} is classified correctly")
    return Audit(misclassified=int(clean.size), witnesses=len(index))


def _fooled(weights: Weights, Z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, a proof in exact arithmetic that ``Z[k]`` is not classified as ``labels[k]`` (ties count)."""
    labels = np.asarray(labels, dtype=np.int64)
    L = scores_lower_margins(weights.W, weights.b, weights.V, weights.c, Z, labels)
    return L.max(axis=1) >= 0
