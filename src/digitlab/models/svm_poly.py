"""Polynomial-kernel SVM on 50 principal components of the [0, 1]-scaled pixels."""

from __future__ import annotations

from digitlab.models._svm import KernelSVMBase

__all__ = ["PolySVMClassifier"]


class PolySVMClassifier(KernelSVMBase):
    """SVC with ``(gamma z.z' + coef0) ** degree`` on PCA features (see :mod:`digitlab.models._svm`).

    Parameters
    ----------
    C : float, default=1.0
        Soft-margin penalty; C in {1, 10} made no difference on the grid.
    gamma : float, default=0.3
        Grid {0.1, 0.3, 1.0} (degree 3, coef0 1) on 10k train / 5k held-out:
        0.3 best (0.975 at 10k images).
    degree : int, default=3
        Degree 2 lost 0.7 point; degree 4 matched 3 at twice the time.
    coef0 : float, default=1.0
        Inhomogeneous term: keeps the lower-degree interactions.
    n_components : int, default=50
    whiten : bool, default=False
    cache_size : float, default=1000.0
        libsvm kernel cache in MB.
    calibration_size : int, default=1000
        Training images held out (stratified) to fit the probability temperature.
    random_state : int, default=0

    Attributes
    ----------
    classes_, pca_mean_, pca_components_, support_vectors_, n_support_,
    dual_coef_, intercept_, temperature_, n_features_in_
    """

    kernel = "poly"

    def __init__(self, C: float = 1.0, gamma: float = 0.3, degree: int = 3, coef0: float = 1.0,
                 n_components: int = 50, whiten: bool = False, cache_size: float = 1000.0,
                 calibration_size: int = 1000, random_state: int = 0) -> None:
        self.C = C
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.n_components = n_components
        self.whiten = whiten
        self.cache_size = cache_size
        self.calibration_size = calibration_size
        self.random_state = random_state
