"""Bagged boosted decision trees (MLDB's ``bbdt_d5``) on LightGBM."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils.validation import check_is_fitted

from digitlab.models._linear import ScoredClassifier, class_index
from digitlab.models._validation import check_int, check_number, fit_data, predict_data
from digitlab.models.base import ProgressFn, encode_labels

if TYPE_CHECKING:
    from lightgbm import Booster

__all__ = ["BaggedBoostedTreesClassifier"]


class BaggedBoostedTreesClassifier(ScoredClassifier):
    """Average of ``n_bags`` gradient-boosted tree ensembles, each on its own rows and pixel subsets.

    MLDB's ``bbdt_d5`` classifier is a bag of boosted decision trees of depth
    5-7, each tree seeing a random 30 % of the features. Here every bag is a
    LightGBM multiclass booster trained on a random ``bag_fraction`` of the rows
    (its own seed) with ``feature_fraction_bynode`` = 30 % of the pixels tried
    at each split; the bags' raw scores (per-class log-odds) are averaged and
    a softmax gives the probabilities.

    Parameters
    ----------
    n_bags : int, default=2
        Boosters averaged (one bag is nearly as accurate; BENCHMARKS.md has the figures).
    n_estimators : int, default=100
        Boosting rounds per bag (each round grows one tree per class).
    learning_rate : float, default=0.2
    max_depth : int, default=7
        Depth limit of each tree (MLDB's ``bbdt_d5`` family uses 5-7).
    num_leaves : int, default=63
        Leaf limit per tree (LightGBM grows leaf-wise inside the depth limit).
    feature_fraction : float, default=0.3
        Fraction of the 784 pixels considered at each split
        (``feature_fraction_bynode``), as MLDB's ``random_feature_propn``.
    bag_fraction : float, default=0.7
        Fraction of the training rows each bag is trained on (without replacement).
    min_child_samples : int, default=20
    n_jobs : int, default=1
        LightGBM (OpenMP) threads. On a machine whose cores are shared with
        other busy processes, 2 threads were several times *slower* in wall
        time than 1 (OpenMP spin-waits; docs/models.md); raise it on a machine
        of your own.
    random_state : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    boosters_ : list of lightgbm.Booster, length n_bags
    n_features_in_ : int

    Notes
    -----
    The score of class k is ``mean_b raw_b(x)[k]``, so LightGBM's exact
    TreeSHAP contributions (``pred_contrib=True``), averaged over the bags in
    the same way, sum with the averaged bias to that score
    (:meth:`contributions`, :meth:`contribution_bias`). ``predict_proba`` is
    the softmax of the scores.
    """

    family = "tree"
    explanation = "exact"
    thread_safe = True
    proba_is_softmax = True
    fit_progress = True
    fit_checkpoints = False

    boosters_: list[Booster]
    n_features_in_: int

    def __init__(self, n_bags: int = 2, n_estimators: int = 100, learning_rate: float = 0.2, max_depth: int = 7,
                 num_leaves: int = 63, feature_fraction: float = 0.3, bag_fraction: float = 0.7,
                 min_child_samples: int = 20, n_jobs: int = 1, random_state: int = 0) -> None:
        self.n_bags = n_bags
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.num_leaves = num_leaves
        self.feature_fraction = feature_fraction
        self.bag_fraction = bag_fraction
        self.min_child_samples = min_child_samples
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_params(self) -> None:
        for name in ("n_bags", "n_estimators", "max_depth", "num_leaves", "min_child_samples", "n_jobs"):
            check_int(name, getattr(self, name), 1)
        for name in ("feature_fraction", "bag_fraction", "learning_rate"):
            check_number(name, getattr(self, name), 0, 1, low_open=True)

    def fit(self, X: ArrayLike, y: ArrayLike, *, progress: ProgressFn | None = None) -> BaggedBoostedTreesClassifier:
        """Train the bags.

        Parameters
        ----------
        X : array-like of shape (n_samples, 784) or (n_samples, 28, 28)
        y : array-like of shape (n_samples,)
        progress : callable, optional
            ``progress(key, completed, total, **info)``, called after every boosting round.

        Returns
        -------
        self
        """
        import lightgbm as lgb

        self._check_params()
        pixels, labels = fit_data(self, X, y, np.float32)
        self.classes_, y_idx = encode_labels(labels)
        k = len(self.classes_)
        rng = np.random.default_rng(self.random_state)
        n = len(pixels)
        n_rows = max(k, round(self.bag_fraction * n))
        total = int(self.n_bags) * int(self.n_estimators)
        self.boosters_ = []
        for b in range(int(self.n_bags)):
            rows = np.sort(rng.choice(n, n_rows, replace=False)) if n_rows < n else np.arange(n)
            params = {
                "objective": "multiclass" if k > 2 else "binary",
                "num_class": k if k > 2 else 1,
                "learning_rate": float(self.learning_rate),
                "max_depth": int(self.max_depth),
                "num_leaves": int(self.num_leaves),
                "feature_fraction_bynode": float(self.feature_fraction),
                "min_child_samples": int(self.min_child_samples),
                "num_threads": int(self.n_jobs),
                "seed": int(rng.integers(2**31 - 1)),
                "deterministic": True,
                "force_row_wise": True,
                "max_bin": 63,
                "verbose": -1,
            }
            ds = lgb.Dataset(pixels[rows], label=y_idx[rows], params={"max_bin": 63, "verbose": -1})
            callbacks = []
            if progress is not None:
                def cb(env: Any, b: int = b) -> None:
                    progress("boosting", b * int(self.n_estimators) + env.iteration + 1, total, bag=b + 1)
                callbacks.append(cb)
            self.boosters_.append(lgb.train(params, ds, num_boost_round=int(self.n_estimators), callbacks=callbacks))
        return self

    def _X(self, X: ArrayLike) -> NDArray[np.float32]:
        pixels = predict_data(self, X, np.float32)
        return pixels

    def _raw(self, X: NDArray[np.float32]) -> NDArray[np.float64]:
        raw: NDArray[np.float64] = np.mean(
            [np.asarray(bst.predict(X, raw_score=True, num_threads=int(self.n_jobs)), dtype=np.float64)
             for bst in self.boosters_], axis=0)
        return raw

    def scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """Bag-averaged raw scores (log-odds), shape (n_samples, n_classes); their softmax is ``predict_proba``."""
        s = self._raw(self._X(X))
        if len(self.classes_) == 2:
            s = np.column_stack([-s / 2, s / 2])
        return s

    def _contrib(self, X: ArrayLike) -> NDArray[np.float64]:
        """Bag-averaged TreeSHAP values, shape (n, n_classes, n_features + 1); last column is the bias."""
        Xv = self._X(X)
        d = Xv.shape[1]
        k = len(self.classes_)
        per = []
        for bst in self.boosters_:
            c = np.asarray(bst.predict(Xv, pred_contrib=True, num_threads=int(self.n_jobs)))
            c = c.reshape(len(Xv), k if k > 2 else 1, d + 1)
            if k == 2:
                c = np.concatenate([-c / 2, c / 2], axis=1)
            per.append(c)
        out: NDArray[np.float64] = np.mean(per, axis=0)
        return out

    def contributions(self, X: ArrayLike, digit: int) -> NDArray[np.float64]:
        """Exact per-pixel contributions (TreeSHAP, averaged over bags) to class ``digit``'s score.

        Returns
        -------
        ndarray of shape (n_samples, n_features); each row plus
        :meth:`contribution_bias` equals ``scores(X)[:, k]``.
        """
        k = class_index(self.classes_, digit)
        return self._contrib(X)[:, k, :-1]

    def contribution_bias(self, X: ArrayLike, digit: int) -> NDArray[np.float64]:
        """The expected score (bias) of class ``digit`` left out of :meth:`contributions`, shape (n_samples,)."""
        k = class_index(self.classes_, digit)
        return self._contrib(X)[:, k, -1]

    def get_state(self) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
        check_is_fitted(self)
        return ({"classes": self.classes_},
                {"n_features_in": int(self.n_features_in_),
                 "boosters": [bst.model_to_string() for bst in self.boosters_]})

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, NDArray[Any]],
                   meta: dict[str, Any]) -> BaggedBoostedTreesClassifier:
        import lightgbm as lgb

        est = cls(**params)
        est.classes_ = arrays["classes"]
        est.n_features_in_ = int(meta["n_features_in"])
        texts = meta["boosters"]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError("meta 'boosters' must be a list of LightGBM model strings")
        try:
            est.boosters_ = [lgb.Booster(model_str=t) for t in texts]
        except lgb.basic.LightGBMError as exc:
            raise ValueError(f"corrupt LightGBM booster: {json.dumps(str(exc))[:200]}") from None
        return est
