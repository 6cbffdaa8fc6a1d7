"""What every digitlab classifier shares.

A digitlab model is a scikit-learn estimator (``fit``/``predict``/
``predict_proba``, parameters as ``__init__`` keywords) that can also

* give its learned state as arrays plus JSON (:meth:`DigitClassifier.get_state`)
  and be rebuilt from them (:meth:`DigitClassifier.from_state`), so models are
  saved as safetensors + JSON and never pickled;
* optionally give exact per-pixel contributions to a class score
  (:meth:`DigitClassifier.contributions`), used by :mod:`digitlab.explain`.

Inputs ``X`` are ``(n, 784)`` or ``(n, 28, 28)`` pixel intensities on the
0-255 scale, as uint8 or float.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array

__all__ = ["DigitClassifier", "as_pixels", "encode_labels"]


def as_pixels(X: Any, dtype: type = np.float32) -> np.ndarray:
    """Validate and flatten inputs to ``(n, n_features)``.

    Parameters
    ----------
    X : array-like, shape (n, 784) or (n, 28, 28)

    Returns
    -------
    ndarray of ``dtype``, shape (n, 784) (or (n, d) for other 2-D inputs)
    """
    arr = np.asarray(X) if not hasattr(X, "toarray") else X
    if getattr(arr, "ndim", 0) == 3:
        arr = arr.reshape(arr.shape[0], -1)
    return check_array(arr, dtype=dtype, ensure_all_finite=True)


class DigitClassifier(ClassifierMixin, BaseEstimator):
    """Mixin base for digitlab classifiers; see the module docstring."""

    #: Family shown by ``digitlab runs`` and ``GET /v1/models`` (e.g. "linear", "tree", "cnn").
    family: ClassVar[str] = "other"

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Return the learned state as named arrays and JSON-able metadata."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray],
                   meta: dict[str, Any]) -> DigitClassifier:
        """Rebuild a fitted estimator from ``get_params()`` and :meth:`get_state` output."""
        raise NotImplementedError(f"{cls.__name__} cannot be loaded")

    def scores(self, X: Any) -> np.ndarray:
        """Raw per-class scores, shape (n, n_classes): ``decision_function`` if any, else log-probabilities."""
        if hasattr(self, "decision_function"):
            s = np.asarray(self.decision_function(X))
            if s.ndim == 2:
                return s
        return np.log(np.clip(self.predict_proba(X), 1e-12, 1.0))


def encode_labels(y: np.ndarray, error: type[Exception] = ValueError) -> tuple[np.ndarray, np.ndarray]:
    """Check classification targets and encode them as indices into the sorted classes.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
    error : exception type, default=ValueError
        Raised when there are fewer than 2 classes.

    Returns
    -------
    classes : ndarray of shape (n_classes,)
    y_idx : ndarray of int of shape (n_samples,)
        ``classes[y_idx] == y``.
    """
    check_classification_targets(y)
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise error(f"need at least 2 classes; the labels have only {len(classes)} class")
    return classes, y_idx
