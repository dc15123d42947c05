"""Training and inference throughput, printed as one JSON object.

    python scripts/bench.py [--device auto|cpu|cuda] [--out results/bench-cpu.json]

Each figure is the median of several timed repeats after a warm-up, in
patterns per second, on random inputs of MNIST's shape (speed does not
depend on the pixel values). Runs in about a minute on a 2-core CPU.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lenet5 import TABLE_I, LeNet5  # noqa: E402
from lenet5.fused import FusedSDLM  # noqa: E402
from lenet5.loss import eq9  # noqa: E402
from lenet5.sdlm import SDLM, gauss_newton_diagonal  # noqa: E402


class C3Loop(nn.Module):
    """C3 as the seed write-up wrote it: 16 convolutions in a Python loop."""

    def __init__(self, f):
        super().__init__()
        self.f = f
        self.convs = nn.ModuleList(nn.Conv2d(len(s), 1, 5) for s in TABLE_I)

    def forward(self, x):
        return self.f(torch.cat([conv(x[:, list(s)]) for conv, s in zip(self.convs, TABLE_I)], dim=1))


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def measure(step, patterns_per_call, device, calls, repeats=5):
    for _ in range(max(2, calls // 5)):
        step()
    rates = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        for _ in range(calls):
            step()
        sync(device)
        rates.append(patterns_per_call * calls / (time.perf_counter() - t))
    return round(statistics.median(rates), 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    torch.manual_seed(0)
    out = dict(device=device if device == "cpu" else torch.cuda.get_device_name(), threads=torch.get_num_threads(),
               torch=torch.__version__, date=time.strftime("%Y-%m-%d"), unit="patterns/s")

    def paper_fused(n, compile=False):
        models = [LeNet5().to(device) for _ in range(n)]
        engine = FusedSDLM(models, j=0.1, compile=compile)
        engine.estimate_step_sizes(torch.randn(n, 500, 1, 32, 32, device=device), [5e-5] * n, mu=0.02)
        x, y = torch.randn(n, 1, 32, 32, device=device), torch.randint(0, 10, (n,), device=device)
        t = time.perf_counter()
        engine.step(x, y)  # compiles, if asked
        first_call_s = time.perf_counter() - t
        return measure(lambda: engine.step(x, y), 1, device, calls=1000), first_call_s

    # Rates are patterns per second per seed: with N seeds, each step trains N patterns.
    out["paper_batch1_fused"], _ = paper_fused(1)
    out["paper_batch1_fused_compiled"], out["compile_s"] = paper_fused(1, compile=True)
    out["paper_batch1_fused_3_seeds"], _ = paper_fused(3)
    out["paper_batch1_fused_3_seeds_compiled"], _ = paper_fused(3, compile=True)

    model = LeNet5().to(device)
    opt = SDLM(model.parameters(), lr=5e-5)
    opt.set_hessian(gauss_newton_diagonal(model, torch.randn(500, 1, 32, 32, device=device)))
    x1, y1 = torch.randn(1, 1, 32, 32, device=device), torch.tensor([3], device=device)

    def autograd_step():
        opt.zero_grad()
        eq9(model(x1), y1).backward()
        opt.step()

    out["paper_batch1_autograd"] = measure(autograd_step, 1, device, calls=300)

    def seed_rate(c3_loop=False, compile=False):
        m = LeNet5.seed().to(device)
        if c3_loop:
            m.C3 = C3Loop(m.C3.f).to(device)
        forward = torch.compile(m) if compile else m  # as train.py --compile does
        adam = torch.optim.Adam(m.parameters(), lr=1e-3, fused=compile or None)
        xb, yb = torch.randn(64, 1, 32, 32, device=device), torch.randint(0, 10, (64,), device=device)

        def step():
            adam.zero_grad()
            F.cross_entropy(forward(xb), yb).backward()
            adam.step()

        return measure(step, 64, device, calls=100)

    out["seed_batch64_adam"] = seed_rate()
    out["seed_batch64_adam_compiled"] = seed_rate(compile=True)
    out["seed_batch64_adam_c3_as_16_convs"] = seed_rate(c3_loop=True)
    xi = torch.randn(1000, 1, 32, 32, device=device)
    with torch.inference_mode():
        out["inference_batch1000"] = measure(lambda: model(xi), 1000, device, calls=20)
    for key in ("paper_batch1_fused", "paper_batch1_fused_compiled", "paper_batch1_fused_3_seeds",
                "paper_batch1_fused_3_seeds_compiled", "paper_batch1_autograd"):
        out[key.replace("paper_batch1", "paper_pass_s")] = round(60000 / out[key], 1)
    out["seed_epoch_s"] = round(60000 / out["seed_batch64_adam"], 1)
    out["seed_epoch_s_compiled"] = round(60000 / out["seed_batch64_adam_compiled"], 1)
    out["seed_epoch_s_c3_as_16_convs"] = round(60000 / out["seed_batch64_adam_c3_as_16_convs"], 1)
    text = json.dumps(out, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
