"""The mixture's chains as Ray tasks are the chains of the local threads."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.models.dpmm import DPMixtureClassifier


def test_ray_chains_match_local_threads(ray_local, small_train: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = small_train
    keep = np.isin(y, (2, 3))
    x, y = x[keep][:400], y[keep][:400]
    local = DPMixtureClassifier(chains=3, iters=2, seed=7).fit(x, y)
    events: list[tuple[str, float]] = []
    remote = DPMixtureClassifier(chains=3, iters=2, seed=7, engine="ray").fit(
        x, y, progress=lambda key, done, total, **info: events.append((key, done)))
    for a, b in zip(local.chains_, remote.chains_, strict=True):
        assert np.array_equal(a.assign, b.assign) and np.array_equal(a.ones, b.ones)
        assert a.loglik == b.loglik and a.alpha == b.alpha and np.array_equal(a.a, b.a)
    assert np.array_equal(local.predict_proba(x), remote.predict_proba(x))
    assert {k for k, _ in events} == {"chain 0", "chain 1", "chain 2"} and ("chain 2", 2) in events


def test_engine_is_checked() -> None:
    with pytest.raises(ValueError, match="engine must be one of"):
        DPMixtureClassifier(engine="spark").fit(np.zeros((4, 784)), np.array([2, 3, 2, 3]))


def test_engine_ray_without_ray_says_how_to_install(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    for args in (["dpmm", "fit", "--engine", "ray", "--chains", "1", "--iters", "0"],
                 ["train", "dpmm", "--engine", "ray", "--train-size", "20"]):
        res = cli(*args)
        assert res.exit_code == 2 and "pip install 'digitlab[ray]'" in res.stderr, (args, res.stderr)
