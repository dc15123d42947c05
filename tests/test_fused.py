import copy

import torch

from lenet5 import LeNet5
from lenet5.fused import FusedSDLM
from lenet5.loss import eq9
from lenet5.sdlm import SDLM, gauss_newton_diagonal


def autograd_steps(model, hx, xs, ys, eta):
    opt = SDLM(model.parameters(), lr=eta)
    opt.set_hessian(gauss_newton_diagonal(model, hx))
    for x, y in zip(xs, ys):
        opt.zero_grad()
        eq9(model(x[None]), y[None]).backward()
        opt.step()


def test_fused_engine_equals_autograd_sdlm_after_several_steps():
    torch.manual_seed(0)
    models = [LeNet5() for _ in range(2)]
    reference, initial = copy.deepcopy(models), copy.deepcopy(models)
    hx = torch.randn(2, 40, 1, 32, 32)
    xs, ys = torch.randn(2, 6, 1, 32, 32), torch.randint(0, 10, (2, 6))
    for m, h, x, y in zip(reference, hx, xs, ys):
        autograd_steps(m, h, x, y, eta=5e-5)
    fused = FusedSDLM(models, j=0.1)
    fused.estimate_step_sizes(hx, [5e-5, 5e-5], mu=0.02)
    for k in range(6):
        fused.step(xs[:, k], ys[:, k])
    fused.sync_to_models()
    for m, r, i in zip(models, reference, initial):
        for (name, p), q, p0 in zip(m.named_parameters(), r.parameters(), i.parameters()):
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
            assert not torch.equal(p, p0), name  # every layer really trained


def test_fused_keeps_c3_dead_connections_at_zero():
    torch.manual_seed(0)
    m = LeNet5()
    fused = FusedSDLM([m], j=0.1)
    fused.estimate_step_sizes(torch.randn(1, 20, 1, 32, 32), [5e-4], mu=0.02)
    for _ in range(5):
        fused.step(torch.randn(1, 1, 32, 32), torch.randint(0, 10, (1,)))
    dense = fused.params[4].view(1, 96, 25)
    dead = torch.ones(96, dtype=torch.bool)
    dead[m.C3.dense_index] = False
    assert torch.all(dense[0, dead] == 0)


def test_compiled_fused_step_equals_the_eager_one_across_a_hessian_update():
    torch.manual_seed(0)
    models = [LeNet5() for _ in range(2)]
    twins = copy.deepcopy(models)
    hx = torch.randn(2, 2, 40, 1, 32, 32)
    xs, ys = torch.randn(2, 8, 1, 32, 32), torch.randint(0, 10, (2, 8))
    engines = [FusedSDLM(models, j=0.1), FusedSDLM(twins, j=0.1, compile=True)]
    for e in engines:
        for k in range(8):
            if k % 4 == 0:
                e.estimate_step_sizes(hx[k // 4], [5e-5, 2e-5], mu=0.02)
            e.step(xs[:, k], ys[:, k])
        e.sync_to_models()
    for a, b in zip(models, twins):
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
    assert torch.allclose(engines[0].loss_sum, engines[1].loss_sum, rtol=1e-5)
    assert torch.equal(engines[0].wrong, engines[1].wrong)
