"""What every digitlab classifier is, and what each one declares it can do.

A digitlab model is a scikit-learn estimator (``fit``/``predict``/
``predict_proba``, parameters as ``__init__`` keywords) that can also

* give its learned state as arrays plus JSON (:meth:`DigitClassifier.get_state`)
  and be rebuilt from them (:meth:`DigitClassifier.from_state`), so models are
  saved as safetensors + JSON and never pickled;
* give raw per-class scores (:meth:`DigitClassifier.scores`) and, in one
  call, scores and probabilities (:meth:`DigitClassifier.scores_and_proba`).

Capabilities are **declared** by each class, never discovered by probing:

================================  ==========================================================
``family``                        shown by ``digitlab runs`` and ``GET /v1/models``
``explanation``                   ``"exact"`` (:class:`ExactExplainer`), ``"integrated_gradients"``
                                  (:class:`GradientExplainer`) or ``"occlusion"`` (any model)
``thread_safe``                   a fitted model may predict and explain from several threads at once
``proba_is_softmax``              ``predict_proba(X) == softmax(scores(X))``, so one pass gives both
``fit_progress``                  ``fit(X, y, progress=fn)`` reports progress (:class:`ProgressFit`)
``fit_checkpoints``               ``fit(..., checkpoint_dir=..., resume=...)`` (:class:`CheckpointFit`)
================================  ==========================================================

Inputs ``X`` are ``(n, 784)`` or ``(n, 28, 28)`` pixel intensities on the
0-255 scale, as uint8 or float.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array

from digitlab.errors import ParameterError

__all__ = [
    "CheckpointFit",
    "DigitClassifier",
    "ExactExplainer",
    "ExplanationMethod",
    "GradientExplainer",
    "ProgressFit",
    "ProgressFn",
    "as_pixels",
    "encode_labels",
    "softmax",
]

#: ``progress(key, completed, total, **info)``: ``key`` names a bar (``"epoch"``, ``"batch"``, ...).
ProgressFn = Callable[..., None]
#: How :func:`digitlab.explain.explain` explains a model.
ExplanationMethod = Literal["exact", "integrated_gradients", "occlusion"]


def softmax(z: NDArray[np.floating]) -> NDArray[np.float64]:
    """Row-wise softmax of scores ``z``, shape (n, k); stable for any finite scores."""
    shifted: NDArray[np.float64] = np.asarray(z, dtype=np.float64) - z.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    total: NDArray[np.float64] = p.sum(axis=1, keepdims=True)
    return p / total


def as_pixels(X: ArrayLike, dtype: DTypeLike = np.float32) -> NDArray[Any]:
    """Validate and flatten inputs to ``(n, n_features)``.

    Parameters
    ----------
    X : array-like, shape (n, 784) or (n, 28, 28)
    dtype : dtype, or ``"numeric"`` to keep any numeric dtype

    Returns
    -------
    ndarray of ``dtype``, shape (n, 784) (or (n, d) for other 2-D inputs)
    """
    arr: Any = X if hasattr(X, "toarray") else np.asarray(X)  # a sparse matrix: check_array says it is refused
    if getattr(arr, "ndim", 0) == 3:
        arr = arr.reshape(arr.shape[0], -1)
    out: NDArray[Any] = check_array(arr, dtype=dtype, ensure_all_finite=True)
    return out


class DigitClassifier(ClassifierMixin, BaseEstimator):
    """Base of digitlab classifiers; see the module docstring for the declared capabilities."""

    family: ClassVar[str] = "other"
    explanation: ClassVar[ExplanationMethod] = "occlusion"
    thread_safe: ClassVar[bool] = True
    proba_is_softmax: ClassVar[bool] = False
    fit_progress: ClassVar[bool] = False
    fit_checkpoints: ClassVar[bool] = False

    classes_: NDArray[Any]

    def _html_repr(self) -> str:
        """The notebook display (scikit-learn's ``_repr_html_`` and ``_repr_mimebundle_`` call it): the card."""
        from digitlab.notebook.display import model_html
        return model_html(self)

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        """Return the learned state as named arrays and JSON-able metadata."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, NDArray[Any]],
                   meta: dict[str, Any]) -> DigitClassifier:
        """Rebuild a fitted estimator from ``get_params()`` and :meth:`get_state` output."""
        raise NotImplementedError(f"{cls.__name__} cannot be loaded")

    def scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """Raw per-class scores, shape (n, n_classes): ``decision_function`` if 2-D, else log-probabilities."""
        if hasattr(self, "decision_function"):
            s = np.asarray(self.decision_function(X), dtype=np.float64)
            if s.ndim == 2:
                return s
        logp: NDArray[np.float64] = np.log(np.clip(self.predict_proba(X), 1e-12, 1.0))
        return logp

    def scores_and_proba(self, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Scores and probabilities of ``X`` in one call, both shape (n, n_classes), float64.

        One model pass when ``proba_is_softmax``; two otherwise.
        """
        s = np.asarray(self.scores(X), dtype=np.float64)
        if self.proba_is_softmax:
            return s, softmax(s)
        return s, np.asarray(self.predict_proba(X), dtype=np.float64)


@runtime_checkable
class ExactExplainer(Protocol):
    """A model whose class scores split exactly into per-pixel contributions (``explanation = "exact"``)."""

    def contributions(self, X: ArrayLike, digit: int) -> NDArray[np.float64]:
        """Per-pixel contributions to the score of ``digit``, shape (n_samples, n_features)."""
        ...


@runtime_checkable
class GradientExplainer(Protocol):
    """A differentiable model (``explanation = "integrated_gradients"``)."""

    def integrated_gradients(self, X: ArrayLike, digit: int, steps: int = ...) -> NDArray[np.float64]:
        """Integrated gradients of the ``digit`` logit from a black image, shape (n_samples, 784)."""
        ...


class ProgressFit(Protocol):
    """``fit`` reports its progress (``fit_progress = True``)."""

    def fit(self, X: ArrayLike, y: ArrayLike, *, progress: ProgressFn | None = None) -> Self:
        """Fit, calling ``progress`` as work completes."""
        ...


class CheckpointFit(Protocol):
    """``fit`` writes checkpoints and resumes from them (``fit_checkpoints = True``)."""

    def fit(self, X: ArrayLike, y: ArrayLike, *, progress: ProgressFn | None = None,
            checkpoint_dir: str | os.PathLike[str] | None = None, resume: bool = False) -> Self:
        """Fit, checkpointing into ``checkpoint_dir``; ``resume`` continues from its last checkpoint."""
        ...


def encode_labels(y: ArrayLike) -> tuple[NDArray[Any], NDArray[np.intp]]:
    """Check classification targets and encode them as indices into the sorted classes.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)

    Returns
    -------
    classes : ndarray of shape (n_classes,)
    y_idx : ndarray of int of shape (n_samples,)
        ``classes[y_idx] == y``.

    Raises
    ------
    ParameterError
        Fewer than 2 classes.
    """
    check_classification_targets(y)
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ParameterError(f"need at least 2 classes; the labels have only {len(classes)} class")
    return classes, y_idx
