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
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from digitlab.engines import ENGINES
from digitlab.errors import ModelError, ParameterError
from digitlab.models._dpmm_gibbs import HYPER_HI, HYPER_LO, GibbsChain
from digitlab.models._validation import check_choice, check_int, check_number, predict_data, record_scale, scale_factor
from digitlab.models.base import DigitClassifier, ProgressFn, as_pixels, softmax

__all__ = ["HALVES", "ChainState", "DPMixtureClassifier", "binarize", "cluster_means", "complete", "half_mask",
           "parse_digits"]

N_PIXELS = 784
#: The halves of a 28 x 28 image that can be kept visible.
HALVES = ("top", "bottom", "left", "right")


def parse_digits(digits: str | Sequence[int] | None) -> list[int] | None:
    """The ``digits`` parameter as sorted distinct digits: a comma list (``"2,3"``) or a sequence; None is all.

    Raises
    ------
    ParameterError
        Not integers, none, or one outside 0-9.
    """
    if digits is None:
        return None
    try:
        values = [int(v) for v in (digits.split(",") if isinstance(digits, str) else digits) if str(v).strip()]
    except (TypeError, ValueError):
        raise ParameterError(f"digits must be comma-separated integers 0-9, got {digits!r}") from None
    out = sorted(set(values))
    if len(out) < 1 or any(not 0 <= v <= 9 for v in out):
        raise ParameterError(f"digits must be one or more of 0-9, got {digits!r}")
    return out


def half_mask(keep: str) -> NDArray[np.bool_]:
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
        raise ParameterError(f"keep must be one of {', '.join(HALVES)}, got {keep!r}")
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


def binarize(X: ArrayLike, threshold: float) -> NDArray[np.uint8]:
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

    def __init__(self, assign: NDArray[np.int32], sizes: NDArray[np.int64], ones: NDArray[np.int32],
                 a: NDArray[np.float64], b: NDArray[np.float64], alpha: float, label_counts: NDArray[np.int64],
                 loglik: list[float], moves: list[int], seconds: list[float] | None = None) -> None:
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

    def log_probs(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
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

    def log_prior(self) -> NDArray[np.float64]:
        """CRP log weights of joining each cluster or a new one, shape (K + 1,)."""
        return np.log(np.concatenate([self.sizes, [self.alpha]]).astype(np.float64))


def _run_chain(c: int, X: NDArray[np.uint8], y_idx: NDArray[np.intp] | None, n_classes: int,
               seed: np.random.SeedSequence, est: DPMixtureClassifier, a0: NDArray[np.float64], b0: NDArray[np.float64],
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


def _run_chains_ray(X: NDArray[np.uint8], y_idx: NDArray[np.intp] | None, n_classes: int,
                    seeds: list[np.random.SeedSequence], est: DPMixtureClassifier, a0: NDArray[np.float64],
                    b0: NDArray[np.float64], events: queue.Queue[tuple[int, int, int, float]]) -> list[ChainState]:
    """Run every chain as a Ray task (one CPU each) and return their states in chain order.

    Each task runs :func:`_run_chain` on the same data and seed as a local thread would. Progress comes back
    through a Ray queue and is put on ``events``, as the threads do.
    """
    from sklearn.base import clone

    from digitlab.engines import ray_session

    with ray_session() as ray:
        from ray.util.queue import Empty, Queue

        progress: Any = Queue()

        def chain_task(c: int, X: NDArray[np.uint8], y_idx: NDArray[np.intp] | None, seed: np.random.SeedSequence,
                       params: DPMixtureClassifier) -> ChainState:
            return _run_chain(c, X, y_idx, n_classes, seed, params, a0, b0,
                              lambda *event: progress.put_nowait(event))

        remote = ray.remote(num_cpus=1)(chain_task)
        x_ref = ray.put(X)
        params = clone(est)  # the parameters only, not a previous fit's chains
        pending = {remote.remote(c, x_ref, y_idx, seeds[c], params): c for c in range(len(seeds))}
        states: dict[int, ChainState] = {}

        def forward() -> None:
            try:
                for event in progress.get_nowait_batch(progress.qsize()):
                    events.put(event)
            except Empty:
                pass

        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
                for ref in done:
                    states[pending.pop(ref)] = ray.get(ref)
                forward()
            forward()
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            progress.shutdown()
        return [states[c] for c in range(len(seeds))]


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
    engine : {"local", "ray"}, default="local"
        Where the chains run: threads of this process, or one Ray task per chain on a Ray cluster (the one
        ``ray.init`` joined, ``$RAY_ADDRESS``, else a Ray started on this machine for the fit; ``n_jobs`` is
        then Ray's to decide). The chains are the same either way for the same seed.

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
    temperature_ : float
        Calibration: ``predict_proba`` is ``softmax(log(votes) / temperature_)``
        of the uncalibrated votes; 1 after ``fit``, fitted by :meth:`calibrate`.

    Notes
    -----
    The mixture has no scores of its own: ``scores`` are the log-probabilities
    (``proba_is_softmax`` is False, as the softmax of clipped logs is not
    exactly the probabilities) and :meth:`scores_and_proba` takes one pass.

    Its memberships are all but certain (the log-likelihoods of 784 pixels
    differ by hundreds between clusters), but each cluster votes with its
    smoothed label counts, so the class probabilities are soft and one
    temperature on their logarithms calibrates them, as for every family.
    Tempering the memberships instead fits the log-loss better but changes
    predictions and leaves the probabilities too unsure (a higher ECE).
    """

    family = "mixture"
    explanation = "occlusion"
    thread_safe = True
    proba_is_softmax = False
    fit_progress = True
    fit_checkpoints = False

    chains_: list[ChainState]
    class_prior_: NDArray[np.float64]
    n_features_in_: int
    n_train_: int
    fit_seconds_: float

    def __init__(self, digits: Sequence[int] | None = (2, 3), chains: int = 5, iters: int = 5,
                 threshold: float = 128, alpha: float = 1.0, prior_strength: float = 2.0,
                 resample_alpha: bool = True, resample_beta: bool = True, seed: int = 0,
                 n_jobs: int | None = None, engine: str = "local") -> None:
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
        self.engine = engine

    # -- validation ---------------------------------------------------------------------------------------------
    def _digits(self) -> list[int] | None:
        return parse_digits(self.digits)

    def _check_params(self) -> None:
        check_int("chains", self.chains, 1)
        check_int("iters", self.iters, 0)
        check_number("threshold", self.threshold, 0, 255, low_open=True)
        check_number("alpha", self.alpha, 0, low_open=True)
        check_number("prior_strength", self.prior_strength, 0.02, 100)
        check_int("seed", self.seed, 0)
        if self.n_jobs is not None:
            check_int("n_jobs", self.n_jobs, 1)
        check_choice("engine", self.engine, ENGINES)
        if self.engine == "ray":
            from digitlab.engines import check_ray

            check_ray()  # without Ray: a UserError saying how to install it

    # -- fitting ------------------------------------------------------------------------------------------------
    def fit(self, X: ArrayLike, y: ArrayLike | None = None, *,
            progress: ProgressFn | None = None) -> DPMixtureClassifier:
        """Run the chains on the binarised images.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
            Pixel intensities 0-255. Any number of pixels per image is a
            mixture of that many binary pixels; :func:`complete` and
            :func:`half_mask` are for 28x28 images.
        y : array-like of shape (n_samples,), optional
            Labels: rows outside ``digits`` are dropped and every cluster
            records its label counts, which ``predict`` uses.
        progress : callable, optional
            ``progress(f"chain {c}", sweep, iters, clusters=K, loglik=...)`` after every sweep
            (sweep 0 is the initial pass), called from the calling thread.

        Returns
        -------
        self

        Raises
        ------
        ParameterError
            A bad parameter, images that are not an array of finite numbers,
            labels that are not one per image, or fewer than 2 images left
            after keeping ``digits``.
        """
        self._check_params()
        digits = self._digits()
        y_idx = None
        images, labels = _checked(self, X, y)
        if labels is None:
            self.classes_ = np.zeros(0, np.int64)
        else:
            if digits is not None:
                keep = np.isin(labels, digits)
                images, labels = images[keep], labels[keep]  # filter before binarising: MNIST has 60,000 images
                self.classes_ = np.asarray(digits, dtype=np.int64)
            else:
                self.classes_ = np.unique(labels)
            y_idx = np.searchsorted(self.classes_, labels)
        Xb = binarize(images, float(self.threshold)) if len(images) else np.zeros((0, images.shape[1]), np.uint8)
        if Xb.shape[0] < 2:
            n = Xb.shape[0]
            raise ParameterError(f"need at least 2 training images (after keeping digits {digits}), "
                                 f"got {n} sample{'' if n == 1 else 's'}")
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
        if self.engine == "ray":
            states = _run_chains_ray(Xb, y_idx, n_classes, seeds, self, a0, b0, events)
        else:
            with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="dpmm-chain") as pool:
                futures = [pool.submit(_run_chain, c, Xb, y_idx, n_classes, seeds[c], self, a0, b0, report)
                           for c in range(int(self.chains))]
                while not all(f.done() for f in futures):
                    drain(block=True)
                states = [f.result() for f in futures]
        drain(block=False)
        self.fit_seconds_ = time.perf_counter() - start
        self.chains_ = states
        self.n_train_ = int(Xb.shape[0])
        if n_classes and y_idx is not None:
            self.class_prior_ = np.bincount(y_idx, minlength=n_classes) / len(y_idx)
        else:
            self.class_prior_ = np.zeros(0)
        return self

    # -- prediction ---------------------------------------------------------------------------------------------
    def _binary(self, X: ArrayLike) -> NDArray[np.float64]:
        """``X`` checked against the fitted mixture and binarised, as float64 (n_samples, 784)."""
        check_is_fitted(self, "chains_")
        return binarize(predict_data(self, X, np.float32), float(self.threshold)).astype(np.float64)

    def _log_weights(self, Xb: NDArray[np.float64], chain: int) -> NDArray[np.float64]:
        """Log prior times likelihood of every cluster (and a new one) of one chain, shape (n, K + 1)."""
        st = self.chains_[chain]
        lp1, lp0 = st.log_probs()
        logw: NDArray[np.float64] = Xb @ (lp1 - lp0).T + lp0.sum(axis=1) + st.log_prior()  # (n, K + 1)
        return logw

    def _votes(self, chain: int) -> NDArray[np.float64]:
        """Class votes of every cluster (and of a new one) of one chain, shape (K + 1, n_classes)."""
        st = self.chains_[chain]
        votes = (st.label_counts + self.class_prior_) / (st.sizes[:, None] + 1.0)   # (K, n_classes)
        out: NDArray[np.float64] = np.vstack([votes, self.class_prior_[None, :]])
        return out

    def _raw_proba(self, Xb: NDArray[np.float64]) -> NDArray[np.float64]:
        """Uncalibrated class probabilities: membership-weighted votes averaged over chains, (n, n_classes)."""
        out = sum((softmax(self._log_weights(Xb, c)) @ self._votes(c) for c in range(len(self.chains_))),
                  start=np.zeros((len(Xb), len(self.classes_))))
        proba = out / len(self.chains_)
        total: NDArray[np.float64] = proba.sum(axis=1, keepdims=True)
        return proba / total

    def membership(self, X: ArrayLike, chain: int) -> NDArray[np.float64]:
        """Posterior probability that each image belongs to each cluster of one chain (or a new cluster).

        Returns
        -------
        ndarray of shape (n_samples, K + 1)
        """
        return softmax(self._log_weights(self._binary(X), chain))

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Cluster votes averaged over membership probabilities and chains, shape (n_samples, n_classes).

        Cluster k votes ``(c_kj + prior_j) / (n_k + 1)`` for class j (its label
        counts, smoothed by the class prior); a new cluster votes the class prior.

        Raises
        ------
        ModelError
            The mixture was fitted without labels.
        """
        Xb = self._binary(X)
        if len(self.classes_) == 0:
            raise ModelError("this mixture was fitted without labels, so it cannot classify")
        proba = self._raw_proba(Xb)
        if self.temperature_ == 1.0:
            return proba
        return softmax(_log(proba, 1e-300) / self.temperature_)  # calibrated (DigitClassifier.calibrate)

    def scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """Log-probabilities (clipped at 1e-12), shape (n_samples, n_classes): the mixture has no other scores."""
        return _log(self.predict_proba(X))

    def scores_and_proba(self, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`scores` and :meth:`predict_proba` of ``X`` from one pass."""
        proba = self.predict_proba(X)
        return _log(proba), proba

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Most voted digit, shape (n_samples,)."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before fit
        out: NDArray[Any] = self.classes_[np.argmax(proba, axis=1)]
        return out

    # -- saving -------------------------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        check_is_fitted(self, "chains_")
        arrays: dict[str, NDArray[Any]] = {"classes": np.asarray(self.classes_, np.int64),
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
    def from_state(cls, params: dict[str, Any], arrays: dict[str, NDArray[Any]],
                   meta: dict[str, Any]) -> DPMixtureClassifier:
        if isinstance(params.get("digits"), list):
            params = {**params, "digits": tuple(params["digits"])}
        est = cls(**params)
        est.classes_ = np.asarray(arrays["classes"], np.int64)
        est.class_prior_ = np.asarray(arrays["class_prior"], np.float64)
        est.n_features_in_ = d = int(meta["n_features_in"])
        est.chains_ = []
        for c in range(int(meta["n_chains"])):
            info = meta["chains"][c]
            sizes = np.asarray(arrays[f"chain{c}.sizes"], np.int64)
            ones = np.asarray(arrays[f"chain{c}.ones"], np.int32)
            if ones.shape != (sizes.shape[0], d):
                raise ValueError(f"chain {c}: ones has shape {ones.shape}, expected ({sizes.shape[0]}, {d})")
            est.chains_.append(ChainState(
                np.asarray(arrays[f"chain{c}.assign"], np.int32), sizes, ones,
                np.asarray(arrays[f"chain{c}.a"], np.float64), np.asarray(arrays[f"chain{c}.b"], np.float64),
                float(info["alpha"]), np.asarray(arrays[f"chain{c}.label_counts"], np.int64),
                info["loglik"], info["moves"], info.get("seconds")))
        est.n_train_ = int(meta["n_train"])
        est.fit_seconds_ = float(meta["fit_seconds"])
        return est


def _log(proba: NDArray[np.float64], floor: float = 1e-12) -> NDArray[np.float64]:
    return np.log(np.clip(proba, floor, 1.0))


def _checked(est: DPMixtureClassifier, X: ArrayLike, y: ArrayLike | None) -> tuple[NDArray[Any], NDArray[Any] | None]:
    """Training images as (n, 784) numbers and labels as (n,), checked as scikit-learn does; sets ``n_features_in_``."""
    try:
        if y is None:
            images, labels = validate_data(est, as_pixels(X, "numeric"), dtype="numeric"), None
        else:
            images, labels = validate_data(est, as_pixels(X, "numeric"), y, dtype="numeric")
            check_classification_targets(labels)
    except ValueError as exc:
        raise ParameterError(str(exc)) from exc
    if labels is not None and labels.dtype.kind in "iub":
        labels = labels.astype(np.int64)
    scale = record_scale(est, images)
    return images * scale_factor(scale, "byte") if scale == "0-1" else images, labels


# -- library functions --------------------------------------------------------------------------------------------
def _check_model(model: object) -> DPMixtureClassifier:
    if not isinstance(model, DPMixtureClassifier):
        raise ParameterError(f"this needs a Dirichlet-process mixture (model 'dpmm'), got {type(model).__name__}")
    check_is_fitted(model, "chains_")
    return model


def cluster_means(model: DPMixtureClassifier, chain: int = 0) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Posterior-mean image of every cluster of one chain, largest cluster first.

    Returns
    -------
    means : ndarray of float64, shape (K, 784)
        ``(n1_kd + a_d) / (n_k + a_d + b_d)``.
    sizes : ndarray of int64, shape (K,)
    """
    model = _check_model(model)
    if not 0 <= chain < len(model.chains_):
        raise ParameterError(f"chain must be in 0..{len(model.chains_) - 1}, got {chain}")
    st = model.chains_[chain]
    means = (st.ones + st.a) / (st.sizes[:, None] + st.a + st.b)
    return means, st.sizes.copy()


def complete(model: DPMixtureClassifier, pixels: ArrayLike, visible_mask: ArrayLike) -> NDArray[np.float64]:
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
    d = int(model.n_features_in_)
    x = np.asarray(pixels, dtype=np.float64).reshape(-1)
    mask = np.asarray(visible_mask).reshape(-1)
    if x.shape[0] != d:
        raise ParameterError(f"pixels must have {d} values{' (28 x 28)' if d == N_PIXELS else ''}, "
                             f"got {x.shape[0]}")
    if mask.shape[0] != d or mask.dtype != np.bool_:
        raise ParameterError(f"visible_mask must be {d} booleans, got {mask.shape[0]} values of {mask.dtype}")
    if not np.all(np.isfinite(x)):
        raise ParameterError("pixels must be finite numbers on the 0-255 scale")
    xb = (x >= float(model.threshold)).astype(np.float64)
    out = np.zeros(d)
    for st in model.chains_:
        lp1, lp0 = st.log_probs()
        logw = (lp1[:, mask] @ xb[mask] + lp0[:, mask] @ (1.0 - xb[mask])) + st.log_prior()
        out += softmax(logw[None, :])[0] @ np.exp(lp1)
    out /= len(model.chains_)
    out[mask] = xb[mask]
    return out
