"""The REST API (digitlab.serve.app) through FastAPI's TestClient: good inputs, every bad input, the rest."""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest

from ._helpers import b64, png_bytes

N_TEST = 40  # MNIST test images checked per input kind


@pytest.fixture(scope="module")
def estimator(settings):
    """The centroid model the server answers with, loaded locally."""
    from digitlab.models.io import load_model

    return load_model(settings.models_dir / "centroid").estimator


def _assert_alive(client, mnist_test) -> None:
    """The server still answers, and correctly, after a bad request."""
    assert client.get("/healthz").json()["status"] == "ok"
    x, y = mnist_test
    r = client.post("/v1/predict", json={"pixels": x[0].reshape(-1).tolist()})
    assert r.status_code == 200 and r.json()["digit"] == int(y[0])


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's signature)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


# ---------------------------------------------------------------- good inputs


def test_pixels_give_the_models_digits_on_mnist(client, mnist_test, estimator) -> None:
    x, y = mnist_test
    got = [client.post("/v1/predict", json={"pixels": x[i].reshape(-1).tolist()}).json()["digit"]
           for i in range(N_TEST)]
    assert got == estimator.predict(x[:N_TEST].reshape(N_TEST, -1)).tolist()
    assert np.mean(np.array(got) == y[:N_TEST]) >= 0.7


def test_pixels_as_28_rows_equal_flat_pixels(client, mnist_test) -> None:
    x, _ = mnist_test
    flat = client.post("/v1/predict", json={"pixels": x[1].reshape(-1).tolist()}).json()
    rows = client.post("/v1/predict", json={"pixels": x[1].tolist()}).json()
    assert rows["digit"] == flat["digit"] and rows["probabilities"] == flat["probabilities"]


def test_answer_has_scores_probabilities_and_input(client, mnist_test, estimator) -> None:
    x, _ = mnist_test
    body = client.post("/v1/predict", json={"pixels": x[2].reshape(-1).tolist()}).json()
    assert body["no_ink"] is False and body["model"] == "centroid" and body["elapsed_ms"] >= 0
    np.testing.assert_allclose(body["scores"], estimator.scores(x[2:3].reshape(1, -1))[0], rtol=1e-6)
    np.testing.assert_allclose(body["probabilities"], estimator.predict_proba(x[2:3].reshape(1, -1))[0], atol=1e-9)
    assert body["input"] == x[2].reshape(-1).astype(float).tolist()
    assert "explanation" not in body


def test_base64_png_images_give_correct_digits(client, mnist_test) -> None:
    x, y = mnist_test
    got = [client.post("/v1/predict", json={"image": b64(png_bytes(x[i]))}).json()["digit"] for i in range(N_TEST)]
    assert np.mean(np.array(got) == y[:N_TEST]) >= 0.7


def test_base64_with_line_breaks_gives_the_same_answer(client, mnist_test) -> None:
    x, _ = mnist_test
    text = b64(png_bytes(x[0]))
    wrapped = "\n".join(text[i:i + 76] for i in range(0, len(text), 76))    # as MIME encoders write it
    plain, broken = (client.post("/v1/predict", json={"image": t}).json() for t in (text, wrapped))
    assert "\n" in wrapped and broken["scores"] == plain["scores"]


def test_data_url_and_dark_on_light_jpeg(client, mnist_test) -> None:
    import io

    from PIL import Image

    x, y = mnist_test
    big = Image.fromarray(255 - x[0]).resize((112, 112))  # black ink on white, 4x the size, JPEG
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=95)
    r = client.post("/v1/predict", json={"image": "data:image/jpeg;base64," + b64(buf.getvalue())})
    assert r.status_code == 200 and r.json()["digit"] == int(y[0])


def test_large_photo_is_normalised_off_the_event_loop_and_recognised(client, mnist_test) -> None:
    import io

    from PIL import Image

    x, y = mnist_test
    photo = Image.new("L", (1200, 900), 255)                       # 1.08 M pixels: above the inline limit
    photo.paste(Image.fromarray(255 - x[0]).resize((280, 280)), (700, 100))
    buf = io.BytesIO()
    photo.save(buf, format="PNG")
    r = client.post("/v1/predict", json={"image": b64(buf.getvalue())})
    assert r.status_code == 200 and r.json()["digit"] == int(y[0])


def test_multipart_upload(client, mnist_test) -> None:
    x, y = mnist_test
    r = client.post("/v1/predict", files={"image": ("digit.png", png_bytes(x[3]), "image/png")},
                    data={"explain": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["digit"] == int(y[3]) and len(r.json()["explanation"]) == 784


def test_strokes_of_a_vertical_bar_read_as_one(client) -> None:
    r = client.post("/v1/predict", json={"strokes": [[[140, 40], [141, 140], [142, 240]]],
                                         "width": 280, "height": 280, "pen_width": 20})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["digit"] == 1 and max(body["input"]) > 100


def test_explain_true_explains_the_prediction(client, mnist_test, estimator) -> None:
    from digitlab.explain import explain

    x, _ = mnist_test
    body = client.post("/v1/predict", json={"pixels": x[4].reshape(-1).tolist(), "explain": True}).json()
    assert body["explained_digit"] == body["digit"] and body["explanation_method"] == "exact"
    expected = explain(estimator, x[4], body["digit"]).contributions.reshape(-1)
    np.testing.assert_allclose(body["explanation"], expected, rtol=1e-6, atol=1e-6)


def test_explain_a_chosen_digit(client, mnist_test) -> None:
    x, _ = mnist_test
    body = client.post("/v1/predict", json={"pixels": x[4].reshape(-1).tolist(), "explain": 3}).json()
    assert body["explained_digit"] == 3 and len(body["explanation"]) == 784 and any(body["explanation"])


@pytest.mark.parametrize("payload", [
    {"pixels": [0] * 784},
    {"strokes": [], "width": 280, "height": 280},
    {"image": b64(png_bytes(np.full((50, 40), 255, dtype=np.uint8)))},
], ids=["blank-pixels", "no-strokes", "white-png"])
def test_empty_drawing_answers_no_ink(client, payload) -> None:
    r = client.post("/v1/predict", json=payload)
    assert r.status_code == 200, r.text
    assert r.json()["no_ink"] is True and r.json()["digit"] is None


def test_concurrent_requests_are_batched_and_correct(settings, mnist_test, estimator) -> None:
    from digitlab.serve import create_app

    x, _ = mnist_test
    app = create_app(settings)

    async def run() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as ac:
            rs = await asyncio.gather(*[ac.post("/v1/predict", json={"pixels": x[i].reshape(-1).tolist()})
                                        for i in range(64)])
        assert all(r.status_code == 200 for r in rs)
        return [r.json()["digit"] for r in rs]

    assert asyncio.run(run()) == estimator.predict(x[:64].reshape(64, -1)).tolist()


# ---------------------------------------------------------------- bad inputs

_PIX = [0.0] * 783 + [10.0]

BAD = {
    "pixels-string": ({"pixels": "abc"}, 422, "pixels"),
    "pixels-text-items": ({"pixels": ["a"] * 784}, 422, "numbers"),
    "pixels-booleans": ({"pixels": [True] * 784}, 422, "numbers"),
    "pixels-783": ({"pixels": [0] * 783}, 422, "784"),
    "pixels-28x27": ({"pixels": [[0] * 27] * 28}, 422, "28"),
    "pixels-ragged": ({"pixels": [[0] * 28] * 27 + [[0] * 27]}, 422, "rows"),
    "pixels-negative": ({"pixels": [*_PIX[:-1], -1]}, 422, "between 0 and 255"),
    "pixels-256": ({"pixels": [*_PIX[:-1], 256]}, 422, "between 0 and 255"),
    "explain-10": ({"pixels": _PIX, "explain": 10}, 422, "explain"),
    "explain-text": ({"pixels": _PIX, "explain": "yes"}, 422, "explain"),
    "model-number": ({"pixels": _PIX, "model": 5}, 422, "model"),
    "model-path": ({"pixels": _PIX, "model": "../etc"}, 422, "model"),
    "unknown-field": ({"pixels": _PIX, "pixel": 1}, 422, "pixel"),
    "two-inputs": ({"pixels": _PIX, "image": "aGk="}, 422, "exactly one"),
    "no-input": ({"model": "centroid"}, 422, "exactly one"),
    "not-base64": ({"image": "%%%not base64%%%"}, 422, "base64"),
    "undecodable": ({"image": b64(b"this is not an image at all")}, 422, "decode"),
    "truncated-png": ({"image": b64(png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64)))[:2000])}, 422,
                      "image"),
    "data-url-not-base64": ({"image": "data:image/png,abc"}, 422, "base64"),
    "strokes-no-size": ({"strokes": [[[1, 2]]]}, 422, "width"),
    "strokes-bad-point": ({"strokes": [[[1, 2, 3]]], "width": 10, "height": 10}, 422, "stroke 0"),
    "strokes-text": ({"strokes": [[["a", "b"]]], "width": 10, "height": 10}, 422, "stroke 0"),
    "width-zero": ({"strokes": [[[1, 2]]], "width": 0, "height": 10}, 422, "width"),
    "pen-negative": ({"strokes": [[[1, 2]]], "width": 10, "height": 10, "pen_width": -3}, 422, "pen_width"),
    "size-without-strokes": ({"pixels": _PIX, "width": 10}, 422, "strokes"),
    "bomb": ({"image": b64(_png_header(100_000, 100_000))}, 413, "bomb"),
    "image-too-wide": ({"image": b64(_png_header(5000, 10))}, 413, "5000x10"),
    "image-too-many-pixels": ({"image": b64(_png_header(3000, 3000))}, 413, "pixels"),
    "too-many-stroke-points": ({"strokes": [[[1.0, 1.0]] * 20_001], "width": 10, "height": 10}, 413, "points"),
    "unknown-model": ({"pixels": _PIX, "model": "nosuchmodel"}, 404, "nosuchmodel"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_json_input_is_a_clear_4xx(client, mnist_test, name) -> None:
    payload, status, words = BAD[name]
    r = client.post("/v1/predict", json=payload)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert words.lower() in r.json()["detail"].lower() and "Traceback" not in r.text
    _assert_alive(client, mnist_test)


@pytest.mark.parametrize("raw, status, words", [
    (b'{"pixels": [0, 0,', 400, "malformed json"),
    (b"{'pixels': []}", 400, "malformed json"),
    (b"", 400, "empty"),
    (b"[1, 2, 3]", 422, "json object"),
    (b'{"pixels": [NaN' + b", 0" * 783 + b"]}", 422, "finite"),
    (b'{"pixels": [Infinity' + b", 0" * 783 + b"]}", 422, "finite"),
    (b'{"pixels": [1e400' + b", 0" * 783 + b"]}", 422, "finite"),
], ids=["truncated", "single-quotes", "empty", "array", "nan", "infinity", "overflow"])
def test_malformed_or_non_finite_json(client, mnist_test, raw, status, words) -> None:
    r = client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert words in r.json()["detail"].lower()
    _assert_alive(client, mnist_test)


def test_oversized_body_is_413(client, mnist_test, settings) -> None:
    r = client.post("/v1/predict", content=b"x" * (settings.limits.max_body_bytes + 1),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    _assert_alive(client, mnist_test)


def test_oversized_streamed_body_without_length_is_413(client, mnist_test, settings) -> None:
    def chunks():
        for _ in range(settings.limits.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    r = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    _assert_alive(client, mnist_test)


def test_unsupported_content_type_is_415(client, mnist_test) -> None:
    r = client.post("/v1/predict", content=b"<xml/>", headers={"content-type": "application/xml"})
    assert r.status_code == 415 and "JSON" in r.json()["detail"]
    _assert_alive(client, mnist_test)


def test_multipart_without_image_or_with_garbage(client, mnist_test) -> None:
    r = client.post("/v1/predict", data={"model": "centroid"}, files={"other": ("a.txt", b"x", "text/plain")})
    assert r.status_code == 422 and "image" in r.json()["detail"]
    r = client.post("/v1/predict", files={"image": ("a.png", b"not a png", "image/png")})
    assert r.status_code == 422 and "decode" in r.json()["detail"]
    _assert_alive(client, mnist_test)


def test_internal_error_is_500_json_without_traceback(settings, mnist_test, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app, state_of

    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        served = state_of(app).registry.get("centroid")

        def broken(X):
            raise RuntimeError("boom")

        monkeypatch.setattr(served.estimator, "scores", broken)
        r = c.post("/v1/predict", json={"pixels": _PIX})
        assert r.status_code == 500 and r.json()["detail"].startswith("internal error")
        assert "Traceback" not in r.text and c.get("/healthz").status_code == 200


# ---------------------------------------------------------------- other endpoints


def test_models_lists_name_family_and_accuracy(client) -> None:
    body = client.get("/v1/models").json()
    assert body["default"] == "centroid"
    m = next(m for m in body["models"] if m["name"] == "centroid")
    assert m["family"] == "centroid" and m["test_accuracy"] == 0.8 and m["default"] is True


def test_samples_give_the_kth_test_image_of_a_digit(client, mnist_test) -> None:
    x, y = mnist_test
    body = client.get("/v1/samples", params={"digit": 3, "offset": 5}).json()
    index = int(np.flatnonzero(y == 3)[5])
    assert body["index"] == index and body["count"] == int((y == 3).sum())
    assert body["pixels"] == x[index].reshape(-1).tolist()


@pytest.mark.parametrize("params, status", [({"digit": 10}, 422), ({"digit": "x"}, 422), ({}, 422),
                                            ({"digit": 1, "offset": -1}, 422), ({"digit": 1, "offset": 99999}, 404)])
def test_bad_sample_queries(client, params, status) -> None:
    r = client.get("/v1/samples", params=params)
    assert r.status_code == status and r.json()["detail"]


def test_samples_without_mnist_is_404_with_a_clear_message(model_home, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app, serve_settings

    app = create_app(serve_settings(data_dir=tmp_path, home=model_home, default_model="centroid", freeze_gc=False))
    r = TestClient(app).get("/v1/samples", params={"digit": 1})
    assert r.status_code == 404 and "MNIST" in r.json()["detail"]


def test_health_docs_and_page(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "default_model": "centroid",
                                             "loaded_models": ["centroid"]}
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="pad"' in page.text
    from digitlab.serve.routes.page import STATIC

    assets = ["style.css", *(f"js/{p.name}" for p in (STATIC / "js").glob("*.js"))]
    assert "js/main.js" in assets
    for asset in assets:
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200 and r.headers["content-type"].split(";")[0] in ("text/css", "text/javascript",
                                                                                     "application/javascript")


def test_softmax_shortcut_only_when_the_model_declares_it(settings, mnist_test, monkeypatch) -> None:
    """One model call gives both outputs only for models that declare probabilities = softmax of their scores."""
    from digitlab.models.base import softmax
    from digitlab.models.io import load_model
    from digitlab.serve.registry import ServedModel

    x, _ = mnist_test
    X = x[:5].reshape(5, -1).astype(np.float32)
    served = ServedModel(load_model(settings.models_dir / "centroid"))
    est = served.estimator
    assert est.proba_is_softmax is False  # the centroid's softmax has a temperature
    scores, probs = served.predict_batch(X)
    np.testing.assert_allclose(probs, est.predict_proba(X), atol=1e-12)
    np.testing.assert_allclose(scores, est.scores(X), rtol=1e-12)

    est.temperature = 1.0  # now predict_proba == softmax(-distance**2) == softmax(scores), and it says so:
    monkeypatch.setattr(est, "proba_is_softmax", True)
    calls = []
    real = est.predict_proba
    monkeypatch.setattr(est, "predict_proba", lambda X: calls.append(len(X)) or real(X))
    scores, probs = served.predict_batch(X)
    assert calls == []  # one pass: the probabilities are the softmax of the scores
    np.testing.assert_allclose(probs, softmax(scores), atol=1e-12)
    np.testing.assert_allclose(probs, real(X), atol=1e-9)


def test_a_prediction_over_the_time_limit_is_503(settings, monkeypatch) -> None:
    import time
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from digitlab.serve import create_app, state_of

    app = create_app(replace(settings, request_timeout=0.2))
    with TestClient(app) as c:
        served = state_of(app).registry.get("centroid")
        slow = served.estimator.scores
        monkeypatch.setattr(served.estimator, "scores", lambda X: (time.sleep(0.5), slow(X))[1])
        r = c.post("/v1/predict", json={"pixels": _PIX})
        assert r.status_code == 503 and "0.2 s" in r.json()["detail"]


def test_registry_loads_once_and_can_freeze_the_heap(settings) -> None:
    import gc

    from digitlab.serve.registry import ModelRegistry

    registry = ModelRegistry(settings.models_dir, freeze_gc=True)
    try:
        first = registry.get("centroid")
        assert registry.get("centroid") is first and registry.loaded() == ["centroid"]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_malformed_multipart_body_is_400(client, mnist_test) -> None:
    r = client.post("/v1/predict", content=b"--xyz\r\nnot a part",
                    headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 400 and r.json()["detail"].startswith("malformed multipart body")
    _assert_alive(client, mnist_test)


def _rendezvous_model(thread_safe: bool):  # type: ignore[no-untyped-def]
    """A model whose explanations wait until two of them run at once (or give up after 2 s)."""
    import threading

    from digitlab.models.base import DigitClassifier
    from digitlab.models.card import ModelCard
    from digitlab.models.io import LoadedModel

    class Rendezvous(DigitClassifier):
        explanation = "integrated_gradients"

        def __init__(self) -> None:
            self.classes_ = np.arange(10)
            self.barrier = threading.Barrier(2, timeout=2)

        def scores(self, X: np.ndarray) -> np.ndarray:
            return np.zeros((len(X), 10))

        predict_proba = scores

        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.zeros(len(X), dtype=np.int64)

        def integrated_gradients(self, X: np.ndarray, digit: int, steps: int = 32) -> np.ndarray:
            self.barrier.wait()
            return np.zeros((len(X), 784))

    Rendezvous.thread_safe = thread_safe
    return LoadedModel(name="r", estimator=Rendezvous(), card=ModelCard(model="r"), path=Path("r"))


def _two_explanations_at_once(served) -> list[str]:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(served.explain, np.zeros(784, dtype=np.float32), 1) for _ in range(2)]
        return [type(f.exception()).__name__ if f.exception() else "ok" for f in futures]


def test_explanations_run_side_by_side_up_to_explain_threads() -> None:
    from digitlab.serve.registry import ServedModel

    served = ServedModel(_rendezvous_model(thread_safe=True), explain_threads=2)
    assert _two_explanations_at_once(served) == ["ok", "ok"]


def test_explanations_of_a_model_that_is_not_thread_safe_take_turns() -> None:
    from digitlab.serve.registry import ServedModel

    served = ServedModel(_rendezvous_model(thread_safe=False), explain_threads=2)
    assert sorted(_two_explanations_at_once(served)) == ["BrokenBarrierError", "BrokenBarrierError"]
