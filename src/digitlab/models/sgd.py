"""Binary "digit d vs rest" logistic regression trained by SGD (the seed's zero detector)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted

from digitlab.errors import ParameterError
from digitlab.models._linear import class_index, linear_contributions
from digitlab.models._validation import check_choice, fit_data, predict_data
from digitlab.models.base import DigitClassifier

__all__ = ["BinarySGDClassifier"]


class BinarySGDClassifier(DigitClassifier):
    """Logistic regression "is it digit ``digit``?" fitted by SGD on pixels scaled to [0, 1].

    ``fit`` takes ordinary digit labels and learns ``y == digit``; the model's
    classes are ``[0, 1]`` (1 = "is ``digit``"). :meth:`score` scores that
    same binary target: ``make_model("sgd").fit(X, y).score(X, y)`` is the
    accuracy of "is it ``digit``?" on the digit labels ``y`` (it compares the
    predictions with :meth:`binary_target` of ``y``), so it is meaningful as
    scikit-learn users expect; binary metrics (precision, recall, F1) are
    what ``digitlab evaluate`` reports. :meth:`calibrate` also takes digit labels.

    Parameters
    ----------
    digit : int, default=0
        The positive class.
    alpha : float, default=1e-4
        L2 penalty of scikit-learn's ``SGDClassifier``.
    max_iter : int, default=20
        Epochs over the data (the full data converges in ~10).
    tol : float, default=1e-4
    class_weight : {"none", "balanced"}, default="none"
        "balanced" up-weights the rare positive class (raises recall, lowers precision).
    random_state : int, default=0

    Attributes
    ----------
    classes_ : ndarray ``[0, 1]``
    coef_ : ndarray of shape (n_features,)
        Weights on x / 255.
    intercept_ : float
    temperature_ : float
        ``P(digit) = sigmoid(log-odds / temperature_)``; 1 after ``fit``, fitted by :meth:`calibrate`.
    input_scale_ : {"0-255", "0-1", "features"}
    n_iter_ : int
        Epochs run.
    n_features_in_ : int

    Notes
    -----
    The scores are ``[-log-odds, log-odds]``, whose softmax is
    ``sigmoid(2 log-odds)``, not ``P(digit) = sigmoid(log-odds)``, so
    ``proba_is_softmax`` is False; :meth:`scores_and_proba` takes one pass.
    """

    family = "linear"
    explanation = "exact"
    thread_safe = True
    proba_is_softmax = False
    fit_progress = False
    fit_checkpoints = False

    coef_: NDArray[np.float64]
    intercept_: float
    n_iter_: int
    n_features_in_: int

    def __init__(self, digit: int = 0, alpha: float = 1e-4, max_iter: int = 20, tol: float = 1e-4,
                 class_weight: str = "none", random_state: int = 0) -> None:
        self.digit = digit
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.random_state = random_state

    def binary_target(self, y: ArrayLike) -> NDArray[np.int64]:
        """Digit labels to this model's 0/1 labels (1 where ``y == digit``), shape (n,)."""
        target: NDArray[np.int64] = (np.asarray(y) == self.digit).astype(np.int64)
        return target

    def fit(self, X: ArrayLike, y: ArrayLike) -> BinarySGDClassifier:
        """Fit ``y == digit`` against the rest.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        y : array-like of shape (n_samples,)
            Digit labels (any labels; the positive ones equal ``digit``).

        Returns
        -------
        self
        """
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import SGDClassifier

        check_choice("class_weight", self.class_weight, ("none", "balanced"))
        pixels, labels = fit_data(self, X, y, np.float64, to="unit")
        target = self.binary_target(labels)
        if target.min() == target.max():
            raise ParameterError(f"training labels must include digit {self.digit!r} and other labels; "
                                 f"as 'is {self.digit}' vs rest they have only one class")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = SGDClassifier(loss="log_loss", alpha=float(self.alpha), max_iter=int(self.max_iter), tol=self.tol,
                              class_weight=None if self.class_weight == "none" else "balanced",
                              random_state=self.random_state).fit(pixels, target)
        self.classes_ = np.array([0, 1])
        self.n_iter_ = int(m.n_iter_)
        self.coef_ = m.coef_[0].astype(np.float64)
        self.intercept_ = float(m.intercept_[0])
        return self

    def _scaled(self, X: ArrayLike) -> NDArray[np.float64]:
        pixels = predict_data(self, X, np.float64, to="unit")
        return pixels

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """Log-odds of "is ``digit``", shape (n_samples,)."""
        out: NDArray[np.float64] = self._scaled(X) @ self.coef_ + self.intercept_
        return out

    def scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class scores ``[-log-odds, log-odds]``, shape (n_samples, 2) (see :meth:`contributions`)."""
        d = self.decision_function(X)
        return np.column_stack([-d, d])

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """1 where the model says "is ``digit``", else 0; shape (n_samples,)."""
        return (self.decision_function(X) > 0).astype(np.int64)

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Accuracy of "is it ``digit``?" on digit labels ``y``: ``predict(X)`` against :meth:`binary_target` of ``y``.

        ``y`` holds digit labels, as in ``fit`` (not 0/1 targets), so that
        ``fit(X, y).score(X, y)`` scores what was learnt.
        """
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(self.binary_target(y), self.predict(X), sample_weight=sample_weight))

    def _proba(self, log_odds: NDArray[np.float64]) -> NDArray[np.float64]:
        p: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-log_odds / self.temperature_))
        return np.column_stack([1 - p, p])

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """``[P(not digit), P(digit)]``, shape (n_samples, 2)."""
        return self._proba(self.decision_function(X))

    def calibration_target(self, y: ArrayLike) -> NDArray[np.intp]:
        """Digit labels ``y`` as this model's 0/1 classes (1 where ``y == digit``), shape (n,)."""
        out: NDArray[np.intp] = self.binary_target(y).astype(np.intp)
        return out

    def calibration_logits(self, X: ArrayLike) -> NDArray[np.float64]:
        """``[0, log-odds]``, shape (n_samples, 2): their softmax is ``[1 - P, P]``."""
        d = self.decision_function(X)
        return np.column_stack([np.zeros_like(d), d])

    def scores_and_proba(self, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`scores` and :meth:`predict_proba` of ``X`` from one pass, both shape (n_samples, 2)."""
        d = self.decision_function(X)
        return np.column_stack([-d, d]), self._proba(d)

    def contributions(self, X: ArrayLike, digit: int) -> NDArray[np.float64]:
        """Exact per-pixel contributions to the score of class ``digit`` (1 = "is digit", 0 = "is not").

        The score of class 1 is the log-odds ``coef_ @ (x / 255) + intercept_``
        and the score of class 0 is its negative.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        sign = 1.0 if class_index(self.classes_, digit) == 1 else -1.0
        return linear_contributions(self._scaled(X), sign * self.coef_)

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        check_is_fitted(self)
        return ({"coef": self.coef_},
                {"n_features_in": int(self.n_features_in_), "intercept": float(self.intercept_)})

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, NDArray[Any]],
                   meta: dict[str, Any]) -> BinarySGDClassifier:
        est = cls(**params)
        est.classes_ = np.array([0, 1])
        est.coef_ = arrays["coef"]
        est.intercept_ = float(meta["intercept"])
        est.n_features_in_ = int(meta["n_features_in"])
        return est
