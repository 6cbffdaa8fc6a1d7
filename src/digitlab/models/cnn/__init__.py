"""A small convolutional network (PyTorch, CPU) with on-the-fly augmentation: the ``cnn`` model.

* :mod:`~digitlab.models.cnn.net`: the network (:class:`DigitNet`), its input
  standardisation and :func:`augment` (needs torch);
* :mod:`~digitlab.models.cnn.inputs`: the input standardisation in NumPy (no torch);
* :mod:`~digitlab.models.cnn.estimator`: :class:`CNNClassifier` and the
  :data:`RECIPES` its parameters default to;
* :mod:`~digitlab.models.cnn.checkpoint`: checkpoints written while training;
* ``_threads``: how many CPU threads training and predictions use;
* ``_int8``: the 8-bit ONNX Runtime copy that predictions run on.

``digitlab train cnn --recipe default --seed 0 --n-threads 2 --out DIR``
trains on MNIST and saves a model folder with its card (docs/cnn.md).
Importing this package does not import torch: a saved CNN predicts with
ONNX Runtime alone (:mod:`~digitlab.models.cnn.estimator`); ``DigitNet``
and ``augment`` import it when first asked for. ``CNNClassifier`` and
``RECIPES`` are imported when first asked for too (the estimator brings
scikit-learn), so ``inputs`` and ``_int8`` are light to import alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digitlab.models.cnn.estimator import RECIPES, CNNClassifier
    from digitlab.models.cnn.net import DigitNet, augment

__all__ = ["RECIPES", "CNNClassifier", "DigitNet", "augment"]


def __getattr__(name: str) -> Any:
    """``DigitNet`` and ``augment`` from :mod:`~digitlab.models.cnn.net`, imported (with torch) on first use;
    ``CNNClassifier`` and ``RECIPES`` from :mod:`~digitlab.models.cnn.estimator`."""
    if name in ("RECIPES", "CNNClassifier"):
        return getattr(importlib.import_module("digitlab.models.cnn.estimator"), name)
    if name in ("DigitNet", "augment"):
        return getattr(importlib.import_module("digitlab.models.cnn.net"), name)
    raise AttributeError(f"module 'digitlab.models.cnn' has no attribute {name!r}")
