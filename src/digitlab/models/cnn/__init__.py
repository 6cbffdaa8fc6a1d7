"""A small convolutional network (PyTorch, CPU) with on-the-fly augmentation: the ``cnn`` model.

* :mod:`~digitlab.models.cnn.net`: the network (:class:`DigitNet`), its input
  standardisation and :func:`augment`;
* :mod:`~digitlab.models.cnn.estimator`: :class:`CNNClassifier` and the
  :data:`RECIPES` its parameters default to;
* :mod:`~digitlab.models.cnn.checkpoint`: checkpoints written while training;
* ``_threads``: how many CPU threads training and predictions use;
* ``_int8``: the 8-bit ONNX Runtime copy that predictions run on.

``digitlab train cnn --recipe default --seed 0 --n-threads 2 --out DIR``
trains on MNIST and saves a model folder with its card (docs/cnn.md).
"""

from digitlab.models.cnn.estimator import RECIPES, CNNClassifier
from digitlab.models.cnn.net import DigitNet, augment

__all__ = ["RECIPES", "CNNClassifier", "DigitNet", "augment"]
