"""LeNet-5 exactly as LeCun, Bottou, Bengio and Haffner (1998) specified it."""

from .data import paper_input
from .model import C1, C3, C5, F6, RBF, TABLE_I, LeNet5, LinearOutput, ScaledTanh, SubSampling

__all__ = ["LeNet5", "C1", "SubSampling", "C3", "C5", "F6", "RBF", "LinearOutput", "ScaledTanh", "TABLE_I", "paper_input"]
