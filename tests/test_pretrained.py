import json
from pathlib import Path

import torch

from evaluate import evaluate
from lenet5 import LeNet5
from lenet5.checkpoint import PRETRAINED
from lenet5.data import load_mnist

ROOT = Path(__file__).resolve().parents[1]


def test_pretrained_network_gives_the_test_error_recorded_in_its_results_json(data_dir):
    shipped = torch.load(PRETRAINED, weights_only=True)
    recorded = json.loads((ROOT / "results" / "runs" / f"{shipped['source']}.json").read_text())
    model = LeNet5.pretrained()
    assert model.preset == "paper" and not model.training
    x, y = load_mnist(data_dir, train=False)
    result, _ = evaluate(model, x, y)
    assert result["test_error_pct"] == recorded["test_error_pct"] == shipped["test_error_pct"]
