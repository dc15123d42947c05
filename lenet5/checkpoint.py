"""Checkpoints: written atomically, read back with errors a user can act on."""

import os
from pathlib import Path

import torch

from .model import LeNet5

PRETRAINED = Path(__file__).parent / "weights" / "lenet5-paper.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or for another network."""


def save_atomic(obj, path):
    """torch.save to a temporary file beside ``path``, then rename over it, so
    an interrupted write never leaves a half-written checkpoint."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def resolve(path):
    """A checkpoint file, or a run directory holding last.pt."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: pass a .pt file or a run directory from train.py")
    return path


def load(path, map_location="cpu"):
    path = resolve(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}); retrain or pick another file") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise CheckpointError(f"{path} is not a lenet5 checkpoint (no 'model' and 'config' entries)")
    return ckpt


def load_model(path, map_location="cpu"):
    """The LeNet5 stored in a checkpoint, in eval mode."""
    ckpt = load(path, map_location)
    model = build_model(ckpt, path)
    return model.to(map_location).eval()


def build_model(ckpt, path):
    cfg = ckpt["config"]
    try:
        model = LeNet5(preset=cfg.get("preset", "paper"), rbf_trainable=cfg.get("rbf_trainable", False))
        model.load_state_dict(ckpt["model"])
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not hold a LeNet5 this version can load: {first}") from None
    return model
