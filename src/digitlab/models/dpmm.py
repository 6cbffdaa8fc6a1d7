"""Dirichlet-process mixture of Beta-Bernoulli pixels, fitted by collapsed Gibbs sampling.

The datamicroscopes notebook this reproduces clustered binarised MNIST 2s and
3s with a DP mixture of independent Beta-Bernoulli pixels (5 chains, 5 Gibbs
iterations, 156 minutes). Here every chain runs the compiled kernels of
:mod:`digitlab.models._dpmm_gibbs` in its own thread (the kernels release the
GIL, so chains use every core), and the fitted mixture

* classifies by cluster membership (each cluster votes with its label counts),
* completes partly hidden digits with the posterior predictive (:func:`complete`),
* shows its clusters' posterior-mean images (:func:`cluster_means`).
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from digitlab.errors import ModelError, UserError
from digitlab.models._dpmm_gibbs import HYPER_HI, HYPER_LO, GibbsChain
from digitlab.models.base import DigitClassifier, as_pixels

__all__ = ["HALVES", "ChainState", "DPMixtureClassifier", "binarize", "cluster_means", "complete", "half_mask",
           "parse_digits"]

N_PIXELS = 784
#: The halves of a 28 x 28 image that can be kept visible.
HALVES = ("top", "bottom", "left", "right")


def parse_digits(digits: str | Sequence[int] | None) -> list[int] | None:
    """The ``digits`` parameter as sorted distinct digits: a comma list (``"2,3"``) or a sequence; None is all.

    Raises
    ------
    UserError
        Not integers, none, or one outside 0-9.
    """
    if digits is None:
        return None
    try:
        values = [int(v) for v in (digits.split(",") if isinstance(digits, str) else digits) if str(v).strip()]
    except ValueError:
        raise UserError(f"digits must be comma-separated integers 0-9, got {digits!r}") from None
    out = sorted(set(values))
    if len(out) < 1 or any(not 0 <= v <= 9 for v in out):
        raise UserError(f"digits must be one or more of 0-9, got {digits!r}")
    return out


def half_mask(keep: str) -> np.ndarray:
    """Mask of the visible half of a 28 x 28 image.

    Parameters
    ----------
    keep : {"top", "bottom", "left", "right"}

    Returns
    -------
    ndarray of bool, shape (784,)
        True for the 392 pixels of the kept half.
    """
    if keep not in HALVES:
        raise UserError(f"keep must be one of {', '.join(HALVES)}, got {keep!r}")
    m = np.zeros((28, 28), dtype=bool)
    if keep == "top":
        m[:14] = True
    elif keep == "bottom":
        m[14:] = True
    elif keep == "left":
        m[:, :14] = True
    else:
        m[:, 14:] = True
    return m.reshape(-1)


def binarize(X: Any, threshold: float) -> np.ndarray:
    """Pixels ``>= threshold`` become 1, others 0.

    Parameters
    ----------
    X : array-like, shape (n, 784) or (n, 28, 28), intensities 0-255
    threshold : float in (0, 255]

    Returns
    -------
    ndarray of uint8, shape (n, 784)
    """
    return (as_pixels(X, np.float32) >= threshold).astype(np.uint8)


class ChainState:
    """The final state of one chain, clusters numbered by decreasing size.

    Attributes
    ----------
    assign : int32 (n_train,) -- cluster of every training point
    sizes : int64 (K,) -- points per cluster (n_k)
    ones : int32 (K, 784) -- points with the pixel on, per cluster (n1_kd)
    a, b : float64 (784,) -- Beta hyperparameters per pixel
    alpha : float -- CRP concentration
    label_counts : int64 (K, n_classes) -- training labels per cluster (zeros without labels)
    loglik : list of float -- joint log-likelihood after the initial pass and after every sweep
    moves : list of int -- points that changed cluster in every sweep
    seconds : list of float -- wall seconds of the initial pass and of every sweep (with the resampling)
    """

    def __init__(self, assign: np.ndarray, sizes: np.ndarray, ones: np.ndarray, a: np.ndarray, b: np.ndarray,
                 alpha: float, label_counts: np.ndarray, loglik: list[float], moves: list[int],
                 seconds: list[float] | None = None) -> None:
        self.assign = assign
        self.sizes = sizes
        self.ones = ones
        self.a = a
        self.b = b
        self.alpha = float(alpha)
        self.label_counts = label_counts
        self.loglik = [float(v) for v in loglik]
        self.moves = [int(v) for v in moves]
        self.seconds = [float(v) for v in (seconds or [])]

    @property
    def n_clusters(self) -> int:
        """Number of occupied clusters K."""
        return int(self.sizes.shape[0])

    def log_probs(self) -> tuple[np.ndarray, np.ndarray]:
        """Log posterior-predictive pixel probabilities of every cluster and of a new one.

        Returns
        -------
        log_p1, log_p0 : ndarray, shape (K + 1, 784)
            ``log((n1 + a) / (n + a + b))`` and its complement; the last row is an empty cluster.
        """
        n1 = np.vstack([self.ones, np.zeros((1, self.ones.shape[1]), self.ones.dtype)]).astype(np.float64)
        n = np.concatenate([self.sizes, [0]]).astype(np.float64)[:, None]
        den = np.log(n + self.a + self.b)
        return np.log(n1 + self.a) - den, np.log(n - n1 + self.b) - den

    def log_prior(self) -> np.ndarray:
        """CRP log weights of joining each cluster or a new one, shape (K + 1,)."""
        return np.log(np.concatenate([self.sizes, [self.alpha]]).astype(np.float64))


def _run_chain(c: int, X: np.ndarray, y_idx: np.ndarray | None, n_classes: int, seed: np.random.SeedSequence,
               est: DPMixtureClassifier, a0: np.ndarray, b0: np.ndarray,
               report: Callable[[int, int, int, float], None]) -> ChainState:
    rng = np.random.default_rng(seed)
    chain = GibbsChain(X, rng, est.alpha, a0, b0)
    loglik: list[float] = []
    moves: list[int] = []
    seconds: list[float] = []
    for sweep in range(est.iters + 1):  # sweep 0 seats the points one by one (sequential initialisation)
        t = time.perf_counter()
        moved = chain.sweep()
        if sweep > 0:
            moves.append(moved)
        if est.resample_beta:
            chain.update_hypers()
        if est.resample_alpha:
            chain.update_alpha()
        loglik.append(chain.joint_loglik())
        seconds.append(time.perf_counter() - t)
        report(c, sweep, chain.K, loglik[-1])
    assign, sizes, ones = chain.compact()
    counts = np.zeros((sizes.shape[0], n_classes), np.int64)
    if y_idx is not None:
        np.add.at(counts, (assign, y_idx), 1)
    return ChainState(assign, sizes, ones, chain.a.copy(), chain.b.copy(), chain.alpha, counts, loglik, moves, seconds)


class DPMixtureClassifier(DigitClassifier):
    """Dirichlet-process mixture of Beta-Bernoulli pixels (collapsed Gibbs), classifying by cluster votes.

    Parameters
    ----------
    digits : sequence of int or None, default=(2, 3)
        Keep only training rows with these labels (when labels are given);
        None keeps every row.
    chains : int, default=5
        Independent Markov chains (run in parallel threads).
    iters : int, default=5
        Gibbs sweeps per chain after the sequential initialisation pass.
    threshold : float, default=128
        Pixels ``>= threshold`` (0-255 scale) are on.
    alpha : float, default=1.0
        Initial CRP concentration.
    prior_strength : float, default=2.0
        Initial Beta hyperparameters are ``a_d = s * m_d``, ``b_d = s * (1 - m_d)``
        with ``m_d`` the training mean of pixel d (clipped to [0.005, 0.995]) and
        ``s = prior_strength``; they are then resampled.
    resample_alpha : bool, default=True
        Resample alpha each sweep (Escobar & West, Gamma(1, 1) prior).
    resample_beta : bool, default=True
        Slice-sample every pixel's (a_d, b_d) each sweep (log-uniform prior on [0.01, 100]).
    seed : int, default=0
        Chain c uses child c of ``numpy.random.SeedSequence(seed)``.
    n_jobs : int or None, default=None
        Parallel chains; None uses every core. Results do not depend on it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The digits (empty when fitted without labels).
    chains_ : list of ChainState
    n_features_in_ : int
    n_train_ : int
        Training points after the digit filter.
    fit_seconds_ : float
        Wall time of the sampling.
    """

    family = "mixture"
    fit_progress = True

    def __init__(self, digits: Sequence[int] | None = (2, 3), chains: int = 5, iters: int = 5,
                 threshold: float = 128, alpha: float = 1.0, prior_strength: float = 2.0,
                 resample_alpha: bool = True, resample_beta: bool = True, seed: int = 0,
                 n_jobs: int | None = None) -> None:
        self.digits = digits
        self.chains = chains
        self.iters = iters
        self.threshold = threshold
        self.alpha = alpha
        self.prior_strength = prior_strength
        self.resample_alpha = resample_alpha
        self.resample_beta = resample_beta
        self.seed = seed
        self.n_jobs = n_jobs

    # -- validation ---------------------------------------------------------------------------------------------
    def _digits(self) -> list[int] | None:
        return parse_digits(self.digits)

    def _check_params(self) -> None:
        if not (isinstance(self.chains, (int, np.integer)) and self.chains >= 1):
            raise UserError(f"chains must be an integer >= 1, got {self.chains!r}")
        if not (isinstance(self.iters, (int, np.integer)) and self.iters >= 0):
            raise UserError(f"iters must be an integer >= 0, got {self.iters!r}")
        if not 0 < float(self.threshold) <= 255:
            raise UserError(f"threshold must be in (0, 255], got {self.threshold!r}")
        if not float(self.alpha) > 0:
            raise UserError(f"alpha must be > 0, got {self.alpha!r}")
        if not 0.02 <= float(self.prior_strength) <= 100:
            raise UserError(f"prior_strength must be in [0.02, 100], got {self.prior_strength!r}")
        if self.n_jobs is not None and not (isinstance(self.n_jobs, (int, np.integer)) and self.n_jobs >= 1):
            raise UserError(f"n_jobs must be None or an integer >= 1, got {self.n_jobs!r}")

    # -- fitting ------------------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, progress: Callable[..., None] | None = None) -> DPMixtureClassifier:
        """Run the chains on the binarised images.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
            Pixel intensities 0-255.
        y : array-like of shape (n_samples,), optional
            Labels: rows outside ``digits`` are dropped and every cluster
            records its label counts, which ``predict`` uses.
        progress : callable, optional
            ``progress(f"chain {c}", sweep, iters, clusters=K, loglik=...)`` after every sweep
            (sweep 0 is the initial pass), called from the calling thread.

        Returns
        -------
        self
        """
        self._check_params()
        digits = self._digits()
        X = np.asarray(X)
        if X.ndim == 3:
            X = X.reshape(X.shape[0], -1)
        if X.ndim != 2 or X.shape[1] != N_PIXELS:
            raise UserError(f"images must be (n, 784) or (n, 28, 28) pixel arrays, got shape {X.shape}")
        y_idx = None
        if y is not None:
            y = np.asarray(y).astype(np.int64).ravel()
            if y.shape[0] != X.shape[0]:
                raise UserError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
            if digits is not None:
                keep = np.isin(y, digits)
                X, y = X[keep], y[keep]  # filter before binarising: the full training set is 60,000 images
                self.classes_ = np.asarray(digits, dtype=np.int64)
            else:
                self.classes_ = np.unique(y)
            y_idx = np.searchsorted(self.classes_, y)
        else:
            self.classes_ = np.zeros(0, np.int64)
        Xb = binarize(X, float(self.threshold)) if X.shape[0] else np.zeros((0, N_PIXELS), np.uint8)
        if Xb.shape[0] < 2:
            raise UserError(f"need at least 2 training images (after keeping digits {digits}), got {Xb.shape[0]}")
        n_classes = len(self.classes_)
        m = np.clip(Xb.mean(axis=0, dtype=np.float64), 0.005, 0.995)
        s = float(self.prior_strength)
        a0 = np.clip(s * m, HYPER_LO, HYPER_HI)
        b0 = np.clip(s * (1 - m), HYPER_LO, HYPER_HI)
        seeds = np.random.SeedSequence(int(self.seed)).spawn(int(self.chains))
        n_jobs = min(int(self.chains), int(self.n_jobs or os.cpu_count() or 1))
        events: queue.Queue[tuple[int, int, int, float]] = queue.Queue()

        def report(c: int, sweep: int, k: int, ll: float) -> None:
            events.put((c, sweep, k, ll))

        def drain(block: bool) -> None:
            while True:
                try:
                    c, sweep, k, ll = events.get(timeout=0.05) if block else events.get_nowait()
                except queue.Empty:
                    return
                block = False
                if progress is not None:
                    progress(f"chain {c}", sweep, int(self.iters), clusters=k, loglik=ll)

        start = time.perf_counter()
        if progress is not None:
            for c in range(int(self.chains)):
                progress(f"chain {c}", 0, int(self.iters), clusters=0, loglik=float("nan"))
        with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="dpmm-chain") as pool:
            futures = [pool.submit(_run_chain, c, Xb, y_idx, n_classes, seeds[c], self, a0, b0, report)
                       for c in range(int(self.chains))]
            while not all(f.done() for f in futures):
                drain(block=True)
            states = [f.result() for f in futures]
        drain(block=False)
        self.fit_seconds_ = time.perf_counter() - start
        self.chains_ = states
        self.n_features_in_ = N_PIXELS
        self.n_train_ = int(Xb.shape[0])
        if n_classes:
            self.class_prior_ = np.bincount(y_idx, minlength=n_classes) / len(y_idx)
        else:
            self.class_prior_ = np.zeros(0)
        return self

    # -- prediction ---------------------------------------------------------------------------------------------
    def membership(self, X: Any, chain: int) -> np.ndarray:
        """Posterior probability that each image belongs to each cluster of one chain (or a new cluster).

        Returns
        -------
        ndarray of shape (n_samples, K + 1)
        """
        check_is_fitted(self, "chains_")
        Xb = binarize(X, float(self.threshold)).astype(np.float64)
        st = self.chains_[chain]
        lp1, lp0 = st.log_probs()
        logw = Xb @ (lp1 - lp0).T + lp0.sum(axis=1) + st.log_prior()
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        return w / w.sum(axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Cluster votes averaged over membership probabilities and chains, shape (n_samples, n_classes).

        Cluster k votes ``(c_kj + prior_j) / (n_k + 1)`` for class j (its label
        counts, smoothed by the class prior); a new cluster votes the class prior.
        """
        check_is_fitted(self, "chains_")
        if len(self.classes_) == 0:
            raise ModelError("this mixture was fitted without labels, so it cannot classify")
        out = 0.0
        for c, st in enumerate(self.chains_):
            votes = (st.label_counts + self.class_prior_) / (st.sizes[:, None] + 1.0)
            votes = np.vstack([votes, self.class_prior_[None, :]])
            out = out + self.membership(X, c) @ votes
        proba = np.asarray(out) / len(self.chains_)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Most voted digit, shape (n_samples,)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # -- saving -------------------------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        check_is_fitted(self, "chains_")
        arrays: dict[str, np.ndarray] = {"classes": np.asarray(self.classes_, np.int64),
                                         "class_prior": np.asarray(self.class_prior_, np.float64)}
        chains = []
        for c, st in enumerate(self.chains_):
            arrays[f"chain{c}.assign"] = st.assign.astype(np.int32)
            arrays[f"chain{c}.sizes"] = st.sizes.astype(np.int64)
            arrays[f"chain{c}.ones"] = st.ones.astype(np.int32)
            arrays[f"chain{c}.a"] = st.a.astype(np.float64)
            arrays[f"chain{c}.b"] = st.b.astype(np.float64)
            arrays[f"chain{c}.label_counts"] = st.label_counts.astype(np.int64)
            chains.append({"alpha": st.alpha, "n_clusters": st.n_clusters, "loglik": st.loglik, "moves": st.moves,
                           "seconds": st.seconds})
        meta = {"n_chains": len(self.chains_), "chains": chains, "n_features_in": int(self.n_features_in_),
                "n_train": int(self.n_train_), "fit_seconds": float(self.fit_seconds_)}
        return arrays, meta

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray],
                   meta: dict[str, Any]) -> DPMixtureClassifier:
        if isinstance(params.get("digits"), list):
            params = {**params, "digits": tuple(params["digits"])}
        est = cls(**params)
        est.classes_ = np.asarray(arrays["classes"], np.int64)
        est.class_prior_ = np.asarray(arrays["class_prior"], np.float64)
        est.chains_ = []
        for c in range(int(meta["n_chains"])):
            info = meta["chains"][c]
            sizes = np.asarray(arrays[f"chain{c}.sizes"], np.int64)
            ones = np.asarray(arrays[f"chain{c}.ones"], np.int32)
            if ones.shape != (sizes.shape[0], N_PIXELS):
                raise ValueError(f"chain {c}: ones has shape {ones.shape}, expected ({sizes.shape[0]}, {N_PIXELS})")
            est.chains_.append(ChainState(
                np.asarray(arrays[f"chain{c}.assign"], np.int32), sizes, ones,
                np.asarray(arrays[f"chain{c}.a"], np.float64), np.asarray(arrays[f"chain{c}.b"], np.float64),
                float(info["alpha"]), np.asarray(arrays[f"chain{c}.label_counts"], np.int64),
                info["loglik"], info["moves"], info.get("seconds")))
        est.n_features_in_ = int(meta["n_features_in"])
        est.n_train_ = int(meta["n_train"])
        est.fit_seconds_ = float(meta["fit_seconds"])
        return est


# -- library functions --------------------------------------------------------------------------------------------
def _check_model(model: Any) -> DPMixtureClassifier:
    if not isinstance(model, DPMixtureClassifier):
        raise ModelError(f"this needs a Dirichlet-process mixture (model 'dpmm'), got {type(model).__name__}")
    check_is_fitted(model, "chains_")
    return model


def cluster_means(model: DPMixtureClassifier, chain: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Posterior-mean image of every cluster of one chain, largest cluster first.

    Returns
    -------
    means : ndarray of float64, shape (K, 784)
        ``(n1_kd + a_d) / (n_k + a_d + b_d)``.
    sizes : ndarray of int64, shape (K,)
    """
    model = _check_model(model)
    if not 0 <= chain < len(model.chains_):
        raise UserError(f"chain must be in 0..{len(model.chains_) - 1}, got {chain}")
    st = model.chains_[chain]
    means = (st.ones + st.a) / (st.sizes[:, None] + st.a + st.b)
    return means, st.sizes.copy()


def complete(model: DPMixtureClassifier, pixels: Any, visible_mask: Any) -> np.ndarray:
    """Posterior predictive of the hidden pixels of one image given its visible ones.

    For every chain the clusters (and a new one) are weighted by their CRP
    prior times the Beta-Bernoulli likelihood of the visible pixels; the
    hidden pixels' probabilities are the weighted mix of the clusters'
    predictive ``(n1_kd + a_d) / (n_k + a_d + b_d)``, averaged over chains.

    Parameters
    ----------
    model : fitted DPMixtureClassifier
    pixels : array-like, shape (784,) or (28, 28), intensities 0-255
    visible_mask : array-like of bool, shape (784,) or (28, 28)

    Returns
    -------
    ndarray of float64, shape (784,)
        Probability that each pixel is on; visible pixels are their binarised values.
    """
    model = _check_model(model)
    x = np.asarray(pixels, dtype=np.float64).reshape(-1)
    mask = np.asarray(visible_mask).reshape(-1)
    if x.shape[0] != N_PIXELS:
        raise UserError(f"pixels must have {N_PIXELS} values (28 x 28), got {x.shape[0]}")
    if mask.shape[0] != N_PIXELS or mask.dtype != np.bool_:
        raise UserError(f"visible_mask must be {N_PIXELS} booleans, got {mask.shape[0]} values of {mask.dtype}")
    if not np.all(np.isfinite(x)):
        raise UserError("pixels must be finite numbers on the 0-255 scale")
    xb = (x >= float(model.threshold)).astype(np.float64)
    out = np.zeros(N_PIXELS)
    for st in model.chains_:
        lp1, lp0 = st.log_probs()
        logw = (lp1[:, mask] @ xb[mask] + lp0[:, mask] @ (1.0 - xb[mask])) + st.log_prior()
        w = np.exp(logw - logw.max())
        w /= w.sum()
        out += w @ np.exp(lp1)
    out /= len(model.chains_)
    out[mask] = xb[mask]
    return out
