"""The eq. 15 regularizer: structured products, LOBPCG, gradients and the exact eq. 16 certificate."""

from __future__ import annotations

import math

import numpy as np
import torch

from certsdp.network.torch_model import TwoLayerNet
from certsdp.network.weights import Weights
from certsdp.sdp.matrix import coupling_block, sdp_matrix, sdp_matrix_from_block
from certsdp.sdp.pairs import solve_pairs
from certsdp.training.lobpcg import lobpcg_top, structured_matmul
from certsdp.training.sdp_regularizer import SDPDualRegularizer


def test_structured_product_equals_dense_M() -> None:
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    v = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    Z = torch.randn(3, 13, 4, generator=gen, dtype=torch.float64)
    out = structured_matmul(W, v, Z)
    for p in range(3):
        M = sdp_matrix_from_block(coupling_block(W.numpy(), v[p].numpy()))
        np.testing.assert_allclose(out[p].numpy(), M @ Z[p].numpy(), atol=1e-12)


def test_lobpcg_finds_the_top_eigenvalue() -> None:
    gen = torch.Generator().manual_seed(1)
    d, m = 60, 40
    W = torch.randn(m, d, generator=gen, dtype=torch.float64)
    v = torch.randn(2, m, generator=gen, dtype=torch.float64)
    c = 3 * torch.rand(2, 1 + d + m, generator=gen, dtype=torch.float64)
    X0 = torch.randn(2, 1 + d + m, 4, generator=gen, dtype=torch.float64)
    # 300 iterations: far past convergence, where a converged pair must stay put (no drift of the
    # carried products) while the other one goes on
    for iters in (40, 300):
        theta, _ = lobpcg_top(W, v, c, X0.clone(), iters)
        for p in range(2):
            M = sdp_matrix_from_block(coupling_block(W.numpy(), v[p].numpy()))
            exact = np.linalg.eigvalsh(M - np.diag(c[p].numpy()))[-1]
            assert abs(float(theta[p, 0]) - exact) <= 1e-8 * max(1.0, abs(exact))


def test_regularizer_gradient_matches_finite_differences_in_c() -> None:
    """The gradient in the trained parameter log c (c = exp(log c)) matches central differences."""
    torch.manual_seed(2)
    net = TwoLayerNet(6, 5, 3).double()
    reg = SDPDualRegularizer(6, 5, 3, block=4, iters=30).double()
    reg.initialise(net)
    with torch.no_grad():
        reg.log_c.add_(math.log(0.2))  # c * 0.2: make lambda_max positive so that both terms are active
    value = reg(net, 0)
    value.backward()
    grad = reg.log_c.grad.clone()
    n, idx, h = reg.index[(0, 1)], 3, 1e-6
    with torch.no_grad():
        reg.log_c[n, idx] += h
        up = float(reg(net, 0))
        reg.log_c[n, idx] -= 2 * h
        down = float(reg(net, 0))
    assert abs((up - down) / (2 * h) - float(grad[n, idx])) <= 1e-4 * max(1.0, abs(float(grad[n, idx])))


def test_trained_dual_certificate_upper_bounds_the_exact_sdp() -> None:
    """The eq. 16 certificate of the (briefly trained) dual vectors is >= the exactly solved SDP value."""
    torch.manual_seed(3)
    net = TwoLayerNet(8, 6, 3).double()
    reg = SDPDualRegularizer(8, 6, 3, block=3, iters=5).double()
    opt = torch.optim.Adam(reg.parameters(), lr=1e-2)
    first = None
    for step in range(150):
        opt.zero_grad()
        loss = reg(net, step % 3)
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < first  # the dual objective decreases
    bounds = reg.certificate_bounds(net)
    table = solve_pairs(net.to_weights(), progress=False)
    off = ~np.eye(3, dtype=bool)
    assert np.all(bounds[off] >= table.lower[off])
    assert np.all(bounds[off] >= table.upper[off] * (1 - 1e-5))


def test_pair_weights_scale_the_network_gradient_but_not_the_dual_vectors() -> None:
    """Weighted: value sum_j w_j f_j, network gradient weighted, dual-vector gradient unweighted."""
    torch.manual_seed(5)
    net = TwoLayerNet(6, 5, 3).double()
    reg = SDPDualRegularizer(6, 5, 3, block=4, iters=30).double()
    reg.initialise(net)
    with torch.no_grad():
        reg.log_c.add_(math.log(0.2))
    weights = torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64)  # class 0: pairs (0,1) w=0, (0,2) w=3

    def run(w: torch.Tensor | None) -> tuple[float, torch.Tensor, torch.Tensor]:
        net.zero_grad()
        reg.zero_grad()
        value = reg(net, 0, w)
        value.backward()
        return float(value.detach()), net.hidden.weight.grad.clone(), reg.log_c.grad.clone()

    value_1, grad_w1, grad_c1 = run(None)
    c = reg.c.detach()[[reg.index[(0, 1)], reg.index[(0, 2)]]]
    per_pair = reg.D * torch.relu(reg.last_lambda) + c.sum(dim=1)
    value_w, grad_ww, grad_cw = run(weights)
    assert abs(value_w - 3.0 * float(per_pair[1])) <= 1e-9 * max(1.0, value_1)
    torch.testing.assert_close(grad_cw, grad_c1)  # the pair with weight 0 still trains its c
    assert float(grad_c1[reg.index[(0, 1)]].abs().sum()) > 0
    # the network gradient is 3x that of pair (0, 2) alone
    _, grad_w_only2, _ = run(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(grad_ww, 3.0 * grad_w_only2)


def test_dual_vectors_reach_the_exact_sdp_on_a_fixed_network() -> None:
    """Training only c (Adam, lr 1e-2) from the Gershgorin start reaches the exact SDP value.

    Guards the parametrisation of c: with c itself as Adam's parameter the constant coordinate, which
    starts far above the others, moved by ~lr per step and the bound stalled far above the optimum.
    """
    torch.manual_seed(4)
    net = TwoLayerNet(8, 6, 2).double()
    with torch.no_grad():
        net.out.weight.mul_(30.0)  # a large constant-row coupling, as in trained networks
    reg = SDPDualRegularizer(8, 6, 2, block=4, iters=20).double()
    reg.initialise(net)
    start = float(reg.certificate_bounds(net)[0, 1])
    opt = torch.optim.Adam(reg.parameters(), lr=1e-2)
    for _ in range(1500):
        loss = reg(net, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    trained = float(reg.certificate_bounds(net)[0, 1])
    params = {key: p.detach().numpy() for key, p in (("W", net.hidden.weight), ("b", net.hidden.bias),
                                                     ("V", net.out.weight), ("c", net.out.bias))}
    table = solve_pairs(Weights(**params), progress=False)
    exact, primal = float(table.upper[0, 1]), float(table.lower[0, 1])
    assert trained >= primal  # a certificate is never below a feasible primal value
    # within 1% of the optimum (c itself as Adam's parameter stalled at 5.4% above it here)
    assert trained <= 1.01 * exact < start, (start, trained, exact)


def _exact_top(reg: SDPDualRegularizer, net: TwoLayerNet, i: int, j: int) -> float:
    W = net.hidden.weight.detach().double().numpy()
    V = net.out.weight.detach().double().numpy()
    c = np.exp(reg.log_c[reg.index[(min(i, j), max(i, j))]].detach().double().numpy())
    return float(np.linalg.eigvalsh(sdp_matrix_from_block(coupling_block(W, V[i] - V[j])) - np.diag(c))[-1])


def test_warm_start_serves_a_pair_from_both_sides() -> None:
    """Converged from class 0's side, a pair is tracked within one iteration from class 1's side.

    ``v`` changes sign with the side, and the stored eigenvectors must be flipped on the input block
    with it: unflipped, they start near the bottom of the (bipartite) spectrum.
    """
    torch.manual_seed(3)
    net = TwoLayerNet(30, 20, 3).double()
    reg = SDPDualRegularizer(30, 20, 3, block=4, iters=200, tol=0.0).double()
    reg.initialise(net)
    with torch.no_grad():
        reg.log_c.add_(math.log(0.05))  # small c: M dominates, lambda_max > 0
    reg(net, 0)  # pairs (0, 1) and (0, 2), converged
    reg.iters = 1
    for i, j in ((1, 0), (2, 0), (0, 1)):
        reg(net, i)
        others = [o for o in range(3) if o != i]
        exact = _exact_top(reg, net, i, j)
        assert exact > 0
        assert abs(float(reg.last_lambda[others.index(j)]) - exact) <= 1e-8 * exact


def test_tiny_matrices_get_the_exact_top_eigenpair() -> None:
    """D = 15 <= 6 b: LOBPCG's basis would span almost everything and stall (0.410 vs 0.455 before)."""
    torch.manual_seed(1)
    d, m, k = 6, 8, 3
    net = TwoLayerNet(d, m, k).double()
    reg = SDPDualRegularizer(d, m, k, iters=200, tol=1e-12).double()
    reg.initialise(net)
    with torch.no_grad():
        reg.log_c -= 1.5
    W, V = net.hidden.weight.detach(), net.out.weight.detach()
    for n, (i, j) in enumerate(reg.pairs):
        v, c = (V[i] - V[j])[None], reg.c[n:n + 1].detach()
        M = sdp_matrix(W.numpy(), v[0].numpy()) - np.diag(c[0].numpy())
        exact = np.linalg.eigvalsh(M)[::-1]
        theta, X = lobpcg_top(W, v, c, reg.eigvecs[n:n + 1].clone(), 4, tol=1e-4)
        np.testing.assert_allclose(theta[0].numpy(), exact[:4], atol=1e-12)
        np.testing.assert_allclose(M @ X[0].numpy(), X[0].numpy() * theta[0].numpy(), atol=1e-10)
