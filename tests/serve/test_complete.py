"""POST /v1/complete: completing half-hidden digits with the Dirichlet-process mixture."""

from __future__ import annotations

import numpy as np
import pytest

from ._helpers import TEST_SETTINGS

DPMM = "mixture"


@pytest.fixture(scope="module")
def mixture_client(tmp_path_factory, small_train, mnist_dir):
    from fastapi.testclient import TestClient

    from digitlab.models import make_model
    from digitlab.models.io import save_model
    from digitlab.serve import create_app, serve_settings

    home = tmp_path_factory.mktemp("mixture-home")
    x, y = small_train
    save_model(make_model("dpmm", chains=2, iters=3, seed=0).fit(x, y), home / "models" / DPMM)
    save_model(make_model("centroid").fit(x, y), home / "models" / "centroid")
    settings = serve_settings(data_dir=mnist_dir, home=home, default_model="centroid", **TEST_SETTINGS)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def three(mnist_test) -> np.ndarray:
    x, y = mnist_test
    return x[np.flatnonzero(y == 3)[0]].reshape(784)


def test_hidden_half_is_completed_towards_the_truth(mixture_client, three):
    r = mixture_client.post("/v1/complete", json={"pixels": three.tolist(), "keep": "top"})
    assert r.status_code == 200, r.text
    body = r.json()
    p = np.asarray(body["probabilities"]).reshape(28, 28)
    truth = three.reshape(28, 28) >= 128
    assert body["model"] == DPMM and len(body["visible"]) == 784
    assert np.array_equal(p[:14], truth[:14].astype(float))  # visible pixels are given back
    bottom_p, bottom_t = p[14:], truth[14:]
    assert bottom_p[bottom_t].mean() > 3 * bottom_p[~bottom_t].mean()


def test_mask_is_the_same_as_keep(mixture_client, three):
    mask = np.zeros((28, 28), bool)
    mask[:, :14] = True
    a = mixture_client.post("/v1/complete", json={"pixels": three.tolist(), "mask": mask.reshape(-1).tolist()})
    b = mixture_client.post("/v1/complete", json={"pixels": three.tolist(), "keep": "left"})
    assert a.status_code == b.status_code == 200
    assert np.allclose(a.json()["probabilities"], b.json()["probabilities"])


@pytest.mark.parametrize(("body", "message"), [
    ({"pixels": [0] * 784}, "exactly one of 'keep'"),
    ({"pixels": [0] * 784, "keep": "top", "mask": [True] * 784}, "exactly one of 'keep'"),
    ({"pixels": [0] * 784, "keep": "middle"}, "keep"),
    ({"pixels": [0] * 784, "mask": [True] * 700}, "784 booleans"),
    ({"pixels": [0] * 784, "mask": [1] * 784}, "true/false"),
    ({"pixels": [0] * 783, "keep": "top"}, "784 numbers"),
    ({"pixels": [300] * 784, "keep": "top"}, "between 0 and 255"),
])
def test_bad_input_is_422_with_a_message(mixture_client, body, message):
    r = mixture_client.post("/v1/complete", json=body)
    assert r.status_code == 422 and message in r.json()["detail"]
    assert mixture_client.get("/healthz").status_code == 200


def test_a_classifier_is_not_a_mixture(mixture_client):
    r = mixture_client.post("/v1/complete", json={"pixels": [0] * 784, "keep": "top", "model": "centroid"})
    assert r.status_code == 422 and "dpmm" in r.json()["detail"]


def test_unknown_mixture_is_404(mixture_client):
    r = mixture_client.post("/v1/complete", json={"pixels": [0] * 784, "keep": "top", "model": "nope"})
    assert r.status_code == 404


def test_no_mixture_on_the_server_is_404(client):
    r = client.post("/v1/complete", json={"pixels": [0] * 784, "keep": "top"})
    assert r.status_code == 404 and "digitlab dpmm fit" in r.json()["detail"]
