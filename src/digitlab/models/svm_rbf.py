"""RBF-kernel SVM on 50 principal components of the [0, 1]-scaled pixels."""

from __future__ import annotations

from digitlab.models._svm import KernelSVMBase

__all__ = ["RBFSVMClassifier"]


class RBFSVMClassifier(KernelSVMBase):
    """SVC with ``exp(-gamma |z - z'|^2)`` on PCA features (see :mod:`digitlab.models._svm`).

    Parameters
    ----------
    C : float, default=10.0
        Soft-margin penalty. Grid {5, 10} x gamma {0.01, 0.02, 0.04, 0.06, 0.08, 0.12}
        on 10k train / 5k held-out images: C=10, gamma 0.04-0.06 best (0.975 at 10k).
    gamma : float, default=0.05
        Kernel width on the PCA scores (their total variance is ~43, so
        scikit-learn's ``"scale"`` would be ~0.023, too wide).
    n_components : int, default=50
        Principal components kept; the knob that trades accuracy for speed.
    whiten : bool, default=False
        Divide components by their standard deviation. Off: whitening gives the
        noisy trailing components the same weight as the strokes.
    cache_size : float, default=1000.0
        libsvm kernel cache in MB; bigger is faster on 60k images.
    calibration_size : int, default=1000
        Training images held out (stratified) to fit the probability temperature.
    random_state : int, default=0

    Attributes
    ----------
    classes_, pca_mean_, pca_components_, support_vectors_, n_support_,
    dual_coef_, intercept_, temperature_, n_features_in_
    """

    kernel = "rbf"

    def __init__(self, C: float = 10.0, gamma: float = 0.05, n_components: int = 50, whiten: bool = False,
                 cache_size: float = 1000.0, calibration_size: int = 1000, random_state: int = 0) -> None:
        self.C = C
        self.gamma = gamma
        self.n_components = n_components
        self.whiten = whiten
        self.cache_size = cache_size
        self.calibration_size = calibration_size
        self.random_state = random_state
