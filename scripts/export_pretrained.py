"""Ship a run's network as the pretrained weights: LeNet5.pretrained() and
evaluate.py's default.

    python scripts/export_pretrained.py runs/paper-seed2
"""

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lenet5.checkpoint import PRETRAINED, load, save_atomic  # noqa: E402

run = Path(sys.argv[1])
ckpt = load(run)
PRETRAINED.parent.mkdir(exist_ok=True)
keep = {k: ckpt[k] for k in ("config", "seed", "pass", "test_error_pct")}
save_atomic(dict(keep, model={k: v.clone() for k, v in ckpt["model"].items()}, source=run.name), PRETRAINED)
print(f"{PRETRAINED}: {run.name}, pass {ckpt['pass']}, test error {ckpt['test_error_pct']}%, {PRETRAINED.stat().st_size} bytes")
