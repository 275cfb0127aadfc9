"""The per-example SDP certificate of Raghunathan, Steinhardt & Liang (NeurIPS 2018).

``problem`` (the reduced, scaled relaxation and its dual matrix), ``certificate`` (rigorous dual
certification), ``arrow``/``schur``/``corrector``/``ipm`` (the structured primal-dual interior-point
solver), ``solve`` (solve and certify every target of an example, warm-started), ``reference`` (cvxpy,
for tests), ``timing`` (the measurements of ``docs/sdp-cert.md``).
The bound built on it is :class:`certsdp.bounds.sdp_cert.SDPCertBound` (method ``sdp-cert``).
"""

from certsdp.sdp.example.certificate import ExampleCertificate, certify_example, verify_dual
from certsdp.sdp.example.problem import ExampleSDP, Multipliers, build_example
from certsdp.sdp.example.solve import SolveOptions, TargetResult, certify_target, certify_targets

__all__ = [
    "ExampleCertificate",
    "ExampleSDP",
    "Multipliers",
    "SolveOptions",
    "TargetResult",
    "build_example",
    "certify_example",
    "certify_target",
    "certify_targets",
    "verify_dual",
]
