"""The CNN's input convention, without torch: MNIST standardisation of 0-255 pixels.

The network sees ``(pixels / 255 - MNIST_MEAN) / MNIST_STD``, shape
``(n, 1, 28, 28)``. This module holds the two constants and the NumPy
version of the transform (:func:`standardised`), which the int8 graph's
predictions and the ONNX export (:mod:`digitlab.export`) use; the torch
version for training is :func:`digitlab.models.cnn.net.standardise`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["MNIST_MEAN", "MNIST_STD", "standardised"]

#: MNIST pixel mean and standard deviation on the 0-1 scale: what the network's input is standardised with.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def standardised(X: NDArray[np.floating] | NDArray[np.integer]) -> NDArray[np.float32]:
    """(n, 784) pixels 0-255 -> (n, 1, 28, 28) standardised float32, in NumPy: the int8 graph's input.

    The same values as ``standardise(to_tensor(X))`` to float32 rounding, without torch's per-call cost.
    """
    x = np.asarray(X, dtype=np.float32).reshape(-1, 1, 28, 28)
    out: NDArray[np.float32] = (x * np.float32(1 / 255) - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)
    return out
