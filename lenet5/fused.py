"""The paper recipe's hot loop, fused: N independent LeNet-5s (one per seed),
each trained one pattern at a time with SDLM and the eq. 9 loss.

Autograd costs about 2 ms per batch-1 step on a CPU, mostly in bookkeeping.
Here the forward and backward passes are written out as ~50 batched tensor
ops over the stacked weights of N models (unfold + bmm for the convolutions),
so N models step together for little more than the cost of one. It computes
exactly what LeNet5 + autograd + SDLM compute (tests/test_fused.py checks it);
train.py's ``--engine autograd`` is the readable reference.
"""

import torch
import torch.nn.functional as F

from .model import A, S
from .sdlm import gauss_newton_diagonal


def _fprime(t):
    """f'(a) from t = tanh(S a)."""
    return A * S * (1 - t * t)


def _unfold5(x):
    """F.unfold(x, 5) as a strided view and one copy: 3-7x faster on a CPU."""
    n, c, h, w = x.shape
    s = x.stride()
    patches = x.as_strided((n, c, 5, 5, h - 4, w - 4), (s[0], s[1], s[2], s[3], s[2], s[3]))
    return patches.reshape(n, c * 25, (h - 4) * (w - 4))


class FusedSDLM:
    """Stacked weights of ``models`` (paper preset, fixed RBF centres), in the
    (N, out, in) layout bmm wants. ``sync_to_models`` writes them back."""

    def __init__(self, models, j, compile=False):
        for m in models:
            if m.preset != "paper" or isinstance(m.output.centres, torch.nn.Parameter):
                raise ValueError("the fused engine trains the paper preset with fixed RBF centres only")
        self.models, self.j = models, float(j)
        self.n = len(models)
        self.centres = models[0].output.centres  # (10, 84)
        self.dense_index = models[0].C3.dense_index
        self.load_from_models()
        self.eps = None
        self.wrong = torch.zeros(self.n, dtype=torch.long, device=self.centres.device)
        self.loss_sum = torch.zeros(self.n, device=self.centres.device)
        # Compiled once: later calls reuse the graph, since the weights, step
        # sizes and counters are updated in place, never replaced.
        self._step_fn = torch.compile(self._step, fullgraph=True) if compile else self._step

    def reset_counters(self):
        """Zero the running sums of eq. 9 and of training errors (in place)."""
        self.wrong.zero_()
        self.loss_sum.zero_()

    # Each model's parameters in the order the fused step unpacks them, and their fused shapes.
    SHAPES = ((6, 25), (6, 1), (6, 1, 1), (6, 1, 1), (16, 150), (16, 1),
              (16, 1, 1), (16, 1, 1), (120, 400), (120, 1), (84, 120), (84, 1))

    @staticmethod
    def _order(m):
        return [m.C1.conv.weight, m.C1.conv.bias, m.S2.coef, m.S2.bias, m.C3.weight, m.C3.bias,
                m.S4.coef, m.S4.bias, m.C5.conv.weight, m.C5.conv.bias, m.F6.fc.weight, m.F6.fc.bias]

    def _layout(self, m, t):
        """Tensors shaped like model m's parameters (t[p] for each p) in the
        fused layout and order; C3's come out dense, 0 at dead connections."""
        return [(m.C3.dense_weight(t[p]) if p is m.C3.weight else t[p]).reshape(shape)
                for p, shape in zip(self._order(m), self.SHAPES)]

    @torch.no_grad()
    def load_from_models(self):
        layouts = [self._layout(m, {p: p for p in m.parameters()}) for m in self.models]
        self.params = [torch.stack(ps).contiguous() for ps in zip(*layouts)]

    @torch.no_grad()
    def sync_to_models(self):
        for i, m in enumerate(self.models):
            for p, fused in zip(self._order(m), self.params):
                value = fused[i]
                if p is m.C3.weight:  # back from dense to the live kernels
                    value = value.reshape(96, 25)[self.dense_index]
                p.copy_(value.reshape(p.shape))

    @torch.no_grad()
    def estimate_step_sizes(self, x, etas, mu):
        """eps = eta / (mu + h_kk) per model, h_kk from x (N, P, 1, 32, 32).

        C3's dead kernel entries get step 0, so they stay 0."""
        self.sync_to_models()
        per_model = []
        for m, xm, eta in zip(self.models, x, etas):
            with torch.enable_grad():
                h = gauss_newton_diagonal(m, xm)
            per_model.append(self._layout(m, {p: eta / (mu + hp) for p, hp in h.items()}))
        eps = [torch.stack(e) for e in zip(*per_model)]
        if self.eps is None:
            self.eps = [e.contiguous() for e in eps]
        else:
            torch._foreach_copy_(self.eps, eps)

    def step(self, x, target):
        """One SDLM step of every model on its own pattern: x (N, 1, 32, 32), target (N,)."""
        with torch.no_grad():
            self._step_fn(x, target)

    def _step(self, x, target):
        n = self.n
        W1, b1, c2, b2, W3, b3, c4, b4, W5, b5, W6, b6 = self.params
        # forward; a matrix-vector bmm is slow on a CPU, so C5 and F6 multiply and sum
        X1 = _unfold5(x)  # (N, 25, 784)
        t1 = torch.tanh(S * torch.baddbmm(b1, W1, X1))  # (N, 6, 784)
        p2 = (A * t1).view(n, 6, 14, 2, 14, 2).sum((3, 5))  # (N, 6, 14, 14)
        t2 = torch.tanh(S * (c2 * p2 + b2))
        X3 = _unfold5(A * t2)  # (N, 150, 100)
        t3 = torch.tanh(S * torch.baddbmm(b3, W3, X3))  # (N, 16, 100)
        p4 = (A * t3).view(n, 16, 5, 2, 5, 2).sum((3, 5))  # (N, 16, 5, 5)
        t4 = torch.tanh(S * (c4 * p4 + b4))
        x4 = (A * t4).view(n, 1, 400)
        t5 = torch.tanh(S * ((W5 * x4).sum(2, keepdim=True) + b5))  # (N, 120, 1)
        x5 = (A * t5).transpose(1, 2)  # (N, 1, 120)
        t6 = torch.tanh(S * ((W6 * x5).sum(2, keepdim=True) + b6))  # (N, 84, 1)
        diff = (A * t6).transpose(1, 2) - self.centres  # (N, 10, 84)
        y = (diff * diff).sum(2)  # RBF penalties (N, 10)

        # eq. 9 and its gradient with respect to the penalties
        scores = torch.cat([-y, y.new_full((n, 1), -self.j)], dim=1)
        lse = torch.logsumexp(scores, dim=1)
        onehot = F.one_hot(target, 10).to(y.dtype)
        gy = onehot - torch.softmax(scores, dim=1)[:, :10]
        self.loss_sum += (y * onehot).sum(1) + lse
        self.wrong += y.argmin(1) != target

        # backward
        d6 = 2 * (gy[:, :, None] * diff).sum(1)[:, :, None] * _fprime(t6)  # (N, 84, 1)
        d5 = (W6 * d6).sum(1)[:, :, None] * _fprime(t5)  # (N, 120, 1)
        d4 = (W5 * d5).sum(1).view(n, 16, 5, 5) * _fprime(t4)
        up4 = (d4 * c4)[:, :, :, None, :, None].expand(n, 16, 5, 2, 5, 2).reshape(n, 16, 100)
        d3 = up4 * _fprime(t3)  # (N, 16, 100)
        d2 = F.fold(torch.bmm(W3.transpose(1, 2), d3), (14, 14), 5) * _fprime(t2)  # (N, 6, 14, 14)
        up2 = (d2 * c2)[:, :, :, None, :, None].expand(n, 6, 14, 2, 14, 2).reshape(n, 6, 784)
        d1 = up2 * _fprime(t1)  # (N, 6, 784)
        grads = [
            torch.bmm(d1, X1.transpose(1, 2)), d1.sum(2, keepdim=True),
            (d2 * p2).sum((2, 3), keepdim=True), d2.sum((2, 3), keepdim=True),
            torch.bmm(d3, X3.transpose(1, 2)), d3.sum(2, keepdim=True),
            (d4 * p4).sum((2, 3), keepdim=True), d4.sum((2, 3), keepdim=True),
            d5 * x4, d5,
            d6 * x5, d6,
        ]
        torch._foreach_addcmul_(self.params, grads, self.eps, value=-1)
