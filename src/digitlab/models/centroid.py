"""Nearest class mean: the NumPy exercise's model, vectorised."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted

from digitlab.models._linear import ScoredClassifier, class_index
from digitlab.models._validation import check_number, fit_data, predict_data
from digitlab.models.base import encode_labels

__all__ = ["NearestCentroidClassifier"]


class NearestCentroidClassifier(ScoredClassifier):
    """Classify by the nearest class-mean image (Euclidean distance).

    Parameters
    ----------
    temperature : float, default=1000.0
        The scale of the logits: ``-distance**2 / temperature`` (squared
        distances on the 0-255 pixel scale are in the millions; 0-1 images
        are measured on the 0-255 scale too). It does not change predictions;
        :meth:`calibrate` fits ``temperature_`` on top of it, which the
        default alone leaves far too sure of itself.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    centroids_ : ndarray of shape (n_classes, n_features)
        Mean image of each class, on the input scale.
    temperature_ : float
        Calibration: ``predict_proba`` is ``softmax(-distance**2 / temperature / temperature_)``;
        1 after ``fit``, fitted by :meth:`calibrate`.
    input_scale_ : {"0-255", "0-1", "features"}
    n_features_in_ : int

    Notes
    -----
    The scores are ``-distance**2``, so the probabilities are the softmax of
    the scores over ``temperature_`` only when ``temperature`` is 1
    (``proba_is_softmax`` is False); :meth:`scores_and_proba` still takes one pass.
    """

    family = "centroid"
    explanation = "exact"
    thread_safe = True
    proba_is_softmax = False
    fit_progress = False
    fit_checkpoints = False

    centroids_: NDArray[np.float64]
    n_features_in_: int

    def __init__(self, temperature: float = 1000.0) -> None:
        self.temperature = temperature

    def fit(self, X: ArrayLike, y: ArrayLike) -> NearestCentroidClassifier:
        """Store the mean image of each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        check_number("temperature", self.temperature, 0, low_open=True)
        pixels, labels = fit_data(self, X, y, np.float64)
        self.classes_, y_idx = encode_labels(labels)
        self.centroids_ = np.stack([pixels[y_idx == k].mean(axis=0) for k in range(len(self.classes_))])
        return self

    def _pixels(self, X: ArrayLike) -> NDArray[np.float64]:
        pixels = predict_data(self, X, np.float64)
        return pixels

    def _sq_distances(self, X: ArrayLike) -> NDArray[np.float64]:
        x = self._pixels(X)
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2 ; shape (n, n_classes)
        d: NDArray[np.float64] = (x * x).sum(1)[:, None] - 2 * x @ self.centroids_.T \
            + (self.centroids_ ** 2).sum(1)[None, :]
        return np.maximum(d, 0.0)

    def scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """Negative squared distance to each centroid, shape (n_samples, n_classes)."""
        return -self._sq_distances(X)

    def _to_logits(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """``-distance**2 / temperature``, shape (n_samples, n_classes)."""
        return scores / self.temperature

    def contributions(self, X: ArrayLike, digit: int) -> NDArray[np.float64]:
        """Exact per-pixel contributions to the score of class ``digit``.

        The score of class k is ``-|x - c_k|^2``; relative to the mean of the
        other classes' scores, pixel j contributes
        ``mean_{m != k} (x_j - c_mj)^2 - (x_j - c_kj)^2``, so the map sums to
        the score margin over the average other class.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        x = self._pixels(X)
        k = class_index(self.classes_, digit)
        sq = (x[:, None, :] - self.centroids_[None, :, :]) ** 2  # (n, n_classes, d)
        others: NDArray[np.float64] = np.delete(sq, k, axis=1).mean(axis=1)
        return others - sq[:, k, :]

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        check_is_fitted(self)
        return {"classes": self.classes_, "centroids": self.centroids_}, {"n_features_in": int(self.n_features_in_)}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, NDArray[Any]],
                   meta: dict[str, Any]) -> NearestCentroidClassifier:
        est = cls(**params)
        est.classes_ = arrays["classes"]
        est.centroids_ = arrays["centroids"]
        est.n_features_in_ = int(meta["n_features_in"])
        return est
