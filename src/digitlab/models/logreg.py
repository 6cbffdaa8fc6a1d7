"""Logistic regression on scaled pixels: multinomial (default) or the seed's one-vs-rest."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from sklearn.utils.validation import check_is_fitted

from digitlab.models._linear import LinearClassifier
from digitlab.models._validation import check_choice, check_int, check_number, fit_data
from digitlab.models.base import ProgressFn, encode_labels

__all__ = ["LogisticRegressionClassifier"]

_MULTI = ("multinomial", "ovr")


class LogisticRegressionClassifier(LinearClassifier):
    """Linear softmax (or one-vs-rest logistic) classifier on pixels scaled to [0, 1].

    Parameters
    ----------
    multi_class : {"multinomial", "ovr"}, default="multinomial"
        ``"multinomial"`` fits one softmax model; ``"ovr"`` fits one binary
        "k vs rest" model per class, as the seed's scikit-learn pipeline did,
        with probabilities normalised over classes (a little less accurate;
        BENCHMARKS.md has both).
    C : float, default=1.0
        Inverse L2 regularisation strength (scikit-learn's convention: the
        objective is ``sum of log-losses + |W|^2 / (2 C)``).
    max_iter : int, default=100
        L-BFGS iterations (float32 NumPy, own loss and gradient: much faster
        than scikit-learn's ``LogisticRegression`` for the same fit). More
        iterations gain little on MNIST for proportionally more time.
    tol : float, default=1e-4
        Stop when the largest gradient component (per sample) is below it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_features)
        Weights on scaled pixels (x / 255; x itself for 0-1 pixels or non-pixel features).
    intercept_ : ndarray of shape (n_classes,)
    n_iter_ : int
        L-BFGS iterations run.
    n_features_in_ : int

    Notes
    -----
    The score of class k is ``coef_[k] @ (x / 255) + intercept_[k]``, so
    :meth:`contributions` is exact. ``predict_proba`` is the softmax of the
    scores (over ``temperature_``) only for ``multinomial`` (``proba_is_softmax``
    is False, as it cannot hold for ``ovr``); :meth:`scores_and_proba` takes one
    pass either way.

    Fitted on a ``StandardScaler``'s output (``Pipeline([StandardScaler(), ...])``),
    the model sees values that are not pixels (``input_scale_ == "features"``)
    and uses them as they are, as scikit-learn's ``LogisticRegression`` does.
    """

    family = "linear"
    explanation = "exact"
    thread_safe = True
    proba_is_softmax = False
    fit_progress = True
    fit_checkpoints = False

    n_iter_: int

    def __init__(self, multi_class: str = "multinomial", C: float = 1.0, max_iter: int = 100,
                 tol: float = 1e-4) -> None:
        self.multi_class = multi_class
        self.C = C
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: ArrayLike, y: ArrayLike, *, progress: ProgressFn | None = None) -> LogisticRegressionClassifier:
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
            Pixel intensities 0-255.
        y : array-like of shape (n_samples,)
        progress : callable, optional
            ``progress("L-BFGS", iteration, max_iter)`` after each iteration.

        Returns
        -------
        self
        """
        check_choice("multi_class", self.multi_class, _MULTI)
        check_number("C", self.C, 0, low_open=True)
        check_int("max_iter", self.max_iter, 1)
        check_number("tol", self.tol, 0)
        pixels, labels = fit_data(self, X, y, np.float64, to="unit")
        self.classes_, y_idx = encode_labels(labels)
        Xs = pixels.astype(np.float32)
        coef, icpt, self.n_iter_ = _fit_lbfgs(Xs, y_idx, len(self.classes_), C=float(self.C),
                                              ovr=self.multi_class == "ovr", max_iter=int(self.max_iter),
                                              tol=float(self.tol), progress=progress)
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = np.asarray(icpt, dtype=np.float64)
        return self

    def _to_logits(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """The scores (multinomial) or ``log sigmoid(scores)`` (ovr: their softmax is the normalised sigmoids)."""
        if self.multi_class == "multinomial":
            return scores
        out: NDArray[np.float64] = -np.logaddexp(0.0, -scores)
        return out

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        check_is_fitted(self)
        return ({"classes": self.classes_, "coef": self.coef_, "intercept": self.intercept_},
                {"n_features_in": int(self.n_features_in_)})

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, NDArray[Any]],
                   meta: dict[str, Any]) -> LogisticRegressionClassifier:
        est = cls(**params)
        est.classes_ = arrays["classes"]
        est.coef_ = arrays["coef"]
        est.intercept_ = arrays["intercept"]
        est.n_features_in_ = int(meta["n_features_in"])
        return est


def _fit_lbfgs(Xs: NDArray[np.float32], y_idx: NDArray[np.intp], k: int, *, C: float, ovr: bool, max_iter: int,
               tol: float, progress: ProgressFn | None = None
               ) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Minimise ``sum_i loss_i + |W|^2 / (2 C)`` (scikit-learn's objective) with L-BFGS.

    Parameters
    ----------
    Xs : ndarray of float32, shape (n, d)
    y_idx : ndarray of int, shape (n,)
        Class positions 0..k-1.
    ovr : bool
        One independent binary logistic loss per class instead of the softmax
        cross-entropy (the k problems are separable, so one joint L-BFGS run
        solves them all).

    Returns
    -------
    coef : ndarray of shape (k, d)
    intercept : ndarray of shape (k,)
    n_iter : int
        L-BFGS iterations run.
    """
    n, d = Xs.shape
    Y = np.zeros((n, k), dtype=np.float32)
    Y[np.arange(n), y_idx] = 1.0
    scale = 1.0 / n  # the objective divided by n: same minimum, better conditioned

    def f(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        W = theta[: d * k].reshape(d, k).astype(np.float32)
        b = theta[d * k:].astype(np.float32)
        Z = Xs @ W + b
        if ovr:
            # binary log-loss per column: log(1 + e^z) - y z, computed stably
            loss = float(np.sum(np.logaddexp(0, Z) - Y * Z, dtype=np.float64))
            G = 1.0 / (1.0 + np.exp(-Z)) - Y
        else:
            Z -= Z.max(axis=1, keepdims=True)
            E = np.exp(Z)
            S = E.sum(axis=1, keepdims=True)
            loss = float(np.sum(np.log(S[:, 0]) - (Z * Y).sum(axis=1), dtype=np.float64))
            G = E / S - Y
        gW = (Xs.T @ G).astype(np.float64) + W.astype(np.float64) / C
        gb = G.sum(axis=0).astype(np.float64)
        loss += float(np.sum(W.astype(np.float64) ** 2)) / (2 * C)
        return loss * scale, np.concatenate([gW.ravel(), gb]) * scale

    done = [0]

    def step(_: NDArray[np.float64]) -> None:
        done[0] += 1
        if progress is not None:
            progress("L-BFGS", done[0], max_iter)

    res = minimize(f, np.zeros(d * k + k), jac=True, method="L-BFGS-B", callback=step,
                   options={"maxiter": max_iter, "gtol": tol * scale, "ftol": 1e-10})
    theta: NDArray[np.float64] = np.asarray(res.x, dtype=np.float64)
    return theta[: d * k].reshape(d, k).T.copy(), theta[d * k:].copy(), max(int(res.nit), 1)
