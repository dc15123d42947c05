"""Why the literal SDLM reading collapses: h_kk per layer against mu.

    python scripts/hessian_report.py     # writes results/hessian_by_layer.json

For a freshly initialised network and for the pretrained one, the median
h_kk of each layer's parameters (500 training patterns), the share of them
below mu = 0.02, and the resulting median step eta/(mu + h_kk) at the
paper's first eta, 0.0005.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lenet5 import LeNet5  # noqa: E402
from lenet5.data import default_data_dir, load_mnist  # noqa: E402
from lenet5.sdlm import MU, gauss_newton_diagonal, paper_eta  # noqa: E402


def report(model, x):
    h = gauss_newton_diagonal(model, x)
    rows = {}
    for name in ("C1", "S2", "C3", "S4", "C5", "F6"):
        values = torch.cat([h[p].flatten() for p in getattr(model, name).parameters()])
        rows[name] = dict(median_h=float(values.median()), share_below_mu=round(float((values < MU).float().mean()), 3),
                          median_step_at_eta_0_0005=float((paper_eta(1) / (MU + values)).median()))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()
    x, _ = load_mnist(args.data_dir, train=True)
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:500]]
    torch.manual_seed(0)
    out = {"mu": MU, "initialised (seed 0)": report(LeNet5(), x), "pretrained": report(LeNet5.pretrained(), x)}
    (ROOT / "results" / "hessian_by_layer.json").write_text(json.dumps(out, indent=1) + "\n")
    for state in ("initialised (seed 0)", "pretrained"):
        print(state)
        for name, r in out[state].items():
            print(f"  {name}: median h_kk {r['median_h']:.2e}, {100 * r['share_below_mu']:.0f}% below mu, "
                  f"median step {r['median_step_at_eta_0_0005']:.2e}")


if __name__ == "__main__":
    main()
