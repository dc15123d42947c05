"""LeNet-5 as specified in LeCun, Bottou, Bengio and Haffner (1998),
"Gradient-Based Learning Applied to Document Recognition", Proc. IEEE 86(11).

Section II.B describes the layers, Appendix A the squashing function and the
initialisation, Table I the C3 connections and Fig. 3 the RBF bitmaps. The
``seed`` preset rebuilds the simpler network of the user's original write-up
(plain tanh, a Linear output, PyTorch's default initialisation) as a baseline.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

# Appendix A: f(a) = A tanh(S a), chosen so that f(1) = 1 and f(-1) = -1.
A = 1.7159
S = 2.0 / 3.0

# Table I: the S2 maps feeding each of the 16 C3 maps.
TABLE_I = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

# Fig. 3: the RBF centres are stylised 7x12 bitmaps, +1 for ink (#) and -1 for
# background (.). The paper draws them but does not print them; these are ours,
# drawn so that any two digits differ in at least 16 of the 84 pixels.
RBF_BITMAPS = {
    0: """
        .......
        ..###..
        .##.##.
        ##...##
        ##...##
        ##...##
        ##...##
        ##...##
        ##...##
        .##.##.
        ..###..
        .......""",
    1: """
        .......
        ...##..
        ..###..
        .####..
        ...##..
        ...##..
        ...##..
        ...##..
        ...##..
        ...##..
        .######
        .......""",
    2: """
        .......
        .#####.
        ##...##
        .....##
        ....##.
        ...##..
        ..##...
        .##....
        ##.....
        ##.....
        #######
        .......""",
    3: """
        .......
        #######
        ....##.
        ...##..
        ..##...
        .####..
        .....##
        .....##
        .....##
        ##...##
        .#####.
        .......""",
    4: """
        .......
        ....##.
        ...###.
        ..####.
        .##.##.
        ##..##.
        #######
        ....##.
        ....##.
        ....##.
        ....##.
        .......""",
    5: """
        .......
        #######
        ##.....
        ##.....
        ######.
        .....##
        .....##
        .....##
        .....##
        ##...##
        .#####.
        .......""",
    6: """
        .......
        ....##.
        ...##..
        ..##...
        .##....
        ######.
        ##...##
        ##...##
        ##...##
        ##...##
        .#####.
        .......""",
    7: """
        .......
        #######
        .....##
        ....##.
        ....##.
        ...##..
        ...##..
        ..##...
        ..##...
        ..##...
        ..##...
        .......""",
    8: """
        .......
        ..###..
        .##.##.
        .##.##.
        .##.##.
        ..###..
        ##...##
        ##...##
        ##...##
        ##...##
        .#####.
        .......""",
    9: """
        .......
        .#####.
        ##...##
        ##...##
        ##...##
        ##...##
        .######
        .....##
        .....##
        ....##.
        .####..
        .......""",
}


def rbf_centres() -> torch.Tensor:
    """The ten RBF centres as a (10, 84) tensor of +-1, read row by row."""
    rows = []
    for digit in range(10):
        lines = RBF_BITMAPS[digit].split()
        assert len(lines) == 12 and all(len(line) == 7 for line in lines), digit
        rows.append([1.0 if c == "#" else -1.0 for c in "".join(lines)])
    return torch.tensor(rows)


class ScaledTanh(nn.Module):
    """Appendix A's squashing function f(a) = 1.7159 tanh(2a/3)."""

    def forward(self, a):
        return A * torch.tanh(S * a)

    def derivative(self, a):
        return A * S * (1 - torch.tanh(S * a) ** 2)


class Tanh(nn.Module):
    """Plain tanh, as the seed write-up uses below F6."""

    def forward(self, a):
        return torch.tanh(a)

    def derivative(self, a):
        return 1 - torch.tanh(a) ** 2


def _paper_uniform_(tensor, fan_in):
    """Appendix A: uniform in [-2.4/F, 2.4/F], F the fan-in of the receiving unit."""
    bound = 2.4 / fan_in
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


class _Layer(nn.Module):
    """A trainable layer: an affine map ``preact`` followed by the squashing ``f``.

    SDLM backpropagates second derivatives through ``preact`` with squared
    weights, so the two halves are kept apart.
    """

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(self.preact(x))


class C1(_Layer):
    """C1: 6 feature maps, 5x5 convolution of the input (156 parameters).

    (B, 1, 32, 32) -> (B, 6, 28, 28)
    """

    def __init__(self, f):
        super().__init__(f)
        self.conv = nn.Conv2d(1, 6, kernel_size=5)

    def reset_parameters_paper(self):
        _paper_uniform_(self.conv.weight, 25)
        _paper_uniform_(self.conv.bias, 25)

    def preact(self, x):
        return self.conv(x)


class SubSampling(_Layer):
    """S2 and S4: sum of each non-overlapping 2x2 block, times one trainable
    coefficient per map, plus one trainable bias per map (Section II.B).

    (B, maps, H, W) -> (B, maps, H/2, W/2)
    """

    def __init__(self, maps, f):
        super().__init__(f)
        # The seed write-up starts every map at coefficient 1, bias 0.
        self.coef = nn.Parameter(torch.ones(maps))
        self.bias = nn.Parameter(torch.zeros(maps))

    def reset_parameters_paper(self):
        _paper_uniform_(self.coef, 4)
        _paper_uniform_(self.bias, 4)

    def preact(self, x):
        block_sum = 4 * F.avg_pool2d(x, 2)
        return block_sum * self.coef[:, None, None] + self.bias[:, None, None]


class C3(_Layer):
    """C3: 16 maps, each a 5x5 convolution over the S2 maps Table I gives it.

    The 60 live (C3 map, S2 map) kernels are the only weights: 1,500 of them
    plus 16 biases. Each forward scatters them into a dense (16, 6, 5, 5)
    kernel whose dead entries are constant zeros, and runs ONE convolution.

    (B, 6, 14, 14) -> (B, 16, 10, 10)
    """

    def __init__(self, f, table=TABLE_I):
        super().__init__(f)
        self.table = table
        pairs = [(m, s) for m, sources in enumerate(table) for s in sources]
        # Row m * 6 + s of the dense kernel, viewed as (96, 5, 5), is kernel (m, s).
        self.register_buffer("dense_index", torch.tensor([m * 6 + s for m, s in pairs]), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(pairs), 5, 5))
        self.bias = nn.Parameter(torch.empty(len(table)))
        self.reset_parameters_default()

    def fan_ins(self):
        """Fan-in of each C3 map: 25 per connected S2 map."""
        return [25 * len(sources) for sources in self.table]

    def _reset(self, bound_of_fan_in):
        fan_in_of_kernel = [f for f, sources in zip(self.fan_ins(), self.table) for _ in sources]
        with torch.no_grad():
            for k, fan_in in enumerate(fan_in_of_kernel):
                b = bound_of_fan_in(fan_in)
                self.weight[k].uniform_(-b, b)
            for m, fan_in in enumerate(self.fan_ins()):
                b = bound_of_fan_in(fan_in)
                self.bias[m].uniform_(-b, b)

    def reset_parameters_default(self):
        # What nn.Conv2d(len(sources), 1, 5) does for each map in the seed.
        self._reset(lambda fan_in: 1 / math.sqrt(fan_in))

    def reset_parameters_paper(self):
        self._reset(lambda fan_in: 2.4 / fan_in)

    def dense_weight(self, weight=None):
        """The (16, 6, 5, 5) kernel built from ``weight`` (default: the live
        kernels; SDLM passes their squares, the fused engine their step sizes)."""
        weight = self.weight if weight is None else weight
        dense = weight.new_zeros(len(self.table) * 6, 5, 5).index_copy(0, self.dense_index, weight)
        return dense.view(len(self.table), 6, 5, 5)

    def preact(self, x):
        return F.conv2d(x, self.dense_weight(), self.bias)


class C5(_Layer):
    """C5: 120 maps, a 5x5 convolution over all 16 S4 maps (48,120 parameters).

    A convolution, not a fully connected layer: on a 32x32 input its maps are 1x1.
    (B, 16, 5, 5) -> (B, 120, 1, 1)
    """

    def __init__(self, f):
        super().__init__(f)
        self.conv = nn.Conv2d(16, 120, kernel_size=5)

    def reset_parameters_paper(self):
        _paper_uniform_(self.conv.weight, 400)
        _paper_uniform_(self.conv.bias, 400)

    def preact(self, x):
        return self.conv(x)


class F6(_Layer):
    """F6: 84 units, dot product with the 120 C5 outputs, bias, f (10,164 parameters).

    (B, 120) -> (B, 84)
    """

    def __init__(self, f):
        super().__init__(f)
        self.fc = nn.Linear(120, 84)

    def reset_parameters_paper(self):
        _paper_uniform_(self.fc.weight, 120)
        _paper_uniform_(self.fc.bias, 120)

    def preact(self, x):
        return self.fc(x)


class RBF(nn.Module):
    """Output layer: Euclidean RBF units, y_i = sum_j (x_j - w_ij)^2 (Section II.B).

    The centres w_i are the fixed +-1 bitmaps of Fig. 3; ``trainable=True``
    lets them learn, as the paper allows. The outputs are penalties: the
    smaller y_i, the more the input looks like class i.

    (B, 84) -> (B, 10)
    """

    lower_is_better = True

    def __init__(self, trainable=False):
        super().__init__()
        if trainable:
            self.centres = nn.Parameter(rbf_centres())
        else:
            self.register_buffer("centres", rbf_centres())

    def forward(self, x):
        return ((x[:, None, :] - self.centres) ** 2).sum(dim=2)


class LinearOutput(nn.Linear):
    """The seed write-up's output: a Linear layer giving 10 logits (higher is better)."""

    lower_is_better = False

    def __init__(self):
        super().__init__(84, 10)


PRESETS = ("paper", "seed")


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998, Section II.B, Fig. 2).

    ``preset="paper"`` (the default) is the paper's network: f(a) = 1.7159
    tanh(2a/3) in every C, S and F layer, Euclidean RBF output on fixed
    bitmaps, weights uniform in +-2.4/fan-in; 60,000 trainable parameters.

    ``preset="seed"`` is the user's original baseline: plain tanh in C1 to C5,
    f in F6, a Linear output and PyTorch's default initialisation; 60,850
    parameters.

    ``forward`` maps (B, 1, 32, 32) to (B, 10). For the paper preset these are
    RBF penalties (smaller is better), for the seed preset logits (larger is
    better): use ``predict`` to get class indices either way.
    """

    def __init__(self, preset="paper", rbf_trainable=False):
        super().__init__()
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
        self.preset = preset
        paper = preset == "paper"
        squash = ScaledTanh if paper else Tanh
        self.C1 = C1(squash())
        self.S2 = SubSampling(6, squash())
        self.C3 = C3(squash())
        self.S4 = SubSampling(16, squash())
        self.C5 = C5(squash())
        self.F6 = F6(ScaledTanh())
        self.output = RBF(rbf_trainable) if paper else LinearOutput()
        if paper:
            for layer in self.layers():
                layer.reset_parameters_paper()

    @classmethod
    def seed(cls):
        """The baseline network of the user's original write-up."""
        return cls(preset="seed")

    @classmethod
    def pretrained(cls, path=None, map_location="cpu"):
        """The best paper-recipe network trained by this repo (see README)."""
        from .checkpoint import PRETRAINED, load_model

        return load_model(PRETRAINED if path is None else path, map_location=map_location)

    def layers(self):
        """The squashing layers C1, S2, C3, S4, C5, F6 in order."""
        return [self.C1, self.S2, self.C3, self.S4, self.C5, self.F6]

    @property
    def lower_is_better(self):
        return self.output.lower_is_better

    def features(self, x):
        """Every layer's output, by name, for the figures and for SDLM."""
        check_input(x)
        out = {}
        for name, layer in zip(("C1", "S2", "C3", "S4", "C5", "F6"), self.layers()):
            if name == "F6":
                x = x.flatten(1)  # (B, 120, 1, 1) -> (B, 120)
            x = out[name] = layer(x)
        return out

    def forward(self, x):
        check_input(x)
        x = self.S2(self.C1(x))
        x = self.S4(self.C3(x))
        x = self.C5(x).flatten(1)  # (B, 120, 1, 1) -> (B, 120)
        return self.output(self.F6(x))

    @torch.no_grad()
    def predict(self, x):
        """Class indices (B,): argmin of the RBF penalties, argmax of the logits."""
        out = self(x)
        return out.argmin(dim=1) if self.lower_is_better else out.argmax(dim=1)


def check_input(x):
    """Raise a ValueError that names the expected and actual input."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"LeNet5 expects a torch.Tensor of shape (B, 1, 32, 32), got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(
            f"LeNet5 expects a floating tensor of shape (B, 1, 32, 32), got dtype {x.dtype}; "
            "scale images with lenet5.paper_input, which maps 0..255 to -0.1..1.175"
        )
    if x.dim() == 4 and x.shape[1:] == (1, 32, 32):
        return
    shape = tuple(x.shape)
    hint = ""
    if shape[-2:] == (28, 28):
        hint = "; MNIST digits are 28x28: pad them by 2 pixels on every side (lenet5.paper_input does this)"
    elif x.dim() == 3 and shape == (1, 32, 32):
        hint = "; add the batch dimension with x.unsqueeze(0)"
    raise ValueError(f"LeNet5 expects input of shape (B, 1, 32, 32), got {shape}{hint}")
