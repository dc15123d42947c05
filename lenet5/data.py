"""MNIST as the paper feeds it: 32x32, background -0.1, ink 1.175 (Section II.B).

The whole set is held as one tensor on the training device and shuffled by
index each pass, so the training loop never touches PIL or a DataLoader.
"""

import os

import torch
import torch.nn.functional as F

BACKGROUND, INK = -0.1, 1.175
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def default_data_dir():
    return os.environ.get("LENET5_DATA_DIR", "data")


def paper_input(images):
    """Pad 28x28 digits to 32x32 and scale them as the paper does.

    ``images``: a uint8 tensor (0..255), a float tensor in [0, 1] or a PIL
    image, shaped (..., 28, 28). Returns float32 (..., 32, 32) with
    background -0.1 and ink 1.175: mean about 0, variance about 1.
    Usable as a torchvision transform.
    """
    if not isinstance(images, torch.Tensor):
        from torchvision.transforms.functional import pil_to_tensor

        images = pil_to_tensor(images)
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    x = F.pad(x, (2, 2, 2, 2))  # background is 0 before scaling
    return BACKGROUND + (INK - BACKGROUND) * x


class DataMissing(RuntimeError):
    """MNIST is neither on disk nor downloadable; the message says what to do."""


def load_mnist(root=None, train=True, device="cpu"):
    """(images (N, 1, 32, 32) float32, labels (N,) int64) on ``device``.

    Reads torchvision's layout ``root/MNIST/raw``; downloads when the files
    are missing and the network allows, else raises DataMissing.
    """
    from torchvision import datasets

    root = root or default_data_dir()
    try:
        ds = datasets.MNIST(root, train=train, download=False)
    except RuntimeError:
        try:
            ds = datasets.MNIST(root, train=train, download=True)
        except Exception as e:  # no network, a proxy, a half-written file...
            raw = os.path.join(os.path.abspath(root), "MNIST", "raw")
            raise DataMissing(
                f"MNIST is not in {raw} and could not be downloaded ({type(e).__name__}: {e}).\n"
                f"Put these four files there (or their .gz versions): {', '.join(MNIST_FILES)};\n"
                "or point --data-dir (or LENET5_DATA_DIR) at the folder that holds MNIST/raw."
            ) from None
    x = paper_input(ds.data[:, None]).to(device)
    return x, ds.targets.to(device)


def subset(n, total, seed):
    """A fixed, seed-determined choice of n of the total training patterns (Fig. 6)."""
    if not 0 < n <= total:
        raise ValueError(f"--train-size must be between 1 and {total}, got {n}")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=g)[:n].sort().values


# Distortion ranges. The paper names the maps (Section III.C: translation,
# scaling, squeezing, horizontal shearing) but not their ranges; these are ours.
MAX_SHIFT = 2.0  # pixels, each axis
MAX_SCALE = 0.10  # relative, both axes together
MAX_SQUEEZE = 0.10  # relative: x by (1 - s), y by (1 + s)
MAX_SHEAR = 0.20  # horizontal shift per unit of height


def distort(x, generator=None):
    """Random planar affine distortions of a batch (B, 1, 32, 32), on its device."""
    b, dev = x.shape[0], x.device

    def u(scale):  # uniform in [-scale, scale], drawn on the CPU so seeds agree across devices
        return ((2 * torch.rand(b, generator=generator) - 1) * scale).to(dev)

    scale, squeeze, shear = 1 + u(MAX_SCALE), u(MAX_SQUEEZE), u(MAX_SHEAR)
    sx, sy = scale * (1 - squeeze), scale * (1 + squeeze)
    # affine_grid maps output coordinates to input coordinates in [-1, 1],
    # so the matrix is the inverse of the distortion applied to the digit.
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = 1 / sx
    theta[:, 0, 1] = -shear / sy
    theta[:, 1, 1] = 1 / sy
    theta[:, 0, 2] = u(MAX_SHIFT * 2 / 32)
    theta[:, 1, 2] = u(MAX_SHIFT * 2 / 32)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with 0, so sample the image shifted to background 0.
    out = F.grid_sample(x - BACKGROUND, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + BACKGROUND
