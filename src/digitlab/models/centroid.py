"""Nearest class mean: the NumPy exercise's model, vectorised."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from digitlab.models.base import DigitClassifier, as_pixels, encode_labels

__all__ = ["NearestCentroidClassifier"]


class NearestCentroidClassifier(DigitClassifier):
    """Classify by the nearest class-mean image (Euclidean distance).

    Parameters
    ----------
    temperature : float, default=1000.0
        ``predict_proba`` is a softmax of ``-distance**2 / temperature`` (squared
        distances on the 0-255 pixel scale are in the millions). It does not
        change predictions.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    centroids_ : ndarray of shape (n_classes, n_features)
        Mean image of each class, on the input scale.
    n_features_in_ : int
    """

    family = "centroid"

    def __init__(self, temperature: float = 1000.0) -> None:
        self.temperature = temperature

    def fit(self, X: Any, y: Any) -> NearestCentroidClassifier:
        """Store the mean image of each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        X = as_pixels(X, np.float64)
        X, y = validate_data(self, X, y, dtype=np.float64)
        self.classes_, y_idx = encode_labels(y)
        self.centroids_ = np.stack([X[y_idx == k].mean(axis=0) for k in range(len(self.classes_))])
        return self

    def _sq_distances(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, as_pixels(X, np.float64), reset=False, dtype=np.float64)
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2 ; shape (n, n_classes)
        d = (X * X).sum(1)[:, None] - 2 * X @ self.centroids_.T + (self.centroids_ ** 2).sum(1)[None, :]
        return np.maximum(d, 0.0)

    def decision_function(self, X: Any) -> np.ndarray:
        """Negative squared distance to each centroid, shape (n_samples, n_classes)."""
        return -self._sq_distances(X)

    def predict(self, X: Any) -> np.ndarray:
        """Label of the nearest centroid, shape (n_samples,)."""
        d = self._sq_distances(X)
        return self.classes_[np.argmin(d, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of ``-distance**2 / temperature``, shape (n_samples, n_classes)."""
        z = self.decision_function(X) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def contributions(self, X: Any, digit: int) -> np.ndarray:
        """Exact per-pixel contributions to the score of class ``digit``.

        The score of class k is ``-|x - c_k|^2``; relative to the mean of the
        other classes' scores, pixel j contributes
        ``mean_{m != k} (x_j - c_mj)^2 - (x_j - c_kj)^2``, so the map sums to
        the score margin over the average other class.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = validate_data(self, as_pixels(X, np.float64), reset=False, dtype=np.float64)
        k = int(np.flatnonzero(self.classes_ == digit)[0])
        sq = (X[:, None, :] - self.centroids_[None, :, :]) ** 2  # (n, n_classes, d)
        others = np.delete(sq, k, axis=1).mean(axis=1)
        return others - sq[:, k, :]

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        check_is_fitted(self)
        return {"classes": self.classes_, "centroids": self.centroids_}, {"n_features_in": int(self.n_features_in_)}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray],
                   meta: dict[str, Any]) -> NearestCentroidClassifier:
        est = cls(**params)
        est.classes_ = arrays["classes"]
        est.centroids_ = arrays["centroids"]
        est.n_features_in_ = int(meta["n_features_in"])
        return est
