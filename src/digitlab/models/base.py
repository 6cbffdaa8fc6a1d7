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
``proba_is_softmax``              ``predict_proba(X) == softmax(scores(X) / temperature_)``, so one pass gives both
``fit_progress``                  ``fit(X, y, progress=fn)`` reports progress (:class:`ProgressFit`)
``fit_checkpoints``               ``fit(..., checkpoint_dir=..., resume=...)`` (:class:`CheckpointFit`)
``fit_init``                      ``fit(..., init=fitted)`` starts from another fitted model's weights (fine-tuning)
================================  ==========================================================

Every fitted model also has

* ``input_scale_``: the scale of its training images, ``"0-255"``, ``"0-1"``
  or ``"features"`` (:mod:`digitlab.models._validation`); images on the
  other pixel scale are refused at prediction;
* ``temperature_``: its probabilities are ``softmax(logits / temperature_)``
  (:mod:`digitlab.models.calibration`); :meth:`DigitClassifier.calibrate`
  fits it on held-out images.

Inputs ``X`` are ``(n, 784)`` or ``(n, 28, 28)`` pixel intensities on the
0-255 scale (or on the 0-1 scale, if the model was fitted so), as uint8 or float.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array

from digitlab.errors import ParameterError

if TYPE_CHECKING:
    from digitlab.models._validation import InputScale

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
    fit_init: ClassVar[bool] = False

    classes_: NDArray[Any]
    #: The scale of the training images (set by ``fit``; models saved before it was recorded were fitted on 0-255).
    input_scale_: InputScale = "0-255"
    #: The brightest training value (what the 0-1 check at prediction relies on).
    input_max_: float = 255.0
    #: Probabilities are ``softmax(logits / temperature_)``; ``fit`` resets it, :meth:`calibrate` fits it.
    temperature_: float = 1.0

    def shared_state(self) -> dict[str, Any]:
        """The fitted facts every family has, as JSON: input scale and temperature (saved with the model)."""
        return {"input_scale": self.input_scale_, "input_max": float(self.input_max_),
                "temperature": float(self.temperature_)}

    def set_shared_state(self, meta: dict[str, Any]) -> None:
        """Restore :meth:`shared_state` from saved ``meta`` (absent keys keep the defaults of older models).

        Raises
        ------
        ValueError
            An unknown scale or a temperature that is not a positive number.
        """
        from digitlab.models._validation import SCALES

        scale = meta.get("input_scale", "0-255")
        if scale not in SCALES:
            raise ValueError(f"input_scale must be one of {', '.join(SCALES)}, got {scale!r}")
        temperature = float(meta.get("temperature", 1.0))
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
        self.input_scale_ = scale
        self.input_max_ = float(meta.get("input_max", 255.0))
        self.temperature_ = temperature

    def calibration_logits(self, X: ArrayLike) -> NDArray[np.float64]:
        """Uncalibrated logits of ``X``, shape (n, n_classes): ``predict_proba`` is ``softmax(logits / temperature_)``.

        The default recovers them from the probabilities (``temperature_ * log p``,
        exact up to a constant per row); families with scores give them directly.
        """
        p = np.asarray(self.predict_proba(X), dtype=np.float64)
        out: NDArray[np.float64] = self.temperature_ * np.log(np.clip(p, 1e-300, 1.0))
        return out

    def calibration_target(self, y: ArrayLike) -> NDArray[np.intp]:
        """Labels ``y`` as positions in ``classes_``, shape (n,).

        Raises
        ------
        ParameterError
            A label the model does not know.
        """
        labels = np.asarray(y)
        known = np.asarray(self.classes_)
        idx = np.searchsorted(known, labels).clip(0, len(known) - 1)
        bad = known[idx] != labels
        if bad.any():
            raise ParameterError(f"calibration labels must be the model's classes {known.tolist()}, got "
                                 f"{labels[bad][0]!r}")
        out: NDArray[np.intp] = idx.astype(np.intp)
        return out

    def calibrate(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit ``temperature_`` on labelled images the model was not trained on; predictions do not change.

        ``temperature_`` becomes the ``T`` that minimises the Brier score of
        ``softmax(calibration_logits(X) / T)`` on ``y``
        (:func:`digitlab.models.calibration.fit_temperature`); ``predict_proba``
        and ``scores_and_proba`` use it from then on, and it is saved with the
        model. A few hundred images (some of every class) are enough.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
            Held-out images, on the scale the model was fitted on.
        y : array-like of shape (n_samples,)
            Their labels (digit labels for every family, ``sgd`` included).

        Returns
        -------
        self

        Raises
        ------
        ParameterError
            No images, not one label per image, or a label the model does not know.
        """
        from sklearn.utils.validation import check_is_fitted

        from digitlab.models.calibration import fit_temperature

        check_is_fitted(self)
        labels = np.asarray(y).reshape(-1)
        n = len(np.asarray(X))
        if n == 0 or n != len(labels):
            raise ParameterError(f"calibrate needs one label per image and at least one image; got {n} image(s) "
                                 f"and {len(labels)} label(s)")
        y_idx = self.calibration_target(labels)
        self.temperature_ = fit_temperature(self.calibration_logits(X), y_idx)
        return self

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
            return s, softmax(s / self.temperature_)
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
