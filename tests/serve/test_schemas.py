"""digitlab.serve.schemas on their own: the rules, the messages, the limits they read, the JSON they give."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from digitlab.limits import DEFAULT_LIMITS, Limits
from digitlab.models.io import MODEL_NAME
from digitlab.serve.schemas import (
    CompleteRequest,
    CompleteResponse,
    ModelInfo,
    ModelsResponse,
    PredictRequest,
    PredictResponse,
    SampleResponse,
    parse_explain,
    parse_mask,
    parse_model_name,
    parse_pixels,
    validation_context,
)

SEVEN = [[[60, 40], [220, 40], [120, 250]]]


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str]]:
    return [(err["type"], str(err["msg"])) for err in exc.value.errors()]


# ---------------------------------------------------------------- request fields


def test_pixels_are_784_numbers_or_28_rows_as_float32() -> None:
    flat = parse_pixels(list(range(256)) * 3 + [0] * 16)
    assert flat.dtype == np.float32 and flat.shape == (784,)
    rows = parse_pixels([[7] * 28] * 28)
    assert rows.shape == (784,) and rows.max() == 7


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "got str"),
    ([0] * 783, "got shape (783,)"),
    ([[0] * 28] * 27 + [[0] * 27], "rows have different lengths"),
    ([True] * 784, "only numbers, got True"),
    (["a"] * 784, "only numbers, got 'a'"),
    ([0.0] * 783 + [float("nan")], "finite numbers, got nan at index 783"),
    ([0] * 10 + [-1] + [0] * 773, "between 0 and 255, got -1 at index 10"),
])
def test_bad_pixels_say_the_rule_and_the_value(value: object, message: str) -> None:
    with pytest.raises(ValueError, match="must") as exc:
        parse_pixels(value)
    assert message in str(exc.value)


def test_explain_is_false_true_or_a_digit() -> None:
    assert parse_explain(None) is False and parse_explain(False) is False and parse_explain(True) is True
    assert parse_explain(0) == 0 and parse_explain(9) == 9
    for bad in (10, -1, "yes", 1.5):
        with pytest.raises(ValueError, match="true, false or a digit 0-9"):
            parse_explain(bad)


def test_model_names_follow_the_one_naming_rule() -> None:
    assert parse_model_name("cnn-v2.1_a") == "cnn-v2.1_a"
    for bad in ("../etc", ".hidden", "-x", "a" * 65, "", "a b"):
        assert not MODEL_NAME.match(bad)
        with pytest.raises(ValueError, match="a model name must be 1-64 letters"):
            parse_model_name(bad)
    with pytest.raises(ValueError, match="must be a model name"):
        parse_model_name(5)


def test_mask_is_784_booleans() -> None:
    assert parse_mask([True] * 784).dtype == np.bool_
    with pytest.raises(ValueError, match="true/false values, got 1"):
        parse_mask([1] * 784)
    with pytest.raises(ValueError, match="784 booleans or 28 rows of 28, got shape"):
        parse_mask([True] * 700)


# ---------------------------------------------------------------- PredictRequest


def test_exactly_one_input_and_canvas_fields_only_with_strokes() -> None:
    with pytest.raises(ValidationError, match="exactly one of 'pixels', 'image' or 'strokes', got none"):
        PredictRequest.model_validate({})
    with pytest.raises(ValidationError, match="got 'pixels' and 'image'"):
        PredictRequest.model_validate({"pixels": [0] * 784, "image": "aGk="})
    with pytest.raises(ValidationError, match="only go with 'strokes'"):
        PredictRequest.model_validate({"pixels": [0] * 784, "width": 10})
    with pytest.raises(ValidationError, match="need the canvas 'width' and 'height'"):
        PredictRequest.model_validate({"strokes": SEVEN, "width": 280})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PredictRequest.model_validate({"pixels": [0] * 784, "pixel": 1})


def test_the_body_must_be_an_object() -> None:
    with pytest.raises(ValidationError, match="the body must be a JSON object with 'pixels', 'image' or 'strokes'"):
        PredictRequest.model_validate_json(b"[1, 2, 3]")


def test_strokes_become_a_checked_drawing_of_arrays() -> None:
    req = PredictRequest.model_validate_json(json.dumps({"strokes": SEVEN, "width": 280, "height": 280}))
    d = req.drawing
    assert d is not None and d.width == d.height == 280.0 and d.pen_width == 20.0  # 1/14 of the side
    assert len(d.strokes) == 1 and d.strokes[0].dtype == np.float64 and d.strokes[0].shape == (3, 2)
    assert PredictRequest.model_validate({"pixels": [0] * 784}).drawing is None


@pytest.mark.parametrize(("body", "message"), [
    ({"strokes": [[[1, 2, 3]]], "width": 10, "height": 10}, "stroke 0 must be a list of (x, y) points"),
    ({"strokes": [[["a", "b"]]], "width": 10, "height": 10}, "stroke 0 must be a list of (x, y) number pairs"),
    ({"strokes": [[[1, 2]]], "width": 0, "height": 10}, "canvas width must lie in 8..4000 px, got 0"),
    ({"strokes": [[[1, 2]]], "width": 10, "height": 10, "pen_width": -3}, "pen_width must be > 0"),
    ({"strokes": "abc", "width": 10, "height": 10}, "must be a list of strokes"),
])
def test_bad_strokes_are_value_errors_with_the_librarys_message(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        PredictRequest.model_validate(body)
    (kind, text), = _errors(exc)
    assert kind == "value_error" and message in text


def test_size_limits_are_too_large_errors_and_come_from_the_context() -> None:
    many = {"strokes": [[[1.0, 1.0]] * (DEFAULT_LIMITS.max_stroke_points + 1)], "width": 10, "height": 10}
    with pytest.raises(ValidationError) as exc:
        PredictRequest.model_validate(many)
    (kind, text), = _errors(exc)
    assert kind == "too_large" and f"at most {DEFAULT_LIMITS.max_stroke_points} points" in text

    small = validation_context(Limits(max_stroke_points=2, max_canvas_side=100, max_pen_width=5))
    body = {"strokes": [[[1, 1], [2, 2], [3, 3]]], "width": 50, "height": 50}
    PredictRequest.model_validate(body)  # within the default limits
    with pytest.raises(ValidationError, match="at most 2 points"):
        PredictRequest.model_validate(body, context=small)
    with pytest.raises(ValidationError) as exc:
        PredictRequest.model_validate({**body, "strokes": [[[1, 1]]], "width": 101}, context=small)
    assert _errors(exc)[0][0] == "too_large"
    with pytest.raises(ValidationError, match="pen_width must be > 0 and at most 5"):
        PredictRequest.model_validate({**body, "strokes": [[[1, 1]]], "pen_width": 6}, context=small)
    req = PredictRequest.model_validate({**body, "strokes": [[[1, 1]]]}, context=small)
    assert req.drawing is not None and req.drawing.pen_width == 50 / 14  # the default pen, within max_pen_width


def test_complete_request_takes_keep_or_mask() -> None:
    assert CompleteRequest.model_validate({"pixels": [0] * 784, "keep": "top"}).mask is None
    with pytest.raises(ValidationError, match="exactly one of 'keep'"):
        CompleteRequest.model_validate({"pixels": [0] * 784})
    with pytest.raises(ValidationError, match="body must be a JSON object"):
        CompleteRequest.model_validate_json(b'"top"')


def test_request_json_schemas_document_the_default_limits() -> None:
    props = PredictRequest.model_json_schema()["properties"]
    assert props["width"]["maximum"] == DEFAULT_LIMITS.max_canvas_side
    assert props["pen_width"]["maximum"] == DEFAULT_LIMITS.max_pen_width

    assert props["strokes"]["maxItems"] == DEFAULT_LIMITS.max_strokes  # optional inputs are absent, never null
    assert props["model"]["pattern"] == MODEL_NAME.pattern


# ---------------------------------------------------------------- responses


def _orjson(model: object) -> object:
    from digitlab.serve.responses import ModelResponse

    return orjson.loads(ModelResponse(model).body)


def test_predict_response_keeps_arrays_and_renders_the_same_json_either_way() -> None:
    x = np.arange(784, dtype=np.float32) % 256
    scores = np.linspace(-1, 1, 10)
    r = PredictResponse(no_ink=False, digit=9, probabilities=scores / scores.sum(), scores=scores, input=x,
                        model="m", elapsed_ms=1.5)
    assert r.input is x  # validated, not copied
    body = _orjson(r)
    assert body == json.loads(r.model_dump_json(exclude_unset=True))
    assert "explanation" not in body and body["input"] == x.tolist() and body["scores"] == scores.tolist()
    with pytest.raises(ValidationError, match="must be 784 values"):
        PredictResponse(no_ink=False, input=np.zeros(783), model="m", elapsed_ms=1)
    with pytest.raises(ValidationError, match="must be 10 values"):
        PredictResponse(no_ink=False, scores=np.zeros(9), input=x, model="m", elapsed_ms=1)


def test_sample_complete_and_models_responses_render_as_their_schema_says() -> None:
    pixels = (np.arange(784) % 256).astype(np.uint8)
    assert _orjson(SampleResponse(digit=1, offset=0, count=3, index=7, pixels=pixels))["pixels"] == pixels.tolist()
    with pytest.raises(ValidationError):
        SampleResponse(digit=1, offset=0, count=3, index=7, pixels=pixels.astype(np.float32))
    visible = np.zeros(784, dtype=bool)
    body = _orjson(CompleteResponse(probabilities=np.full(784, 0.5), visible=visible, model="mix", elapsed_ms=2))
    assert body["visible"] == [False] * 784 and body["probabilities"][0] == 0.5
    info = ModelInfo(name="a", family=None, model_type=None, explanation=None, test_accuracy=None, default=True)
    assert _orjson(ModelsResponse(default="a", models=[info])) == {"default": "a", "models": [
        {"name": "a", "family": None, "model_type": None, "explanation": None, "test_accuracy": None,
         "default": True}]}


def test_response_schemas_are_arrays_of_numbers() -> None:
    props = PredictResponse.model_json_schema()["properties"]
    assert props["input"]["type"] == "array" and props["input"]["minItems"] == 784
    assert props["input"]["items"] == {"type": "number"}
    assert SampleResponse.model_json_schema()["properties"]["pixels"]["items"]["type"] == "integer"


def test_the_exactly_one_input_rule_is_in_the_json_schema() -> None:
    import jsonschema_rs

    from digitlab.serve.routes.predict import _BODY

    doc = _BODY["requestBody"]["content"]["application/json"]["schema"]  # type: ignore[index]
    check = jsonschema_rs.validator_for(doc)
    pixels, image = [0] * 783 + [9], "aGk="
    strokes = {"strokes": SEVEN, "width": 280, "height": 280}
    for good in ({"pixels": pixels}, {"pixels": pixels, "scale": "unit"}, {"image": image}, strokes,
                 {**strokes, "pen_width": 12, "explain": True}):
        assert check.is_valid(good), good
    for bad in ({}, {"model": "default"}, {"pixels": pixels, "image": image}, {"image": image, **strokes},
                {"strokes": SEVEN}, {"pixels": pixels, "width": 280}, {"image": image, "scale": "unit"},
                {"pixels": None}):
        assert not check.is_valid(bad), bad
    complete = jsonschema_rs.validator_for(CompleteRequest.model_json_schema())
    assert complete.is_valid({"pixels": pixels, "keep": "top"})
    assert not complete.is_valid({"pixels": pixels}) and not complete.is_valid(
        {"pixels": pixels, "keep": "top", "mask": [True] * 784})
