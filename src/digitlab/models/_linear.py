"""Shared helpers of the score-based models: pixel scaling, exact contributions, softmax, predict."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from digitlab.models.base import DigitClassifier, as_pixels

__all__ = ["SCALE", "LinearClassifier", "ScoredClassifier", "binary_margin", "class_index", "linear_contributions", "softmax"]

#: Pixels are divided by this before any linear or kernel model sees them (0-255 -> [0, 1]).
SCALE = 255.0


def class_index(classes: np.ndarray, digit: Any) -> int:
    """Position of ``digit`` in ``classes``; ValueError naming the known classes if absent."""
    hits = np.flatnonzero(np.asarray(classes) == digit)
    if hits.size == 0:
        raise ValueError(f"class {digit!r} is not one of the model's classes {np.asarray(classes).tolist()}")
    return int(hits[0])


def linear_contributions(Xs: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Per-pixel terms ``coef_j * x_j`` of a linear score.

    Parameters
    ----------
    Xs : ndarray of shape (n, d)
        Scaled inputs.
    coef : ndarray of shape (d,)

    Returns
    -------
    ndarray of shape (n, d); each row plus the intercept sums to the score.
    """
    return Xs * coef[None, :]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``z``, shape (n, k)."""
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def binary_margin(s: np.ndarray) -> np.ndarray:
    """scikit-learn's ``decision_function`` shape: (n,) margin ``s1 - s0`` for two classes, else ``s`` (n, k)."""
    return s[:, 1] - s[:, 0] if s.shape[1] == 2 else s


class ScoredClassifier(DigitClassifier):
    """Base of models that give every class a score (``scores``): predict the best, decide by margin."""

    def decision_function(self, X: Any) -> np.ndarray:
        """The class scores, shape (n_samples, n_classes).

        For two classes: the margin ``score1 - score0``, shape (n_samples,).
        """
        return binary_margin(self.scores(X))

    def predict(self, X: Any) -> np.ndarray:
        """Class of the highest score, shape (n_samples,)."""
        s = self.scores(X)  # first: it raises NotFittedError before fit
        return self.classes_[np.argmax(s, axis=1)]


class LinearClassifier(ScoredClassifier):
    """Base of the linear models: ``scores = (X / 255) @ coef_.T + intercept_`` and exact contributions."""

    def _scaled(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, as_pixels(X, np.float64), reset=False, dtype=np.float64) / SCALE

    def scores(self, X: Any) -> np.ndarray:
        """Linear class scores, shape (n_samples, n_classes)."""
        return self._scaled(X) @ self.coef_.T + self.intercept_

    def contributions(self, X: Any, digit: Any) -> np.ndarray:
        """Exact per-pixel contributions ``coef_[k, j] * x_j / 255`` to class ``digit``'s score.

        Returns
        -------
        ndarray of shape (n_samples, n_features); rows plus ``intercept_[k]`` equal the score.
        """
        k = class_index(self.classes_, digit)
        return linear_contributions(self._scaled(X), self.coef_[k])
