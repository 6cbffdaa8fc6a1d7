"""Fitted models shared by the model tests: each family trained once on the 3000-image sample."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.models import make_model

#: Quick settings for tests (the defaults are tuned for the full 60k images).
FAST = {
    "logreg": {},
    "sgd": {"digit": 0},
    "svm-linear": {},
    "svm-rbf": {},
    "svm-poly": {},
    "svm-sigmoid": {},
    "trees": {"n_bags": 2, "n_estimators": 20, "learning_rate": 0.3},
}


@pytest.fixture(scope="session")
def small_test(mnist_test: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The first 2000 MNIST test images and labels."""
    x, y = mnist_test
    return x[:2000], y[:2000]


@pytest.fixture(scope="session")
def fitted(small_train: tuple[np.ndarray, np.ndarray]) -> dict[str, object]:
    """Every model of :data:`FAST`, fitted on ``small_train`` once per session (lazily)."""
    cache: dict[str, object] = {}

    class Lazy(dict):
        def __missing__(self, name: str) -> object:
            x, y = small_train
            cache[name] = make_model(name, **FAST[name]).fit(x, y)
            self[name] = cache[name]
            return cache[name]

    return Lazy()
