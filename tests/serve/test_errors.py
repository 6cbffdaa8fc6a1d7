"""The one error table (digitlab.serve.errors): the same error gives the same status on every route."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from digitlab.errors import (
    DataNotFoundError,
    DigitlabError,
    ModelError,
    NoInkError,
    NotFoundError,
    ParameterError,
    TooLargeError,
    UserError,
)
from digitlab.serve.errors import public_detail, status_of, validation_answer

PIXELS = [0.0] * 783 + [10.0]


@pytest.fixture(scope="module")
def broken_client(tmp_path_factory: pytest.TempPathFactory, model_home: Path, mnist_dir: Path):
    """A server whose models folder holds the centroid, a mixture with corrupt weights and an unreadable card."""
    from fastapi.testclient import TestClient

    from digitlab.models.card import ModelCard, write_card
    from digitlab.serve import create_app, serve_settings

    home = tmp_path_factory.mktemp("broken-home")
    models = home / "models"
    shutil.copytree(model_home / "models" / "centroid", models / "centroid")
    (models / "bad-weights").mkdir()
    write_card(models / "bad-weights", ModelCard(model="dpmm"))
    (models / "bad-weights" / "weights.safetensors").write_bytes(b"not safetensors at all")
    (models / "bad-card").mkdir()
    (models / "bad-card" / "card.json").write_text("{not json", encoding="utf-8")
    settings = serve_settings(data_dir=mnist_dir, home=home, default_model="centroid", freeze_gc=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _predict(client, model: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/predict", json={"pixels": PIXELS, "model": model})


def _complete(client, model: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/complete", json={"pixels": PIXELS, "keep": "top", "model": model})


@pytest.mark.parametrize("model", ["bad-weights", "bad-card"])
def test_a_corrupt_model_is_500_on_predict_and_complete_alike(broken_client, model: str) -> None:
    answers = [_predict(broken_client, model), _complete(broken_client, model)]
    assert [r.status_code for r in answers] == [500, 500], [r.text for r in answers]
    for r in answers:
        detail = r.json()["detail"]
        assert detail.startswith(f"model {model!r} cannot be used: ") and "Traceback" not in r.text
        assert "/tmp" not in detail and str(Path.home()) not in detail  # no absolute paths
    assert answers[0].json() == answers[1].json()
    assert broken_client.get("/healthz").status_code == 200


def test_an_unknown_model_is_404_on_predict_and_complete_alike(broken_client) -> None:
    answers = [_predict(broken_client, "nosuchmodel"), _complete(broken_client, "nosuchmodel")]
    assert [r.status_code for r in answers] == [404, 404]
    assert answers[0].json() == answers[1].json()
    assert "no model named 'nosuchmodel'" in answers[0].json()["detail"]


def test_a_bad_model_name_is_422_on_predict_and_complete_alike(broken_client) -> None:
    answers = [_predict(broken_client, "../etc"), _complete(broken_client, "../etc")]
    assert [r.status_code for r in answers] == [422, 422]
    assert all("model: a model name must be" in r.json()["detail"] for r in answers)


def test_malformed_json_is_400_on_predict_and_complete_alike(broken_client) -> None:
    for path in ("/v1/predict", "/v1/complete"):
        r = broken_client.post(path, content=b'{"pixels": [0, 0,', headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["detail"].startswith("malformed JSON"), (path, r.text)


def test_models_lists_an_unreadable_card_without_failing(broken_client) -> None:
    r = broken_client.get("/v1/models")
    assert r.status_code == 200
    by_name = {m["name"]: m for m in r.json()["models"]}
    assert by_name["bad-card"]["model_type"] is None and by_name["bad-weights"]["family"] is not None
    assert by_name["centroid"]["explanation"] == "occlusion" or by_name["centroid"]["explanation"] == "exact"


def test_unknown_routes_and_methods_answer_json(broken_client) -> None:
    r = broken_client.get("/v1/nothing")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = broken_client.get("/v1/predict")
    assert r.status_code == 405 and r.json()["detail"]


def test_an_unexpected_exception_is_500_and_one_log_line(broken_client, monkeypatch, caplog) -> None:
    from digitlab.serve import state_of

    registry = state_of(broken_client.app).registry

    def explode() -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(registry, "entries", explode)
    with caplog.at_level(logging.DEBUG, logger="digitlab.serve"):
        r = broken_client.get("/v1/models")
    assert r.status_code == 500 and r.json() == {"detail": "internal error: RuntimeError"}
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].getMessage() == (
        "internal error on GET /v1/models: RuntimeError: disk on fire") and errors[0].exc_info is None


# ---------------------------------------------------------------- the table itself


@pytest.mark.parametrize(("exc", "status"), [
    (TooLargeError("x"), 413), (NotFoundError("x"), 404), (DataNotFoundError("x"), 404), (NoInkError("x"), 422),
    (UserError("x"), 422), (ParameterError("x"), 422), (ModelError("x"), 500), (DigitlabError("x"), 500),
])
def test_every_library_error_has_its_status(exc: DigitlabError, status: int) -> None:
    assert status_of(exc) == status


def test_validation_errors_are_400_413_or_422() -> None:
    assert validation_answer([{"type": "json_invalid", "loc": (), "msg": "Invalid JSON: EOF"}]) == (
        400, "malformed JSON: EOF")
    assert validation_answer([{"type": "too_large", "loc": (), "msg": "at most 5 points"},
                              {"type": "value_error", "loc": ("model",), "msg": "bad"}]) == (413, "at most 5 points")
    assert validation_answer([{"type": "value_error", "loc": ("body", "pixels"), "msg": "Value error, must be"},
                              {"type": "missing", "loc": ("query", "digit"), "msg": "Field required"}]) == (
        422, "pixels: must be; digit: Field required")


def test_details_never_hold_absolute_paths() -> None:
    folders = {"/srv/home/models": "models_dir", "/srv/mnist": "data_dir"}
    assert public_detail("cannot read '/srv/home/models/a/card.json' (Errno 13)", folders) == (
        "cannot read '<models_dir>/a/card.json' (Errno 13)")
    assert public_detail("MNIST not found in /srv/mnist.", folders) == "MNIST not found in <data_dir>."
    assert public_detail("[Errno 2] No such file: '/opt/x/y/weights.safetensors'") == (
        "[Errno 2] No such file: 'weights.safetensors'")
    for text in ("data:image/png;base64,... expected", "1/14 of the side", "784 numbers or 28 rows"):
        assert public_detail(text) == text


# ---------------------------------------------------------------- OpenAPI


def test_every_success_answer_has_a_json_schema_in_the_openapi_document(broken_client) -> None:
    doc = broken_client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    operations = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    assert {p for p, _, _ in operations} >= {"/v1/predict", "/v1/models", "/v1/samples", "/v1/complete", "/healthz"}
    files = [(path, method) for path, method, op in operations
             if set(op["responses"].get("200", {}).get("content", {})) == {"application/octet-stream"}]
    assert files == [("/v1/models/{name}/onnx", "get")]  # the one binary answer: a model file
    for path, method, op in operations:
        success = "201" if path == "/v1/corrections" else "200"  # a correction is created
        if (path, method) not in files:
            schema = op["responses"][success]["content"]["application/json"]["schema"]
            assert "$ref" in schema, (path, method, schema)
            target = schemas[schema["$ref"].rsplit("/", 1)[-1]]
            assert target["type"] == "object" and target["properties"], (path, method)
        for code, answer in op["responses"].items():
            if code != success:
                assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse"), (
                    path, method, code)
    assert schemas["PredictResponse"]["properties"]["input"]["type"] == "array"
