"""Shared helpers of the score-based models: pixel scaling, exact contributions, probabilities from scores, predict."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from digitlab.errors import ParameterError
from digitlab.models._validation import predict_data
from digitlab.models.base import DigitClassifier, softmax

__all__ = ["SCALE", "LinearClassifier", "ScoredClassifier", "binary_margin", "class_index", "linear_contributions"]

#: Pixels are divided by this before any linear or kernel model sees them (0-255 -> [0, 1]).
SCALE = 255.0


def class_index(classes: ArrayLike, digit: object) -> int:
    """Position of ``digit`` in ``classes``.

    Raises
    ------
    ParameterError
        ``digit`` is not one of ``classes`` (the message lists them).
    """
    known = np.asarray(classes)
    hits = np.flatnonzero(known == digit)
    if hits.size == 0:
        raise ParameterError(f"digit must be one of the model's classes {known.tolist()}, got {digit!r}")
    return int(hits[0])


def linear_contributions(Xs: NDArray[np.float64], coef: NDArray[np.float64]) -> NDArray[np.float64]:
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
    out: NDArray[np.float64] = Xs * coef[None, :]
    return out


def binary_margin(s: NDArray[np.float64]) -> NDArray[np.float64]:
    """scikit-learn's ``decision_function`` shape: (n,) margin ``s1 - s0`` for two classes, else ``s`` (n, k)."""
    out: NDArray[np.float64] = s[:, 1] - s[:, 0] if s.shape[1] == 2 else s
    return out


class ScoredClassifier(DigitClassifier):
    """Base of models that give every class a score: predict the best, decide by margin, probabilities from scores.

    Subclasses define :meth:`scores` and, unless the scores are their
    uncalibrated logits, :meth:`_to_logits`; the probabilities are then
    ``softmax(_to_logits(scores) / temperature_)``, so :meth:`predict_proba`,
    :meth:`scores_and_proba` and :meth:`calibrate` agree by construction, and
    the second costs one model pass.
    """

    def scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class scores, shape (n_samples, n_classes)."""
        raise NotImplementedError

    def _to_logits(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Uncalibrated logits from the scores, both shape (n_samples, n_classes): the scores unless overridden."""
        return scores

    def _proba(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calibrated probabilities from the scores, both shape (n_samples, n_classes)."""
        return softmax(self._to_logits(scores) / self.temperature_)

    def calibration_logits(self, X: ArrayLike) -> NDArray[np.float64]:
        """``_to_logits(scores(X))``, shape (n_samples, n_classes)."""
        return self._to_logits(np.asarray(self.scores(X), dtype=np.float64))

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities, shape (n_samples, n_classes)."""
        return self._proba(self.scores(X))

    def scores_and_proba(self, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Scores and probabilities of ``X`` from one model pass, both shape (n_samples, n_classes)."""
        s = np.asarray(self.scores(X), dtype=np.float64)
        return s, self._proba(s)

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """The class scores, shape (n_samples, n_classes).

        For two classes: the margin ``score1 - score0``, shape (n_samples,).
        """
        return binary_margin(self.scores(X))

    def predict(self, X: ArrayLike) -> NDArray[np.generic]:
        """Class of the highest score, shape (n_samples,)."""
        s = self.scores(X)  # first: it raises NotFittedError before fit
        out: NDArray[np.generic] = self.classes_[np.argmax(s, axis=1)]
        return out


class LinearClassifier(ScoredClassifier):
    """Base of the linear models: ``scores = (X / 255) @ coef_.T + intercept_`` and exact contributions.

    (``X`` as it is for 0-1 pixels and for ``"features"``; see :mod:`digitlab.models._validation`.)
    """

    explanation = "exact"

    coef_: NDArray[np.float64]
    intercept_: NDArray[np.float64]

    def _scaled(self, X: ArrayLike) -> NDArray[np.float64]:
        out = predict_data(self, X, np.float64, to="unit")
        return out

    def scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """Linear class scores, shape (n_samples, n_classes)."""
        return self._scaled(X) @ self.coef_.T + self.intercept_

    def contributions(self, X: ArrayLike, digit: int) -> NDArray[np.float64]:
        """Exact per-pixel contributions ``coef_[k, j] * x_j / 255`` to class ``digit``'s score.

        Returns
        -------
        ndarray of shape (n_samples, n_features); rows plus ``intercept_[k]`` equal the score.
        """
        k = class_index(self.classes_, digit)
        return linear_contributions(self._scaled(X), self.coef_[k])
