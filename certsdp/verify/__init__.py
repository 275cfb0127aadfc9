"""Complete verification: every point robust, not_robust, misclassified or unknown, with evidence.

``certsdp verify`` (:mod:`certsdp.cli.verify`) and :func:`verify` decide, for
``f(x) = V relu(W x + b) + c`` and the box ``B`` around each point (unclipped, or clipped to
``[0, 1]``), whether ``max_{x~ in B} max_{i != y} f_i(x~) - f_y(x~) < 0``: cheapest evidence first
(clean prediction, attacks, the registry's certificates, then a MILP and a rigorous branch and bound),
the points spread over Dask workers, verdicts stored durably and resumable.

Evidence: a ``not_robust`` verdict comes with a witness, a float64 point of the box (projected into
it, re-checked in float64) that the network misclassifies; a ``robust`` verdict with a rigorous
float64 upper bound below 0, from a certificate or from a branch and bound whose every leaf is closed
with directed rounding. HiGHS's objective values and statuses are never taken as proof.

======================  ===========================================================================
``region``              the box rounded inwards (witnesses) and outwards (bounds); pre-activation bounds
``leaf_bound``          the rigorous Lagrangian bound of one leaf of the ReLU phase tree
``slopes``              the leaf's LP-optimal slopes, suggested by HiGHS
``bab``                 branch and bound over the unstable units' phases: the proof of a robust target
``milp``                the big-M MILP on HiGHS: witnesses, and candidate robust targets
``highs``               models in and solutions out of ``highspy``
``adversary``           PGD on the cross-entropy and on each target's margin (the one torch module)
``pipeline``            one point's stages and its verdict
``store``               the output folder: run key, lock, durable verdicts, witnesses, summary
``runner``              a run on Dask or in this process, with progress
``api``                 :func:`verify`, the checked entry point
======================  ===========================================================================

torch is used only by the attack stage (:mod:`certsdp.verify.adversary`); the torch network is built
once per process (:meth:`Verifier.torch_net`), so that the pickled verifier sent to Dask workers
holds numpy arrays only.
"""

from certsdp.verify.api import verify
from certsdp.verify.pipeline import VERDICTS, PointResult, Verifier, VerifyConfig, verify_point

__all__ = ["VERDICTS", "PointResult", "Verifier", "VerifyConfig", "verify", "verify_point"]
