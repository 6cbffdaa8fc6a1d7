"""Issue 13, medium 7: a model retrained while the server runs is served at once, whole; a deleted one is not."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ._helpers import TEST_SETTINGS


@pytest.fixture
def home(tmp_path, small_train):  # type: ignore[no-untyped-def]
    from digitlab.models import make_model
    from digitlab.models.io import save_model

    x, y = small_train
    save_model(make_model("centroid").fit(x[:1000], y[:1000]), tmp_path / "models" / "a")
    return tmp_path


def _save(home, x, y) -> None:  # type: ignore[no-untyped-def]
    from digitlab.models import make_model
    from digitlab.models.io import save_model

    save_model(make_model("centroid").fit(x, y), home / "models" / "a")  # what `digitlab train ... --name a` does


def _scores(client, pixels) -> list[float]:  # type: ignore[no-untyped-def]
    r = client.post("/v1/predict", json={"pixels": pixels, "model": "a"})
    assert r.status_code == 200, r.text
    return r.json()["scores"]


def _wait_for(check, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_retrained_model_is_reloaded_and_a_deleted_one_stops_being_served(home, mnist_dir, small_train,
                                                                            mnist_test) -> None:
    from digitlab.models.io import load_model
    from digitlab.serve import create_app, serve_settings

    x, y = small_train
    pixels = mnist_test[0][0].reshape(-1).astype(float).tolist()
    settings = serve_settings(data_dir=mnist_dir, home=home, default_model="a", reload_interval=0.1,
                              **TEST_SETTINGS)
    with TestClient(create_app(settings)) as c:
        old = _scores(c, pixels)
        _save(home, x[1000:3000], y[1000:3000])
        new = load_model(home / "models" / "a").estimator.scores(np.asarray([pixels], dtype=np.float32))[0]
        assert not np.allclose(old, new)
        assert _wait_for(lambda: np.allclose(_scores(c, pixels), new))
        listed = {m["name"] for m in c.get("/v1/models").json()["models"]}
        assert "a" in listed
        shutil.rmtree(home / "models" / "a")
        assert _wait_for(lambda: c.post("/v1/predict", json={"pixels": pixels, "model": "a"}).status_code == 404)
        assert "a" not in {m["name"] for m in c.get("/v1/models").json()["models"]}


def test_requests_during_reloads_see_one_whole_model(home, mnist_dir, small_train, mnist_test) -> None:
    from digitlab.models.io import load_model
    from digitlab.serve import create_app, serve_settings

    x, y = small_train
    pixels = mnist_test[0][0].reshape(-1).astype(float).tolist()
    X = np.asarray([pixels], dtype=np.float32)
    settings = serve_settings(data_dir=mnist_dir, home=home, default_model="a", reload_interval=0.05,
                              **TEST_SETTINGS)
    versions = [load_model(home / "models" / "a").estimator.scores(X)[0]]
    answers: list[list[float]] = []
    stop = threading.Event()
    with TestClient(create_app(settings)) as c:
        def ask() -> None:
            while not stop.is_set():
                answers.append(_scores(c, pixels))

        asker = threading.Thread(target=ask)
        asker.start()
        try:
            for i in range(4):
                lo = 500 * (i + 1)
                _save(home, x[lo:lo + 500], y[lo:lo + 500])
                versions.append(load_model(home / "models" / "a").estimator.scores(X)[0])
                time.sleep(0.3)
        finally:
            stop.set()
            asker.join()
    assert len(answers) > 10
    for got in answers:  # every answer is exactly one version's, never a mix
        assert any(np.allclose(got, v, rtol=1e-9) for v in versions), got
    assert np.allclose(answers[-1], versions[-1])  # and the last version is served


def test_a_new_version_is_served_and_removing_it_serves_the_one_before(tmp_path, mnist_dir, small_train,
                                                                       mnist_test) -> None:
    from digitlab.models import make_model
    from digitlab.models.io import load_model, remove_model, save_version
    from digitlab.serve import create_app, serve_settings

    x, y = small_train
    pixels = mnist_test[0][0].reshape(-1).astype(float).tolist()
    X = np.asarray([pixels], dtype=np.float32)
    models = tmp_path / "models"
    v1, _ = save_version(make_model("centroid").fit(x[:1000], y[:1000]), models, "a")
    settings = serve_settings(data_dir=mnist_dir, home=tmp_path, default_model="a", reload_interval=0.1,
                              **TEST_SETTINGS)
    with TestClient(create_app(settings)) as c:
        first = _scores(c, pixels)
        v2, version = save_version(make_model("centroid").fit(x[1000:2000], y[1000:2000]), models, "a")
        assert version == 2
        second = load_model(v2).estimator.scores(X)[0]
        assert _wait_for(lambda: np.allclose(_scores(c, pixels), second))  # NAME is its latest version
        remove_model("a@v2", models)
        assert _wait_for(lambda: np.allclose(_scores(c, pixels), first))  # back to v1
        np.testing.assert_allclose(first, load_model(v1).estimator.scores(X)[0])
