import pytest
import torch
import torch.nn.functional as F

from lenet5 import LeNet5
from lenet5.loss import eq9, y_d
from lenet5.model import A, S
from lenet5.sdlm import SDLM, gauss_newton_diagonal, paper_eta


def fprime(a):
    return A * S * (1 - torch.tanh(S * a) ** 2)


def test_eq9_equals_hand_computation_and_is_non_negative():
    y = torch.tensor([[3.0, 0.5, 7.0, 1.0, 9.0, 2.0, 4.0, 8.0, 6.0, 5.0], [0.0] * 10])
    t = torch.tensor([1, 4])
    j = 0.7
    by_hand = []
    for p in range(2):
        z = torch.exp(torch.tensor(-j)) + torch.exp(-y[p]).sum()
        by_hand.append(y[p, t[p]] + torch.log(z))
    assert eq9(y, t, j).item() == pytest.approx(torch.stack(by_hand).mean().item(), rel=1e-6)
    assert eq9(torch.rand(50, 10) * 100, torch.randint(0, 10, (50,))).item() >= 0
    assert y_d(y, t).item() == pytest.approx((0.5 + 0.0) / 2)


def test_eta_follows_the_paper_schedule():
    assert [paper_eta(p) for p in range(1, 15)] == [5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 2


def tiny_model():
    torch.manual_seed(0)
    return LeNet5().double()


def test_hkk_of_f6_matches_per_connection_brute_force():
    m = tiny_model()
    x = torch.randn(3, 1, 32, 32, dtype=torch.float64)
    h = gauss_newton_diagonal(m, x)
    feats = m.features(x)
    c5 = feats["C5"].flatten(1)
    a6 = m.F6.preact(c5)
    W = m.F6.fc.weight
    expect_w = torch.zeros_like(W)
    expect_b = torch.zeros(84, dtype=torch.float64)
    for p in range(3):
        for i in range(84):
            d2a = fprime(a6[p, i]) ** 2 * 2  # d2(y_D)/dx^2 = 2, through f
            expect_b[i] += d2a / 3
            for j in range(120):
                expect_w[i, j] += d2a * c5[p, j] ** 2 / 3
    assert torch.allclose(h[W], expect_w) and torch.allclose(h[m.F6.fc.bias], expect_b)


def test_hkk_of_a_shared_conv_weight_sums_its_connections():
    """C1: each of the 25 kernel weights is shared by 784 connections per map."""
    m = tiny_model()
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    h = gauss_newton_diagonal(m, x)
    # d2E/da at C1, computed independently through dense Jacobians of each layer.
    feats = m.features(x)
    acts = [x] + [feats[k] for k in ("C1", "S2", "C3", "S4", "C5", "F6")]
    expect = torch.zeros(6, 5, 5, dtype=torch.float64)
    for p in range(2):
        d2x = torch.full((84,), 2.0, dtype=torch.float64)  # at the F6 outputs
        for k in range(5, -1, -1):
            layer = m.layers()[k]
            inp = acts[k][p : p + 1]
            if k == 5:
                inp = inp.flatten(1)
            a = layer.preact(inp).flatten()
            d2a = fprime(a) ** 2 * d2x
            if k == 0:
                break
            J = torch.autograd.functional.jacobian(lambda v: layer.preact(v).flatten(), inp).reshape(a.numel(), -1)
            d2x = (J**2).T @ d2a  # squared weights, summed over every connection
        d2a = d2a.view(6, 28, 28)
        img = x[p, 0]
        for o in range(6):
            for u in range(5):
                for v in range(5):
                    expect[o, u, v] += (d2a[o] * img[u : u + 28, v : v + 28] ** 2).sum() / 2
    assert torch.allclose(h[m.C1.conv.weight].view(6, 5, 5), expect, rtol=1e-9)


def test_hkk_covers_every_parameter_and_is_positive():
    m = tiny_model()
    h = gauss_newton_diagonal(m, torch.randn(4, 1, 32, 32, dtype=torch.float64))
    assert set(h) == {p for p in m.parameters()}
    assert all((v > 0).all() for v in h.values())
    assert h[m.C3.weight].shape == (60, 5, 5)


def test_sdlm_step_is_eta_over_mu_plus_h_times_gradient():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = SDLM([w], lr=0.1, mu=0.02)
    opt.set_hessian({w: torch.tensor([0.0, 1.0])})
    w.grad = torch.tensor([0.5, 0.5])
    opt.step()
    assert w.tolist() == pytest.approx([1.0 - 0.1 / 0.02 * 0.5, 2.0 - 0.1 / 1.02 * 0.5])


def test_sdlm_refuses_to_step_without_hessian():
    w = torch.nn.Parameter(torch.ones(2))
    w.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match="set_hessian"):
        SDLM([w]).step()


def test_trainable_rbf_centres_get_hkk_two_times_their_class_share():
    m = LeNet5(rbf_trainable=True).double()
    target = torch.tensor([3, 3, 7, 1])
    h = gauss_newton_diagonal(m, torch.randn(4, 1, 32, 32, dtype=torch.float64), target)
    share = torch.zeros(10, dtype=torch.float64)
    share[[3, 7, 1]] = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    assert torch.allclose(h[m.output.centres], 2 * share[:, None].expand(10, 84))
    with pytest.raises(ValueError, match="need the targets"):
        gauss_newton_diagonal(m, torch.randn(2, 1, 32, 32, dtype=torch.float64))
