"""The network, its input conventions and its augmentation.

For ``width=w`` and ``depth=d``::

    (n, 1, 28, 28)  pixels / 255, standardised with MNIST_MEAN and MNIST_STD
    conv3x3(1 -> w)                  + BN + ReLU, maxpool 2  -> (n, w, 14, 14)
    d x [conv3x3(-> 2w) + BN + ReLU],             maxpool 2  -> (n, 2w, 7, 7)
    d x [conv3x3(-> 4w) + BN + ReLU],             maxpool 2  -> (n, 4w, 4, 4)   (ceil mode)
    flatten, dropout, linear(16*4w -> n_classes)             -> (n, n_classes) logits

The first block has one convolution whatever ``depth``: at 28x28 a second one
would cost as much as a third of the rest of the network.

:func:`augment` distorts a batch with one ``F.affine_grid``/``F.grid_sample``
call: a random affine map (rotation, scale, shift) plus an optional smooth
elastic displacement field.
"""

from __future__ import annotations

import copy
import math
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from digitlab.models.cnn.inputs import MNIST_MEAN, MNIST_STD, standardised  # torch-free; re-exported here

__all__ = ["AUGMENTS", "MNIST_MEAN", "MNIST_STD", "DigitNet", "augment", "channels_last", "fold_batchnorm",
           "standardise", "standardised", "to_tensor"]

#: The kinds of :func:`augment`.
AUGMENTS = ("none", "affine", "elastic")

_M = TypeVar("_M", bound=nn.Module)


class DigitNet(nn.Module):
    """Three conv-BN-ReLU-pool blocks and a linear layer; see the module docstring.

    Parameters
    ----------
    width : int
        Channels of the first block (then 2x and 4x).
    dropout : float
        Dropout before the linear layer.
    n_classes : int
    depth : int
        Convolutions in the second and third blocks (the first, at 28x28, has one).
    """

    def __init__(self, width: int = 32, dropout: float = 0.25, n_classes: int = 10, depth: int = 1) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int, n_convs: int) -> list[nn.Module]:
            layers: list[nn.Module] = []
            for i in range(n_convs):
                layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                           nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            return [*layers, nn.MaxPool2d(2, ceil_mode=True)]

        self.features = nn.Sequential(*block(1, w, 1), *block(w, 2 * w, depth), *block(2 * w, 4 * w, depth))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * w * 4 * 4, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 1, 28, 28) standardised pixels -> (n, n_classes) logits."""
        x = self.features(x)                     # (n, 4w, 4, 4)
        x = torch.flatten(x, 1)                  # (n, 64w)
        logits: torch.Tensor = self.fc(self.dropout(x))  # (n, n_classes)
        return logits


def channels_last(module: _M) -> _M:
    """``module`` with its 4-D weights in channels-last order (faster convolutions on the CPU), in place."""
    # torch's type stubs omit the documented ``memory_format`` keyword of Module.to
    return module.to(memory_format=torch.channels_last)  # type: ignore[call-overload,no-any-return]


def fold_batchnorm(net: DigitNet) -> DigitNet:
    """An eval-mode copy of ``net`` whose BatchNorm layers are folded into the convolutions before them.

    The copy gives the same logits with one pass fewer per layer: what
    predictions, integrated gradients and the int8 export run.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(net).eval()
    out: list[nn.Module] = []
    for layer in folded.features:
        previous = out[-1] if out else None
        if isinstance(layer, nn.BatchNorm2d) and isinstance(previous, nn.Conv2d):
            out[-1] = fuse_conv_bn_eval(previous, layer)
        else:
            out.append(layer)
    folded.features = nn.Sequential(*out)
    return channels_last(folded)


def to_tensor(X: NDArray[np.floating] | NDArray[np.integer]) -> torch.Tensor:
    """(n, 784) pixels 0-255 -> (n, 1, 28, 28) float32 on the 0-1 scale (a new tensor: ``X`` is never changed)."""
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).view(-1, 1, 28, 28).div(255.0)


def standardise(x: torch.Tensor) -> torch.Tensor:
    """(n, 1, 28, 28) pixels on the 0-1 scale -> the network's input."""
    return (x - MNIST_MEAN) / MNIST_STD


def augment(x: torch.Tensor, *, kind: str = "elastic", max_rotate: float = 12.0, max_scale: float = 0.1,
            max_shift: float = 2.5, elastic_alpha: float = 1.5, elastic_grid: int = 5) -> torch.Tensor:
    """Randomly distort a batch of digits with one ``grid_sample`` call.

    Parameters
    ----------
    x : Tensor, shape (n, 1, 28, 28)
        Ink on a zero background (padding is zero).
    kind : {"none", "affine", "elastic"}
    max_rotate : float
        Degrees, uniform in ``[-max_rotate, max_rotate]``.
    max_scale : float
        Scale uniform in ``[1 - max_scale, 1 + max_scale]``.
    max_shift : float
        Pixels, uniform per axis in ``[-max_shift, max_shift]``.
    elastic_alpha : float
        Largest elastic displacement in pixels: a uniform random field on an
        ``elastic_grid`` x ``elastic_grid`` lattice, upsampled bicubically
        (smooth, like Simard et al.'s Gaussian-filtered field).
    elastic_grid : int

    Returns
    -------
    Tensor, shape (n, 1, 28, 28)
        Uses the global torch RNG.
    """
    if kind == "none":
        return x
    n, _, h, w = x.shape
    angle = (torch.rand(n) * 2 - 1) * math.radians(max_rotate)                 # (n,)
    scale = 1 + (torch.rand(n) * 2 - 1) * max_scale                            # (n,)
    shift = (torch.rand(n, 2) * 2 - 1) * max_shift * 2 / torch.tensor([w, h])  # (n, 2): pixels -> [-1, 1] units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale              # output -> input coordinates
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)         # (n, 2, 3)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)           # (n, h, w, 2)
    if kind == "elastic":
        field = torch.rand(n, 2, elastic_grid, elastic_grid) * 2 - 1           # (n, 2, g, g)
        field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=True)  # (n, 2, h, w)
        grid = grid + field.permute(0, 2, 3, 1) * (elastic_alpha * 2 / w)      # (n, h, w, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
