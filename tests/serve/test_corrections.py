"""Corrections, profiles and every model side by side through the REST API (issue 15), bad inputs included.

The server answers with the small centroid model by default and compares it with the bundled CNN
(``models=("default",)``); its store is a fresh one for this module.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ._helpers import b64, png_bytes


@pytest.fixture(scope="module")
def learn_settings(settings, tmp_path_factory: pytest.TempPathFactory):
    """The server's settings with a store of its own, comparing the centroid with the bundled CNN."""
    return replace(settings, store_path=tmp_path_factory.mktemp("learn") / "digitlab.duckdb", models=("default",))


@pytest.fixture(scope="module")
def app_client(learn_settings):
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app

    with TestClient(create_app(learn_settings)) as c:
        yield c


def _store_rows(learn_settings, where: str = "TRUE", params: list | None = None) -> list[dict]:
    from digitlab.store import Store

    store = Store(learn_settings.store_path)
    store.flush()
    return store.query(f"SELECT * FROM drawings WHERE {where} ORDER BY id", params).records()


def _pixels(x: np.ndarray) -> list[int]:
    return x.reshape(-1).astype(int).tolist()


def _alive(client, mnist_test) -> None:
    """The server still answers, and correctly, after a bad request."""
    x, y = mnist_test
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.post("/v1/predict", json={"pixels": _pixels(x[0])})
    assert r.status_code == 200 and r.json()["digit"] == int(y[0])


def _wrong_label(answer: dict) -> int:
    return (int(answer["digit"]) + 3) % 10


# ---------------------------------------------------------------- corrections


def test_a_correction_is_stored_with_its_label_and_what_the_model_saw(app_client, learn_settings, mnist_test) -> None:
    x, y = mnist_test
    seen = app_client.post("/v1/predict", json={"pixels": _pixels(x[3])}).json()
    r = app_client.post("/v1/corrections", json={"pixels": _pixels(x[3]), "label": int(y[3])})
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["profile"] is None and answer["count"] >= 1 and answer["label"] == int(y[3])
    assert answer["predicted"] == seen["digit"] and answer["model"] == "centroid" and answer["stored"] == "store"
    (row,) = _store_rows(learn_settings, "id = ?", [answer["id"]])
    assert row["label"] == int(y[3]) and row["predicted"] == seen["digit"] and row["model"] == "centroid"
    assert row["profile"] is None and row["strokes"] is None and row["created"] is not None
    assert row["pixels"] == np.rint(seen["input"]).astype(int).tolist()


def test_strokes_are_kept_as_json_and_pixels_are_what_the_model_saw(app_client, learn_settings) -> None:
    drawing = {"strokes": [[[140, 40], [141, 140], [140, 240]]], "width": 280, "height": 280, "pen_width": 22}
    seen = app_client.post("/v1/predict", json=drawing).json()
    r = app_client.post("/v1/corrections", json={**drawing, "label": 1, "profile": "strokes-kept"})
    assert r.status_code == 201, r.text
    (row,) = _store_rows(learn_settings, "profile = 'strokes-kept'")
    assert json.loads(row["strokes"]) == {"strokes": drawing["strokes"], "width": 280, "height": 280,
                                          "pen_width": 22}
    assert row["pixels"] == np.rint(seen["input"]).astype(int).tolist()


def test_an_uploaded_image_can_be_corrected(app_client, mnist_test) -> None:
    x, y = mnist_test
    r = app_client.post("/v1/corrections", json={"image": b64(png_bytes(x[5])), "label": int(y[5]),
                                                 "profile": "image-user"})
    assert r.status_code == 201 and r.json()["count"] == 1


def test_count_is_that_profiles_corrections(app_client, mnist_test) -> None:
    x, y = mnist_test
    counts = [app_client.post("/v1/corrections", json={"pixels": _pixels(x[i]), "label": int(y[i]),
                                                       "profile": p}).json()["count"]
              for i, p in enumerate(["ann", "bob", "ann", "ann", "bob"])]
    assert counts == [1, 1, 2, 3, 2]
    got = app_client.get("/v1/profiles/ann").json()
    assert got["profile"] == "ann" and got["count"] == 3 and sum(got["counts"]) == 3
    assert got["counts"] == np.bincount(y[[0, 2, 3]], minlength=10).tolist()


def test_a_profile_is_forgotten_with_its_drawings(app_client, learn_settings, mnist_test) -> None:
    x, y = mnist_test
    for i in range(3):
        app_client.post("/v1/corrections", json={"pixels": _pixels(x[i]), "label": int(y[i]), "profile": "gone"})
    app_client.post("/v1/corrections", json={"pixels": _pixels(x[9]), "label": int(y[9]), "profile": "stays"})
    r = app_client.delete("/v1/profiles/gone")
    assert r.status_code == 200 and r.json() == {"profile": "gone", "deleted": 3}
    assert app_client.get("/v1/profiles/gone").status_code == 404
    assert app_client.delete("/v1/profiles/gone").status_code == 404
    assert not _store_rows(learn_settings, "profile = 'gone'")
    assert len(_store_rows(learn_settings, "profile = 'stays'")) == 1
    answer = app_client.post("/v1/predict", json={"pixels": _pixels(x[0]), "profile": "gone"}).json()
    assert answer["profile_drawings"] == 0


# ---------------------------------------------------------------- profiles adapt


@pytest.mark.parametrize("model", ["centroid", "default"])
def test_a_corrected_drawing_is_read_right_under_its_profile_from_the_next_request(app_client, mnist_test,
                                                                                  model: str) -> None:
    x, _ = mnist_test
    body = {"pixels": _pixels(x[11]), "model": model}
    before = app_client.post("/v1/predict", json=body).json()
    label = _wrong_label(before)
    profile = f"teach-{model}"
    r = app_client.post("/v1/corrections", json={**body, "label": label, "profile": profile})
    assert r.status_code == 201 and r.json()["predicted"] == before["digit"]
    after = app_client.post("/v1/predict", json={**body, "profile": profile}).json()
    assert after["digit"] == label and after["profile"] == profile and after["profile_drawings"] == 1
    assert after["scores"] == before["scores"]  # the scores stay the model's own
    unchanged = app_client.post("/v1/predict", json=body).json()
    assert unchanged["digit"] == before["digit"] and unchanged["probabilities"] == before["probabilities"]
    assert "profile" not in unchanged and "by_model" not in unchanged


def test_answers_without_a_profile_equal_a_server_that_never_saw_a_correction(app_client, settings,
                                                                              mnist_test) -> None:
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app

    x, _ = mnist_test
    bodies = [{"pixels": _pixels(x[i]), "model": m, "explain": i % 2 == 0}
              for i in range(20, 30) for m in ("centroid", "default")]
    for b in bodies[:6]:
        app_client.post("/v1/corrections", json={"pixels": b["pixels"], "label": 0, "profile": "noise"})
    with TestClient(create_app(settings)) as fresh:
        for b in bodies:
            ours, theirs = app_client.post("/v1/predict", json=b).json(), fresh.post("/v1/predict", json=b).json()
            ours.pop("elapsed_ms"), theirs.pop("elapsed_ms")
            assert ours == theirs


def test_a_profile_without_corrections_changes_nothing(app_client, mnist_test) -> None:
    x, _ = mnist_test
    plain = app_client.post("/v1/predict", json={"pixels": _pixels(x[12])}).json()
    named = app_client.post("/v1/predict", json={"pixels": _pixels(x[12]), "profile": "nobody-yet"}).json()
    assert named["probabilities"] == plain["probabilities"] and named["profile_drawings"] == 0


# ---------------------------------------------------------------- every model side by side


def test_models_list_gives_each_models_answer_in_order(app_client, mnist_test) -> None:
    x, y = mnist_test
    r = app_client.post("/v1/predict", json={"pixels": _pixels(x[0]), "models": ["default", "centroid"]})
    assert r.status_code == 200
    by_model = r.json()["by_model"]
    assert [a["model"] for a in by_model] == ["default", "centroid"]
    for a in by_model:
        assert a["digit"] == int(y[0]) and a["probability"] == max(a["probabilities"]) and a["elapsed_ms"] >= 0
    assert r.json()["model"] == "centroid"  # the answer itself is the default model's


def test_models_all_is_every_compared_model(app_client, mnist_test) -> None:
    x, _ = mnist_test
    assert app_client.get("/v1/models").json()["served"] == ["centroid", "default"]
    answer = app_client.post("/v1/predict", json={"pixels": _pixels(x[1]), "models": "all"}).json()
    assert [a["model"] for a in answer["by_model"]] == ["centroid", "default"]
    empty = app_client.post("/v1/predict", json={"pixels": [0] * 784, "models": "all"}).json()
    assert empty["no_ink"] and [a.get("digit") for a in empty["by_model"]] == [None, None]


def test_by_model_answers_adapt_to_the_profile(app_client, mnist_test) -> None:
    x, _ = mnist_test
    body = {"pixels": _pixels(x[13])}
    plain = app_client.post("/v1/predict", json={**body, "models": "all"}).json()["by_model"]
    label = _wrong_label(plain[1])
    app_client.post("/v1/corrections", json={**body, "label": label, "profile": "compare-me", "model": "default"})
    adapted = app_client.post("/v1/predict", json={**body, "models": "all", "profile": "compare-me"}).json()
    assert [a["digit"] for a in adapted["by_model"]] == [label, label]


# ---------------------------------------------------------------- bad inputs: 4xx, and the server stays up


_PIX = [0] * 783 + [255]


@pytest.mark.parametrize("body, status, words", [
    ({"pixels": _PIX}, 422, "label"),                                            # missing label
    ({"pixels": _PIX, "label": 10}, 422, "digit 0-9"),
    ({"pixels": _PIX, "label": -1}, 422, "digit 0-9"),
    ({"pixels": _PIX, "label": "3"}, 422, "digit 0-9"),
    ({"pixels": _PIX, "label": True}, 422, "digit 0-9"),
    ({"pixels": _PIX, "label": 3.5}, 422, "digit 0-9"),
    ({"pixels": _PIX, "image": "abc", "label": 3}, 422, "exactly one"),          # two inputs at once
    ({"label": 3}, 422, "exactly one"),                                           # no input
    ({"pixels": _PIX, "label": 3, "profile": "no spaces"}, 422, "profile name"),  # bad name
    ({"pixels": _PIX, "label": 3, "profile": "x" * 65}, 422, "profile name"),
    ({"pixels": _PIX, "label": 3, "profile": ""}, 422, "profile name"),
    ({"pixels": _PIX, "label": 3, "model": "nosuchmodel"}, 404, "nosuchmodel"),  # unknown model
    ({"pixels": _PIX, "label": 3, "explain": True}, 422, "not with a correction"),
    ({"pixels": _PIX, "label": 3, "models": "all"}, 422, "not with a correction"),
    ({"pixels": [0] * 784, "label": 3}, 422, "nothing is drawn"),                # no ink
    ({"pixels": _PIX, "label": 3, "colour": "red"}, 422, "colour"),
], ids=["no-label", "label-10", "label-negative", "label-string", "label-bool", "label-float", "two-inputs",
        "no-input", "name-space", "name-long", "name-empty", "unknown-model", "explain", "models", "no-ink",
        "unknown-field"])
def test_bad_corrections_are_refused_and_the_server_stays_up(app_client, learn_settings, mnist_test, body: dict,
                                                             status: int, words: str) -> None:
    before = len(_store_rows(learn_settings)) if learn_settings.store_path.exists() else 0
    r = app_client.post("/v1/corrections", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert (len(_store_rows(learn_settings)) if learn_settings.store_path.exists() else 0) == before
    _alive(app_client, mnist_test)


@pytest.mark.parametrize("raw, ctype, status", [
    (b"{not json", "application/json", 400),
    (b"", "application/json", 400),
    (b"label=3", "application/x-www-form-urlencoded", 415),
    (b"[1, 2]", "application/json", 422),
], ids=["malformed", "empty", "form", "not-an-object"])
def test_malformed_correction_bodies_are_refused(app_client, mnist_test, raw: bytes, ctype: str, status: int) -> None:
    r = app_client.post("/v1/corrections", content=raw, headers={"content-type": ctype})
    assert r.status_code == status, r.text
    _alive(app_client, mnist_test)


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1/profiles/never-seen", 404),
    ("DELETE", "/v1/profiles/never-seen", 404),
    ("GET", "/v1/profiles/bad%20name", 422),
    ("DELETE", "/v1/profiles/bad%20name", 422),
    ("GET", f"/v1/profiles/{'x' * 65}", 422),
    ("GET", "/v1/profiles/a.b", 422),
])
def test_unknown_and_bad_profiles_are_refused(app_client, mnist_test, method: str, path: str, status: int) -> None:
    r = app_client.request(method, path)
    assert r.status_code == status, r.text
    assert r.json()["detail"]
    _alive(app_client, mnist_test)


@pytest.mark.parametrize("extra, status, words", [
    ({"profile": "bad name"}, 422, "profile name"),
    ({"models": []}, 422, "models"),
    ({"models": "some"}, 422, "models"),
    ({"models": [f"m{i}" for i in range(33)]}, 422, "at most 32"),
    ({"models": ["centroid", "nosuchmodel"]}, 404, "nosuchmodel"),
    ({"models": ["bad name"]}, 422, "model name"),
], ids=["profile", "models-empty", "models-string", "models-many", "models-unknown", "models-bad-name"])
def test_bad_profile_and_models_on_predict_are_refused(app_client, mnist_test, extra: dict, status: int,
                                                       words: str) -> None:
    x, _ = mnist_test
    r = app_client.post("/v1/predict", json={"pixels": _pixels(x[0]), **extra})
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    _alive(app_client, mnist_test)


def test_the_openapi_document_declares_the_new_endpoints(app_client) -> None:
    doc = app_client.get("/openapi.json").json()
    assert "201" in doc["paths"]["/v1/corrections"]["post"]["responses"]
    assert {"get", "delete"} <= set(doc["paths"]["/v1/profiles/{name}"])
    def body(path: str) -> dict:
        return doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]

    assert {"profile", "models"} <= set(body("/v1/predict"))
    assert {"label", "profile", "pixels", "strokes", "image"} <= set(body("/v1/corrections"))


def test_the_store_is_not_held_between_corrections(app_client, learn_settings: object, mnist_test) -> None:
    """Another process may open the store read-write between two corrections (the server holds it only to write)."""
    import subprocess
    import sys

    x, y = mnist_test
    app_client.post("/v1/corrections", json={"pixels": _pixels(x[0]), "label": int(y[0]), "profile": "held"})
    path = Path(learn_settings.store_path)  # type: ignore[attr-defined]
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
            "print(con.execute(\"SELECT count(*) FROM drawings WHERE profile = 'held'\").fetchone()[0])")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
