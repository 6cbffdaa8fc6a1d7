"""Sigmoid-kernel SVM on 50 principal components of the [0, 1]-scaled pixels."""

from __future__ import annotations

from digitlab.models._svm import KernelSVMBase

__all__ = ["SigmoidSVMClassifier"]


class SigmoidSVMClassifier(KernelSVMBase):
    """SVC with ``tanh(gamma z.z' + coef0)`` on PCA features (see :mod:`digitlab.models._svm`).

    The sigmoid kernel is not positive definite; it is the weakest of the
    family on MNIST and is here for completeness and comparison.

    Parameters
    ----------
    C : float, default=10.0
    gamma : float, default=0.002
        Must be small: ``gamma z.z'`` has to stay in tanh's linear-ish range.
        Grid (gamma, C, coef0) in {(0.01, 1, 0), (0.005, 10, 0), (0.002, 10, -1)}
        on 10k / 5k images gave 0.917, 0.923 and 0.929.
    coef0 : float, default=-1.0
    n_components : int, default=50
    whiten : bool, default=False
    cache_size : float, default=1000.0
    calibration_size : int, default=1000
        Training images held out (stratified) to fit the probability temperature.
    random_state : int, default=0

    Attributes
    ----------
    classes_, pca_mean_, pca_components_, support_vectors_, n_support_,
    dual_coef_, intercept_, temperature_, n_features_in_
    """

    kernel = "sigmoid"

    def __init__(self, C: float = 10.0, gamma: float = 0.002, coef0: float = -1.0, n_components: int = 50,
                 whiten: bool = False, cache_size: float = 1000.0, calibration_size: int = 1000,
                 random_state: int = 0) -> None:
        self.C = C
        self.gamma = gamma
        self.coef0 = coef0
        self.n_components = n_components
        self.whiten = whiten
        self.cache_size = cache_size
        self.calibration_size = calibration_size
        self.random_state = random_state
