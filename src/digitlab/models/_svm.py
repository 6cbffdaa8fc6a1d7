"""Kernel SVMs after PCA: shared code of ``svm-rbf``, ``svm-poly`` and ``svm-sigmoid``.

The recipe that makes kernel SVMs both accurate and fast on MNIST on 2 cores:

1. scale pixels to [0, 1] (the seed's StandardScaler blows up rare border
   pixels and hurts the RBF kernel);
2. project onto the first ``n_components`` principal components (50 keep
   ~83 % of the variance and cut kernel evaluations 16-fold);
3. fit libsvm's one-vs-one SVC (scikit-learn ``SVC``) with C and gamma chosen
   by a grid search on 10,000 training images scored on 5,000 others (see
   each subclass's docstring for the grid and the winner).

Prediction is done here in NumPy from the saved support vectors (kernel
matrix by BLAS in blocks, then one-vs-one votes plus confidences as
scikit-learn's ``decision_function_shape="ovr"``), so a loaded model is
exactly the trained one without pickling libsvm objects.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted

from digitlab.models._linear import ScoredClassifier
from digitlab.models._validation import check_int, check_number, fit_data, predict_data
from digitlab.models.base import ProgressFn, encode_labels
from digitlab.models.calibration import fit_temperature

__all__ = ["KernelSVMBase", "fit_temperature", "ovr_votes"]  # fit_temperature: now in models.calibration

_BLOCK = 2048


def ovr_votes(dec: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """One-vs-one decisions to one-vs-rest scores: votes plus a confidence in (-1/3, 1/3).

    Parameters
    ----------
    dec : ndarray of shape (n, k * (k - 1) / 2)
        Pair decisions in libsvm order (0,1), (0,2), ..., positive for the first class.

    Returns
    -------
    ndarray of shape (n, k)
    """
    n = dec.shape[0]
    votes = np.zeros((n, k))
    conf = np.zeros((n, k))
    p = 0
    for i in range(k):
        for j in range(i + 1, k):
            d = dec[:, p]
            votes[:, i] += d > 0
            votes[:, j] += d <= 0
            conf[:, i] += d
            conf[:, j] -= d
            p += 1
    out: NDArray[np.float64] = votes + conf / (3 * (np.abs(conf) + 1))
    return out


def _calibration_split(y_idx: NDArray[np.intp], size: int,
                       seed: int | None) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Rows to fit the SVC on and rows to fit the temperature on (stratified hold-out when possible)."""
    n = len(y_idx)
    k = int(y_idx.max()) + 1
    size = min(size, n // 10)
    if size >= k and np.bincount(y_idx, minlength=k).min() >= 10:
        from sklearn.model_selection import train_test_split
        fit_rows, cal_rows = train_test_split(np.arange(n), test_size=size, stratify=y_idx,
                                              random_state=0 if seed is None else seed)
        return np.sort(fit_rows), np.sort(cal_rows)
    rows = np.arange(n)
    return rows, rows[:5000]


class KernelSVMBase(ScoredClassifier):
    """PCA + libsvm SVC with a fixed kernel; subclasses set ``kernel`` and defaults.

    ``predict_proba`` is ``softmax(ovr_scores / temperature_)`` with the
    temperature fitted (Brier score) on ``calibration_size`` stratified training
    images held out of the SVC (a cheap calibration instead of libsvm's 5-fold
    Platt scaling, which would multiply the training time by 6). With fewer
    than 10 images of some class nothing is held out and it is fitted on the
    training images (overconfident). :meth:`calibrate` refits it on other
    held-out images (``digitlab train`` does; ``calibration_size=0`` then
    leaves every training image to the SVC).
    """

    family = "svm"
    explanation = "occlusion"
    thread_safe = True
    proba_is_softmax = True
    fit_progress = True
    fit_checkpoints = False
    kernel: ClassVar[str] = "rbf"

    # Subclasses define __init__ with: C, gamma, n_components, whiten, (degree, coef0), cache_size,
    # calibration_size, random_state. The kernels without degree or coef0 use these values:
    degree: int = 3
    coef0: float = 0.0
    C: float
    gamma: float
    n_components: int
    whiten: bool
    cache_size: float
    calibration_size: int
    random_state: int | None

    pca_mean_: NDArray[np.float64]
    pca_components_: NDArray[np.float64]
    support_vectors_: NDArray[np.float64]
    n_support_: NDArray[np.int64]
    dual_coef_: NDArray[np.float64]
    intercept_: NDArray[np.float64]
    temperature_: float
    n_features_in_: int

    def _kernel_params(self) -> dict[str, Any]:
        return {"gamma": float(self.gamma), "degree": int(self.degree), "coef0": float(self.coef0)}

    def _check_params(self) -> None:
        check_number("C", self.C, 0, low_open=True)
        check_number("gamma", self.gamma, 0, low_open=True)
        check_int("n_components", self.n_components, 1)
        check_number("cache_size", self.cache_size, 0, low_open=True)
        check_int("calibration_size", self.calibration_size, 0)
        check_int("degree", self.degree, 0)
        check_number("coef0", self.coef0)

    def fit(self, X: ArrayLike, y: ArrayLike, *, progress: ProgressFn | None = None) -> KernelSVMBase:
        """Fit PCA then the SVC.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        y : array-like of shape (n_samples,)
        progress : callable, optional
            ``progress(key, completed, total)`` at each stage (PCA, SVC, calibration).

        Returns
        -------
        self
        """
        from sklearn.decomposition import PCA
        from sklearn.svm import SVC

        self._check_params()
        report: ProgressFn = progress or (lambda *a, **k: None)
        Xs, labels = fit_data(self, X, y, np.float32, to="unit")
        self.classes_, y_idx = encode_labels(labels)
        k = len(self.classes_)
        n_comp = int(min(self.n_components, Xs.shape[1], Xs.shape[0]))
        report("fit", 0, 3, stage="pca")
        pca = PCA(n_components=n_comp, whiten=bool(self.whiten), random_state=self.random_state).fit(Xs)
        self.pca_mean_ = pca.mean_.astype(np.float64)
        comps = pca.components_.astype(np.float64)
        if self.whiten:
            comps = comps / np.sqrt(pca.explained_variance_)[:, None]
        self.pca_components_ = comps
        Z = self._project(Xs)
        report("fit", 1, 3, stage="svc")
        fit_rows, cal_rows = _calibration_split(y_idx, int(self.calibration_size), self.random_state)
        svc = SVC(kernel=self.kernel, C=float(self.C), cache_size=float(self.cache_size),
                  random_state=self.random_state, **self._kernel_params()).fit(Z[fit_rows], y_idx[fit_rows])
        self.support_vectors_ = svc.support_vectors_.astype(np.float64)
        self.n_support_ = svc.n_support_.astype(np.int64)
        dual, icpt = svc.dual_coef_.astype(np.float64), svc.intercept_.astype(np.float64)
        if k == 2:  # scikit-learn flips the sign of binary models; keep libsvm's convention
            dual, icpt = -dual, -icpt
        self.dual_coef_ = dual
        self.intercept_ = icpt
        report("fit", 2, 3, stage="calibration")
        self.temperature_ = fit_temperature(self._ovr(Z[cal_rows]), y_idx[cal_rows])
        report("fit", 3, 3, stage="done")
        return self

    def _project(self, Xs: NDArray[np.floating]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = (Xs - self.pca_mean_) @ self.pca_components_.T
        return out

    def _K(self, Z: NDArray[np.float64]) -> NDArray[np.float64]:
        """Kernel matrix between ``Z`` (n, n_components) and the support vectors, shape (n, n_support)."""
        p = self._kernel_params()
        gamma, degree, coef0 = float(p["gamma"]), int(p["degree"]), float(p["coef0"])
        sv = self.support_vectors_
        if self.kernel == "rbf":
            d: NDArray[np.float64] = (Z * Z).sum(1)[:, None] - 2 * Z @ sv.T + (sv * sv).sum(1)[None, :]
            return np.exp(-gamma * np.maximum(d, 0))
        dot: NDArray[np.float64] = gamma * (Z @ sv.T) + coef0
        if self.kernel == "poly":
            out = dot.copy()
            for _ in range(degree - 1):  # repeated products: much faster than a float power
                out *= dot
            return out if degree >= 1 else np.ones_like(dot)
        if self.kernel == "sigmoid":
            return np.tanh(dot)
        raise ValueError(f"unknown kernel {self.kernel!r}")

    def _ovo(self, Z: NDArray[np.float64]) -> NDArray[np.float64]:
        """One-vs-one decisions, shape (n, k(k-1)/2), positive for the pair's first class."""
        k = len(self.classes_)
        starts = np.concatenate([[0], np.cumsum(self.n_support_)])
        out = np.empty((len(Z), k * (k - 1) // 2))
        for a in range(0, len(Z), _BLOCK):
            K = self._K(Z[a:a + _BLOCK])
            p = 0
            for i in range(k):
                si = slice(starts[i], starts[i + 1])
                for j in range(i + 1, k):
                    sj = slice(starts[j], starts[j + 1])
                    out[a:a + _BLOCK, p] = (K[:, si] @ self.dual_coef_[j - 1, si] + K[:, sj] @ self.dual_coef_[i, sj]
                                            + self.intercept_[p])
                    p += 1
        return out

    def _ovr(self, Z: NDArray[np.float64]) -> NDArray[np.float64]:
        return ovr_votes(self._ovo(Z), len(self.classes_))

    def _Z(self, X: ArrayLike) -> NDArray[np.float64]:
        pixels = predict_data(self, X, np.float64, to="unit")
        return self._project(pixels)

    def scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """One-vs-rest scores (votes + confidence, as scikit-learn's SVC), shape (n_samples, n_classes)."""
        return self._ovr(self._Z(X))

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        check_is_fitted(self)
        return ({"classes": self.classes_, "pca_mean": self.pca_mean_, "pca_components": self.pca_components_,
                 "support_vectors": self.support_vectors_, "n_support": self.n_support_,
                 "dual_coef": self.dual_coef_, "intercept": self.intercept_},
                {"n_features_in": int(self.n_features_in_), "temperature": float(self.temperature_)})

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, NDArray[Any]],
                   meta: dict[str, Any]) -> KernelSVMBase:
        est = cls(**params)
        for name in ("classes", "pca_mean", "pca_components", "support_vectors", "n_support", "dual_coef",
                     "intercept"):
            setattr(est, name + "_", arrays[name])
        est.n_features_in_ = int(meta["n_features_in"])
        est.temperature_ = float(meta["temperature"])
        k = len(est.classes_)
        if est.dual_coef_.shape != (k - 1, len(est.support_vectors_)) or int(est.n_support_.sum()) != len(
                est.support_vectors_):
            raise ValueError("support vectors, counts and dual coefficients disagree")
        return est
