import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir():
    """The real MNIST files: $LENET5_DATA_DIR, else ../shared/data beside the repo."""
    d = os.environ.get("LENET5_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    if not (Path(d) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.fail(f"MNIST not found under {d}/MNIST/raw: set LENET5_DATA_DIR to the folder holding MNIST/raw")
    return d
