"""Regenerate every figure in the README from results/ and the pretrained weights.

    python scripts/figures.py        # writes results/figures/*.png

Needs matplotlib (requirements-dev.txt) and MNIST (--data-dir or $LENET5_DATA_DIR).
"""

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from evaluate import evaluate, save_misclassified  # noqa: E402
from lenet5 import LeNet5  # noqa: E402
from lenet5.data import default_data_dir, load_mnist  # noqa: E402
from lenet5.model import rbf_centres  # noqa: E402
from summarize import group_of  # noqa: E402

RESULTS = ROOT / "results"
FIGURES = RESULTS / "figures"


def runs():
    return [json.loads(p.read_text()) for p in sorted((RESULTS / "runs").glob("*.json"))]


def fig5_learning_curves(all_runs):
    paper = [r for r in all_runs if group_of(r["config"]) in ("paper", "distort")]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in paper:
        passes = [p["pass"] for p in r["passes"]]
        label = ("distorted, " if r["config"]["distort"] else "") + f"seed {r['config']['seed']}"
        style = "--" if r["config"]["distort"] else "-"
        line, = ax.plot(passes, [p["test_error_pct"] for p in r["passes"]], style, label=f"test, {label}")
        ax.plot(passes, [p["train_error_pct"] for p in r["passes"]], style, color=line.get_color(), alpha=0.4,
                label=f"train, {label}")
    ax.axhline(0.95, color="k", lw=0.8, ls=":", label="paper: 0.95% test")
    ax.set(xlabel="training pass", ylabel="error %", ylim=(0, 3), title="Fig. 5: LeNet-5 error against passes",
           xticks=range(0, 21, 2))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(FIGURES / "fig5_learning_curves.png", dpi=120)


def fig6_train_size(all_runs):
    pts = sorted(((r["config"]["train_size"] or 60000), r["test_error_pct"]) for r in all_runs
                 if r["config"]["seed"] == 0 and (group_of(r["config"]) == "paper" or group_of(r["config"]).endswith(" patterns")))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([n for n, _ in pts], [e for _, e in pts], "o-", label="this repo, seed 0")
    ax.set(xlabel="training set size", ylabel="test error %", title="Fig. 6: test error against training set size",
           xticks=[15000, 30000, 60000], ylim=(0, None))
    for n, e in pts:
        ax.annotate(f"{e:.2f}", (n, e), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "fig6_train_size.png", dpi=120)


def fig3_rbf_bitmaps():
    fig, axes = plt.subplots(1, 10, figsize=(8, 1.8))
    for d, ax in enumerate(axes):
        ax.imshow(-rbf_centres()[d].view(12, 7), cmap="gray", vmin=-1, vmax=1)
        ax.set_title(str(d))
        ax.axis("off")
    fig.suptitle("Fig. 3: the RBF centres (7x12, +1 ink)")
    fig.tight_layout()
    fig.savefig(FIGURES / "fig3_rbf_bitmaps.png", dpi=120)


def feature_maps(model, x):
    feats = model.features(x[:3])
    fig = plt.figure(figsize=(12, 3.4))
    grid = fig.add_gridspec(3, 1 + 6 + 6 + 16)
    for row in range(3):
        ax = fig.add_subplot(grid[row, 0])
        ax.imshow(-x[row, 0], cmap="gray")
        ax.axis("off")
        col = 1
        for name, maps in (("C1", 6), ("S2", 6), ("C3", 16)):
            for k in range(maps):
                ax = fig.add_subplot(grid[row, col])
                ax.imshow(-feats[name][row, k], cmap="gray", vmin=-1.7, vmax=1.7)
                ax.axis("off")
                if row == 0 and k == 0:
                    ax.set_title(name, fontsize=9, loc="left")
                col += 1
    fig.suptitle("input, C1 (6 maps), S2 (6), C3 (16): what the trained network sees (dark = high)")
    fig.savefig(FIGURES / "feature_maps.png", dpi=110, bbox_inches="tight")
    # S4 separately: 16 maps of 5x5
    fig, axes = plt.subplots(3, 17, figsize=(12, 2.6))
    for row in range(3):
        axes[row, 0].imshow(-x[row, 0], cmap="gray")
        for k in range(16):
            axes[row, k + 1].imshow(-feats["S4"][row, k], cmap="gray", vmin=-1.7, vmax=1.7)
        for ax in axes[row]:
            ax.axis("off")
    fig.suptitle("input and the 16 S4 maps (5x5) that C5 reads")
    fig.savefig(FIGURES / "feature_maps_s4.png", dpi=110, bbox_inches="tight")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()
    FIGURES.mkdir(parents=True, exist_ok=True)
    all_runs = runs()
    fig5_learning_curves(all_runs)
    fig6_train_size(all_runs)
    fig3_rbf_bitmaps()
    model = LeNet5.pretrained()
    x, y = load_mnist(args.data_dir, train=False)
    result, pred = evaluate(model, x, y)
    n = save_misclassified(FIGURES / "fig8_misclassified.png", x, y, pred)
    print(f"pretrained: {result['test_error_pct']:.2f}% test error, {n} misclassified digits drawn")
    with torch.inference_mode():
        feature_maps(model, x)
    print(f"wrote {', '.join(sorted(f.name for f in FIGURES.glob('*.png')))} in {FIGURES}")


if __name__ == "__main__":
    main()
