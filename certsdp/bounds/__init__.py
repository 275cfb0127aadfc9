"""Certificates behind one interface: every bound is a :class:`Bound` in the registry :data:`BOUNDS`.

One module per bound (``ls certsdp/bounds``):

====================  ==================================================================================
``sdp.py``            ``sdp``: the SDP bound of eq. 12 from the certified pair table (:mod:`certsdp.sdp`)
``lp.py``             ``lp``: the LP bound of Wong & Kolter (2017), rigorous closed form
``frobenius.py``      ``fro``: the Frobenius bound of eq. 17
``spectral.py``       ``spectral``: the spectral bound of eq. 18
``crown.py``          ``crown``: CROWN's linear bounds with adaptive lower slopes (per example)
``alpha_crown.py``    ``alpha-crown``: the lower slopes optimised per example and target (torch), the
                      value re-evaluated rigorously in float64
``lp_triangle.py``    ``lp-triangle``: the exact triangle LP relaxation solved by HiGHS, made rigorous
                      from its duals (as CROWN slopes)
====================  ==================================================================================

and the shared parts: ``base.py`` (the interface), ``registry.py`` (:data:`BOUNDS`,
:func:`register`, :func:`get_bound`), ``lipschitz.py`` (the ``f(x) + eps K`` slack of eq. 11, 17,
18), ``linear_relaxation.py`` (the rigorous float64 evaluator of
linear ReLU relaxations shared by ``lp``, ``crown``, ``alpha-crown`` and ``lp-triangle``),
``certify.py`` (:func:`certify` and the certified error), ``exact.py`` (MILP/LP/grid references
for the tests; not certificates).

To add a bound: write ``certsdp/bounds/<name>.py`` with a :class:`Bound` subclass decorated by
:func:`register`, and import the module below; ``certify(..., method=name)`` and
``certsdp certify --method name`` then offer it. Importing this package never imports torch
(``alpha-crown`` imports it when it runs, in one documented place).
"""

# The bound modules: importing one registers its bound. Their order here is the order of the
# methods in BOUNDS and in ``certsdp certify --help`` (sdp, the default, first).
# isort: off
from certsdp.bounds import sdp, lp, frobenius, spectral  # noqa: F401
from certsdp.bounds import crown, alpha_crown, lp_triangle  # noqa: F401
from certsdp.bounds import sdp_cert  # noqa: F401
from certsdp.bounds import best  # noqa: F401  (best: the minimum of all, cheapest first)
# isort: on
from certsdp.bounds.base import Bound
from certsdp.bounds.certify import CertifyResult, certified_error_curve, certify, certify_pair_bounds
from certsdp.bounds.registry import BOUNDS, get_bound, register

__all__ = [
    "BOUNDS",
    "Bound",
    "CertifyResult",
    "certified_error_curve",
    "certify",
    "certify_pair_bounds",
    "get_bound",
    "register",
]
