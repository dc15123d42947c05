"""Stochastic diagonal Levenberg-Marquardt (LeCun et al. 1998, Appendix C).

Each parameter w_k steps by eps_k = eta / (mu + h_kk), where h_kk is the
Gauss-Newton estimate of d2E/dw_k^2: second derivatives are backpropagated
like a gradient, but through squared weights and squared derivatives f'(a)^2,
and a shared weight sums the terms of all its connections:

    d2E/du_ij^2 = d2E/da_i^2 * x_j^2
    d2E/da_k^2  = f'(a_k)^2 * sum_i u_ik^2 * d2E/da_i^2

At the F6 outputs the seed value is d2(y_D)/dx_j^2 = 2.
"""

import torch
from torch import nn
from torch.func import functional_call

MU = 0.02
# eta by pass (1-based), Appendix C.
PAPER_SCHEDULE = ((2, 5e-4), (5, 2e-4), (8, 1e-4), (12, 5e-5))
FINAL_ETA = 1e-5


def paper_eta(pass_number):
    """The paper's global step for pass 1, 2, ...: 0.0005 down to 0.00001."""
    for last_pass, eta in PAPER_SCHEDULE:
        if pass_number <= last_pass:
            return eta
    return FINAL_ETA


class _SquaredDerivative(torch.autograd.Function):
    """Forward: x^2 (the squared activation feeding the next layer).
    Backward: multiplies by f'(a)^2 instead of f'(a)."""

    @staticmethod
    def forward(ctx, a_hat, x_squared, fprime_squared):
        ctx.save_for_backward(fprime_squared)
        return x_squared.clone()

    @staticmethod
    def backward(ctx, grad):
        (fprime_squared,) = ctx.saved_tensors
        return grad * fprime_squared, None, None


class _Preact(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer.preact(x)


def gauss_newton_diagonal(model, x, target=None):
    """h_kk for every trainable parameter of ``model``, averaged over the batch x.

    Returns {parameter: tensor like it}. ``target`` is needed only when the
    RBF centres are trainable (d2(y_D)/dw_Dj^2 = 2 for the correct class).
    """
    if not model.lower_is_better:
        raise ValueError("SDLM's second derivatives are defined here for the RBF output (preset 'paper') only")
    with torch.no_grad():
        acts, preacts, out = [x], [], x
        for layer in model.layers():
            if out.dim() == 4 and layer is model.F6:
                out = out.flatten(1)
            a = layer.preact(out)
            out = layer.f(a)
            preacts.append(a)
            acts.append(out)

    # A linear network with squared weights and squared inputs, whose backward
    # pass multiplies by f'(a)^2: its weight gradients are the h_kk.
    leaves, owners = [], []
    s = x**2
    for layer, a, out in zip(model.layers(), preacts, acts[1:]):
        if s.dim() == 4 and layer is model.F6:
            s = s.flatten(1)
        squared = {}
        for name, p in layer.named_parameters():
            if not p.requires_grad:
                continue
            # A bias is a weight on a constant input 1: its value does not matter.
            leaf = (torch.zeros_like(p) if name.endswith("bias") else p.detach() ** 2).requires_grad_()
            squared["layer." + name] = leaf
            leaves.append(leaf)
            owners.append(p)
        a_hat = functional_call(_Preact(layer), squared, (s,))
        s = _SquaredDerivative.apply(a_hat, out**2, layer.f.derivative(a) ** 2)
    curvature = 2 * s.sum() / x.shape[0]
    grads = torch.autograd.grad(curvature, leaves)
    result = {p: g.detach() for p, g in zip(owners, grads)}
    centres = model.output.centres
    if isinstance(centres, nn.Parameter):
        if target is None:
            raise ValueError("trainable RBF centres need the targets to estimate their h_kk")
        share = torch.bincount(target, minlength=10).to(centres.dtype) / x.shape[0]
        result[centres] = 2 * share[:, None].expand_as(centres).clone()
    return result


class SDLM(torch.optim.Optimizer):
    """w_k <- w_k - eta / (mu + h_kk) * dE/dw_k, one step per pattern.

    Call ``set_hessian`` (with ``gauss_newton_diagonal``'s result) before
    stepping, and again whenever the paper re-estimates h_kk. ``lr`` is eta.
    """

    def __init__(self, params, lr=paper_eta(1), mu=MU):
        if lr <= 0 or mu <= 0:
            raise ValueError(f"SDLM needs lr > 0 and mu > 0, got lr={lr}, mu={mu}")
        super().__init__(params, dict(lr=lr, mu=mu))

    @torch.no_grad()
    def set_hessian(self, hessian):
        for group in self.param_groups:
            for p in group["params"]:
                if p not in hessian:
                    raise ValueError(f"no h_kk for a parameter of shape {tuple(p.shape)}")
                self.state[p]["h"] = hessian[p].clone()

    def step_sizes(self, group):
        """eps_k = eta / (mu + h_kk) for each parameter of the group."""
        try:
            hs = [self.state[p]["h"] for p in group["params"]]
        except KeyError:
            raise RuntimeError("SDLM.step before set_hessian: estimate h_kk first") from None
        return [group["lr"] / (group["mu"] + h) for h in hs]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            eps = self.step_sizes(dict(group, params=params))
            torch._foreach_addcmul_(params, [p.grad for p in params], eps, value=-1)
        return loss
