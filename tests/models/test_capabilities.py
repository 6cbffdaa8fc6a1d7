"""What every estimator declares it can do is true (``DigitClassifier``'s ClassVars and Protocols).

Each family is fitted once on small synthetic digits (no MNIST needed): ten
noisy prototypes of 784 pixels, 30 images each.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from digitlab.explain import explain
from digitlab.models import MODELS, make_model
from digitlab.models.base import DigitClassifier, ExactExplainer, GradientExplainer, softmax

TINY = {
    "trees": {"n_bags": 2, "n_estimators": 5},
    "cnn": {"recipe": "fast", "epochs": 1, "width": 4, "int8": False, "bf16": False, "n_threads": 1},
    "dpmm": {"digits": None, "chains": 1, "iters": 1, "n_jobs": 1},
}


def _digits(n_per: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    protos = rng.random((10, 784)) < 0.2                       # (10, 784) ink masks
    y = np.repeat(np.arange(10), n_per)
    noise = rng.random((len(y), 784)) < 0.05
    X = ((protos[y] ^ noise) * 255).astype(np.uint8)           # (300, 784) 0-255
    return X, y


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return _digits()


@pytest.fixture(scope="module")
def fitted(data: tuple[np.ndarray, np.ndarray]) -> dict[str, DigitClassifier]:
    x, y = data
    cache: dict[str, DigitClassifier] = {}

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, name: str) -> DigitClassifier:
            cache[name] = self[name] = make_model(name, **TINY.get(name, {})).fit(x, y)
            return cache[name]

    return Lazy()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_scores_and_proba_is_scores_and_predict_proba(name: str, fitted: dict[str, DigitClassifier],
                                                      data: tuple[np.ndarray, np.ndarray]) -> None:
    est, x = fitted[name], data[0][::7]
    scores, proba = est.scores_and_proba(x)
    assert scores.shape == proba.shape == (len(x), len(est.classes_))
    np.testing.assert_allclose(scores, est.scores(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(proba, est.predict_proba(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(n for n in MODELS if make_model(n).proba_is_softmax))
def test_declared_softmax_probabilities_are_the_softmax_of_the_scores(
        name: str, fitted: dict[str, DigitClassifier], data: tuple[np.ndarray, np.ndarray]) -> None:
    est, x = fitted[name], data[0][::7]
    np.testing.assert_allclose(softmax(est.scores(x) / est.temperature_), est.predict_proba(x), rtol=1e-9,
                               atol=1e-12)


def test_the_families_that_claim_softmax_probabilities() -> None:
    assert {n for n in MODELS if make_model(n).proba_is_softmax} == {"cnn", "trees", "svm-linear", "svm-rbf",
                                                                    "svm-poly", "svm-sigmoid"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_declared_explanation_is_implemented_and_used(name: str, fitted: dict[str, DigitClassifier],
                                                      data: tuple[np.ndarray, np.ndarray]) -> None:
    est = fitted[name]
    assert (est.explanation == "exact") == isinstance(est, ExactExplainer)
    assert (est.explanation == "integrated_gradients") == isinstance(est, GradientExplainer)
    digit = int(est.classes_[1])
    e = explain(est, data[0][3], digit)
    assert e.method == est.explanation and e.digit == digit
    assert e.contributions.shape == (28, 28) and np.isfinite(e.contributions).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_declared_fit_progress(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    est = make_model(name, **TINY.get(name, {}))
    calls: list[tuple[str, int, int]] = []
    if est.fit_progress:
        est.fit(x, y, progress=lambda key, done, total, **info: calls.append((key, done, total)))
        assert calls and all(0 <= done <= total for _, done, total in calls)
    else:
        with pytest.raises(TypeError):
            est.fit(x, y, progress=lambda *a, **k: None)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_declared_fit_checkpoints(name: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = data
    est = make_model(name, **TINY.get(name, {}))
    if est.fit_checkpoints:
        est.fit(x, y, checkpoint_dir=tmp_path / "ckpt")
        assert (tmp_path / "ckpt" / "checkpoint.json").is_file()
        again = make_model(name, **TINY.get(name, {})).fit(x, y, checkpoint_dir=tmp_path / "ckpt", resume=True)
        np.testing.assert_array_equal(again.predict(x), est.predict(x))
    else:
        with pytest.raises(TypeError):
            est.fit(x, y, checkpoint_dir=tmp_path / "ckpt")


@pytest.mark.parametrize("name", sorted(n for n in MODELS if make_model(n).thread_safe))
def test_thread_safe_models_predict_and_explain_from_several_threads(
        name: str, fitted: dict[str, DigitClassifier], data: tuple[np.ndarray, np.ndarray]) -> None:
    est, x = fitted[name], data[0]
    batches = [x[i::4] for i in range(4)]
    alone = [est.scores_and_proba(b) for b in batches]
    explained_alone = explain(est, x[5]).contributions
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    explained: dict[int, np.ndarray] = {}
    start = threading.Barrier(8)

    def predict(i: int) -> None:
        start.wait()
        results[i] = est.scores_and_proba(batches[i])

    def explain_one(i: int) -> None:
        start.wait()
        explained[i] = explain(est, x[5]).contributions

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=explain_one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_array_equal(results[i][0], alone[i][0])
        np.testing.assert_array_equal(results[i][1], alone[i][1])
        np.testing.assert_allclose(explained[i], explained_alone, rtol=1e-6, atol=1e-9)
