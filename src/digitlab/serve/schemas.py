"""Request and response models of the REST API, with validation.

The request models validate the heavy fields (``pixels``, ``mask``) with
NumPy in one pass instead of element by element, so a 784-number body costs
tens of microseconds. Strokes and the canvas are checked by
:func:`digitlab.preprocess.check_drawing`, the library's own rule, against
the :class:`~digitlab.limits.Limits` given in the validation context
(:func:`validation_context`; :data:`~digitlab.limits.DEFAULT_LIMITS`
without one); the validated :class:`~digitlab.preprocess.Drawing` is kept on
the request (:attr:`PredictRequest.drawing`), so strokes are converted to
arrays once. Model names follow :func:`digitlab.models.io.check_model_name`.
Failures carry one clear message naming the field, the rule and the value
seen; an input over a size limit is an error of type ``too_large`` (HTTP 413).

The response models hold their long vectors as NumPy arrays (checked for
length on construction) and declare them as JSON arrays of numbers: the server
renders them with orjson straight from the arrays
(:class:`digitlab.serve.responses.ModelResponse`), ``model_dump_json`` gives
the same JSON.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from digitlab.errors import TooLargeError, UserError
from digitlab.limits import DEFAULT_LIMITS, Limits
from digitlab.models.io import MODEL_NAME, check_model_name
from digitlab.preprocess import Drawing, check_drawing
from digitlab.profiles import PROFILE_NAME, check_profile_name

__all__ = [
    "CompleteRequest",
    "CompleteResponse",
    "CorrectionRequest",
    "CorrectionResponse",
    "ErrorResponse",
    "HealthResponse",
    "ModelAnswer",
    "ModelInfo",
    "ModelsResponse",
    "NotADigitInfo",
    "PredictRequest",
    "PredictResponse",
    "ProfileDeleted",
    "ProfileResponse",
    "ReadDigitInfo",
    "ReadRequest",
    "ReadResponse",
    "ReadyResponse",
    "SampleResponse",
    "parse_explain",
    "parse_label",
    "parse_mask",
    "parse_model_name",
    "parse_models",
    "parse_pixels",
    "parse_profile_name",
    "parse_strokes",
    "validation_context",
]

_LIMITS_KEY = "limits"


def validation_context(limits: Limits) -> dict[str, Limits]:
    """The context under which requests are checked against ``limits`` (``model_validate*(..., context=...)``)."""
    return {_LIMITS_KEY: limits}


def _limits(info: ValidationInfo) -> Limits:
    ctx = info.context
    found = ctx.get(_LIMITS_KEY) if isinstance(ctx, Mapping) else None
    return found if isinstance(found, Limits) else DEFAULT_LIMITS


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- request fields


def parse_pixels(value: object, info: ValidationInfo | None = None) -> np.ndarray:
    """Validate ``pixels``: 784 numbers, or 28 rows of 28, finite, on the request's ``scale``.

    On the default scale (0-255) a picture whose values are all at most 1 is refused: it is one
    scaled to 0-1 (as Keras and torchvision users scale by habit), which would otherwise be read
    as an almost black picture. ``"scale": "unit"`` takes such values (multiplied by 255);
    ``"scale": "byte"`` takes 0-255 values without that check. ``scale`` is read from the fields
    validated before (``info.data``).

    Returns
    -------
    ndarray of float32, shape (784,), on 0-255

    Raises
    ------
    ValueError
        With a message stating the rule and the value seen.
    """
    if isinstance(value, np.ndarray):
        arr = value
    else:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"must be a list of 784 numbers or 28 lists of 28 numbers, got {type(value).__name__}")
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            raise ValueError("must be 784 numbers or 28 rows of 28 numbers; the rows have different lengths") from None
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"must hold only numbers, got {_describe(_first_bad(value))}")
    if arr.shape not in ((784,), (28, 28)):
        raise ValueError(f"must be 784 numbers or 28 rows of 28 numbers, got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False).reshape(784)
    if not np.isfinite(arr).all():
        raise ValueError(f"must be finite numbers, got {arr[~np.isfinite(arr)][0]} at index "
                         f"{int(np.flatnonzero(~np.isfinite(arr))[0])}")
    scale = info.data.get("scale") if info is not None else None
    lo, hi = float(arr.min()), float(arr.max())
    top = 1.0 if scale == "unit" else 255.0
    if lo < 0 or hi > top:
        bad = int(np.flatnonzero((arr < 0) | (arr > top))[0])
        hint = ' (with "scale": "unit")' if scale == "unit" else ""
        raise ValueError(f"must be between 0 and {top:g}{hint}, got {float(arr[bad]):g} at index {bad}")
    if scale == "unit":
        return arr * np.float32(255.0)
    if scale is None and 0 < hi <= 1.0:
        raise ValueError('look scaled to 0-1 (every value is at most 1): send 0-255 values (MNIST\'s scale), or add '
                         '"scale": "unit" to the request to send 0-1 values')
    return arr


def _first_bad(value: object) -> object:
    """The first item of a (nested) list that is not a number, for the message."""
    if not isinstance(value, (list, tuple)):
        return value
    for v in value:
        for w in (v if isinstance(v, (list, tuple)) else [v]):
            if isinstance(w, bool) or not isinstance(w, (int, float)):
                return w
    return value


def parse_strokes(value: object) -> list[Any]:
    """Check that ``strokes`` is a list holding no booleans (JSON's true and false are not coordinates).

    The strokes' shapes and numbers are checked with the canvas (``check_drawing``), through NumPy, which
    would read a boolean as 0 or 1; the boolean check runs over each stroke's values in C (``map``).
    """
    if not isinstance(value, list):
        raise ValueError(f"must be a list of strokes (lists of [x, y] points), got {type(value).__name__}")
    for i, stroke in enumerate(value):
        if isinstance(stroke, list):
            try:
                kinds = set(map(type, itertools.chain.from_iterable(stroke)))
            except TypeError:  # a point that is not a list: check_drawing says so
                continue
            if bool in kinds:
                raise ValueError(f"stroke {i} must be a list of (x, y) number pairs; it holds true or false")
    return value


def parse_explain(value: object) -> int | bool:
    """Validate ``explain``: ``true``/``false``/``null`` or a digit 0-9; returns ``False``, ``True`` or the digit."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, int) and 0 <= value <= 9:
        return int(value)
    raise ValueError(f"must be true, false or a digit 0-9, got {_describe(value)}")


def parse_model_name(value: object) -> str:
    """Validate a ``model`` name by :func:`digitlab.models.io.check_model_name`, the one naming rule."""
    if not isinstance(value, str):
        raise ValueError(f"must be a model name (a string), got {_describe(value)}")
    try:
        return check_model_name(value)
    except UserError as exc:
        raise ValueError(str(exc)) from None


def parse_keep(value: object) -> str:
    """Validate ``keep``: the visible half, ``top``, ``bottom``, ``left`` or ``right``."""
    if value not in ("top", "bottom", "left", "right"):
        raise ValueError(f"must be 'top', 'bottom', 'left' or 'right', got {_describe(value)}")
    assert isinstance(value, str)
    return value


# --- corrections, profiles and compare (issue 15)

#: Most models one request may compare (``models``).
MAX_MODELS = 32


def parse_profile_name(value: object) -> str:
    """Validate a ``profile`` name by :func:`digitlab.corrections.check_profile_name`: 1-64 of ``[A-Za-z0-9_-]``."""
    if not isinstance(value, str):
        raise ValueError(f"must be a profile name (a string), got {_describe(value)}")
    try:
        return check_profile_name(value)
    except UserError as exc:
        raise ValueError(str(exc)) from None


def parse_models(value: object) -> tuple[str, ...] | Literal["all"]:
    """Validate ``models``: ``"all"`` (every model the server compares) or a list of 1-32 model names.

    Returns the names in the order given, each once.
    """
    if value == "all":
        return "all"
    if not isinstance(value, list) or not value:
        raise ValueError(f'must be "all" or a non-empty list of model names, got {_describe(value)}')
    if len(value) > MAX_MODELS:
        raise ValueError(f"must name at most {MAX_MODELS} models, got {len(value)}")
    return tuple(dict.fromkeys(parse_model_name(v) for v in value))


def parse_label(value: object) -> int:
    """Validate a correction's ``label``: an integer digit 0-9 (not a boolean, not a string)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise ValueError(f"must be a digit 0-9 (an integer), got {_describe(value)}")
    return int(value)


def parse_mask(value: object) -> np.ndarray:
    """Validate ``mask``: 784 booleans (or 28 rows of 28). Returns bool ndarray of shape (784,)."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of 784 booleans, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise ValueError("must be 784 booleans or 28 rows of 28; the rows have different lengths") from None
    if arr.dtype != np.bool_:
        raise ValueError(f"must hold only true/false values, got {_describe(_first_bad_bool(value))}")
    if arr.shape not in ((784,), (28, 28)):
        raise ValueError(f"must be 784 booleans or 28 rows of 28, got shape {arr.shape}")
    return arr.reshape(784)


def _first_bad_bool(value: list[object] | tuple[object, ...]) -> object:
    for v in value:
        for w in (v if isinstance(v, (list, tuple)) else [v]):
            if not isinstance(w, bool):
                return w
    return value


def parse_image(value: object) -> str:
    """Validate ``image``: a string (base64 or a ``data:`` URL; decoded later)."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string (base64 or a data: URL), got {type(value).__name__}")
    return value


def parse_canvas_side(value: object) -> int:
    """Validate ``width`` or ``height``: an integer (its range is checked with the strokes)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer number of pixels, got {_describe(value)}")
    return value


def parse_pen_width(value: object) -> float:
    """Validate ``pen_width``: a number (its range is checked with the canvas)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number of pixels, got {_describe(value)}")
    return float(value)


_NUMBER = {"type": "number", "minimum": 0, "maximum": 255}
_PIXELS_SCHEMA = WithJsonSchema({
    "oneOf": [
        {"type": "array", "items": _NUMBER, "minItems": 784, "maxItems": 784},
        {"type": "array", "minItems": 28, "maxItems": 28,
         "items": {"type": "array", "items": _NUMBER, "minItems": 28, "maxItems": 28}},
    ],
    "description": "784 pixel intensities row-major (white ink on black, as MNIST), or 28 rows of 28: on 0-255, "
                   "or on 0-1 with \"scale\": \"unit\". Without a scale, values all at most 1 are refused "
                   "(a picture scaled to 0-1 by habit).",
})


def _pixels_field(value: object, info: ValidationInfo) -> np.ndarray:
    return parse_pixels(value, info)  # (pydantic passes ``info`` to a validator that requires it)


Pixels = Annotated[np.ndarray, PlainValidator(_pixels_field), _PIXELS_SCHEMA]
# Optional inputs: absent is None; an explicit null is refused, as the schema says (the validators get it).
MaybePixels = Annotated[np.ndarray | None, PlainValidator(_pixels_field), _PIXELS_SCHEMA]
Image64 = Annotated[str | None, PlainValidator(parse_image), WithJsonSchema({
    "type": "string", "description": "A PNG/JPEG/BMP/GIF/TIFF/WebP image, base64 or a data: URL, any size."})]
CanvasSide = Annotated[int | None, PlainValidator(parse_canvas_side)]
PenWidth = Annotated[float | None, PlainValidator(parse_pen_width)]
Scale = Literal["byte", "unit"]
Strokes = Annotated[list[Any] | None, PlainValidator(parse_strokes), WithJsonSchema({
    "type": "array", "maxItems": DEFAULT_LIMITS.max_strokes,
    "items": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}},
    "description": f"Strokes drawn on a width x height canvas, each a list of [x, y] points (pixels); at most "
                   f"{DEFAULT_LIMITS.max_strokes} strokes and {DEFAULT_LIMITS.max_stroke_points} points in all "
                   "(the server's limits).",
})]
Explain = Annotated[int | bool, PlainValidator(parse_explain), WithJsonSchema({
    "oneOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0, "maximum": 9}, {"type": "null"}],
    "description": "true: explain the predicted digit; 0-9: explain that digit; false/absent: no explanation.",
})]
_MODEL_NAME_SCHEMA = WithJsonSchema({
    "type": "string", "pattern": MODEL_NAME.pattern, "description": "A model name from GET /v1/models."})
ModelName = Annotated[str, PlainValidator(parse_model_name), _MODEL_NAME_SCHEMA]
MaybeModelName = Annotated[str | None, PlainValidator(parse_model_name), _MODEL_NAME_SCHEMA]
Keep = Annotated[str | None, PlainValidator(parse_keep), WithJsonSchema({
    "type": "string", "enum": ["top", "bottom", "left", "right"]})]
ProfileName = Annotated[str, PlainValidator(parse_profile_name), WithJsonSchema({
    "type": "string", "pattern": PROFILE_NAME.pattern,
    "description": "A personal profile: predictions adapt to the corrections stored under this name."})]
ModelSelection = Annotated[tuple[str, ...] | Literal["all"], PlainValidator(parse_models), WithJsonSchema({
    "oneOf": [{"type": "string", "enum": ["all"]},
              {"type": "array", "items": {"type": "string", "pattern": MODEL_NAME.pattern}, "minItems": 1,
               "maxItems": MAX_MODELS}],
    "description": "Also answer with each of these models (by_model): names from GET /v1/models, or \"all\" "
                   "for every model the server compares (digitlab serve --model A --model B, or --all)."})]
Label = Annotated[int, PlainValidator(parse_label), WithJsonSchema({
    "type": "integer", "minimum": 0, "maximum": 9, "description": "The true digit."})]
Mask = Annotated[np.ndarray | None, PlainValidator(parse_mask), WithJsonSchema({
    "type": "array", "items": {"type": "boolean"}, "minItems": 784, "maxItems": 784,
    "description": "784 booleans, row-major: true where the pixel is visible (given), false where it is hidden.",
})]


def _canvas_side(what: str) -> Any:
    return Field(default=None, description=f"Canvas {what} in pixels (with strokes).", json_schema_extra={
        "type": "integer", "minimum": DEFAULT_LIMITS.min_canvas_side, "maximum": DEFAULT_LIMITS.max_canvas_side})


def _exactly_one(**inputs: tuple[tuple[str, ...], tuple[str, ...]]) -> dict[str, Any]:
    """JSON schema ``oneOf``: per input, the fields it requires and the fields that must then be absent."""
    return {"oneOf": [{"required": list(required), "not": {"anyOf": [{"required": [f]} for f in absent]}}
                      for required, absent in inputs.values()]}


_SCALE = Field(default=None, description="The scale of 'pixels': 'byte' for 0-255 (the default), 'unit' for 0-1.")


def _must_be_object(data: object, fields: str) -> None:
    if not isinstance(data, Mapping) and not isinstance(data, BaseModel):
        raise ValueError(f"the body must be a JSON object with {fields}, got {type(data).__name__}")


# --------------------------------------------------------------------------- requests


def _one_input_given(request: BaseModel, fields: tuple[str, ...]) -> None:
    """The one-input rule of ``/v1/predict`` and ``/v1/read``: exactly one of ``fields`` is given."""
    given = [k for k in fields if getattr(request, k) is not None]
    if len(given) != 1:
        names = [repr(f) for f in fields]
        raise ValueError(f"give exactly one of {', '.join(names[:-1])} or {names[-1]}, got "
                         + (" and ".join(repr(g) for g in given) if given else "none"))


def _canvas_drawing(request: Any, info: ValidationInfo) -> Drawing | None:
    """``request``'s strokes checked against its canvas and the server's limits (None without strokes).

    ``width``, ``height`` and ``pen_width`` go with ``strokes`` only; a drawing over a size limit is a
    ``too_large`` error (413), any other bad drawing a plain validation error (422).
    """
    if request.strokes is None:
        if request.width is not None or request.height is not None or request.pen_width is not None:
            raise ValueError("'width', 'height' and 'pen_width' only go with 'strokes'")
        return None
    if request.width is None or request.height is None:
        raise ValueError("'strokes' need the canvas 'width' and 'height'")
    try:
        drawing: Drawing = check_drawing(request.strokes, request.width, request.height, request.pen_width,
                                         limits=_limits(info))
    except TooLargeError as exc:
        raise PydanticCustomError("too_large", "{reason}", {"reason": str(exc)}) from None
    except UserError as exc:
        raise ValueError(str(exc)) from None
    return drawing


class PredictRequest(BaseModel):
    """``POST /v1/predict`` (JSON): exactly one of ``pixels``, ``image`` or ``strokes`` (with the canvas)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False, json_schema_extra={
        **_exactly_one(pixels=(("pixels",), ("image", "strokes", "width", "height", "pen_width")),
                       image=(("image",), ("pixels", "strokes", "width", "height", "pen_width", "scale")),
                       strokes=(("strokes", "width", "height"), ("pixels", "image", "scale"))),
        "examples": [{"strokes": [[[140, 40], [140, 240]]], "width": 280, "height": 280, "pen_width": 20,
                      "explain": True}]})

    scale: Scale | None = _SCALE
    pixels: MaybePixels = None
    image: Image64 = None
    strokes: Strokes = None
    width: CanvasSide = _canvas_side("width")
    height: CanvasSide = _canvas_side("height")
    pen_width: PenWidth = Field(
        default=None, description="Pen width in canvas pixels (with strokes); default: 1/14 of the canvas's larger "
                                  "side.",
        json_schema_extra={"type": "number", "exclusiveMinimum": 0, "maximum": DEFAULT_LIMITS.max_pen_width})
    model: MaybeModelName = None
    explain: Explain = False
    profile: ProfileName | None = None
    models: ModelSelection | None = None

    _drawing: Drawing | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: object) -> object:
        _must_be_object(data, "'pixels', 'image' or 'strokes'")
        return data

    @model_validator(mode="after")
    def _one_input(self, info: ValidationInfo) -> PredictRequest:
        _one_input_given(self, ("pixels", "image", "strokes"))
        if self.scale is not None and self.pixels is None:
            raise ValueError("'scale' only goes with 'pixels'")
        self._drawing = _canvas_drawing(self, info)
        return self

    @property
    def drawing(self) -> Drawing | None:
        """The validated strokes and canvas, when the request has ``strokes``."""
        return self._drawing


class CorrectionRequest(PredictRequest):
    """``POST /v1/corrections``: one input as for ``/v1/predict``, its true ``label``, and an optional ``profile``."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False, json_schema_extra={
        "examples": [{"strokes": [[[140, 40], [140, 240]]], "width": 280, "height": 280, "pen_width": 20,
                      "label": 1, "profile": "alice"}]})

    label: Label = Field(description="The true digit, 0-9.")

    @model_validator(mode="after")
    def _no_prediction_options(self) -> CorrectionRequest:
        if self.explain is not False or self.models is not None:
            raise ValueError("'explain' and 'models' go with /v1/predict, not with a correction")
        return self


class CompleteRequest(BaseModel):
    """``POST /v1/complete``: a digit's ``pixels`` and which part is visible (``keep`` or ``mask``)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False, json_schema_extra={
        **_exactly_one(keep=(("keep",), ("mask",)), mask=(("mask",), ("keep",))),
        "examples": [{"pixels": [0] * 784, "keep": "top"}]})

    scale: Scale | None = _SCALE
    pixels: Pixels
    keep: Keep = Field(default=None, description="The visible half; the other half is completed.")
    mask: Mask = None
    model: MaybeModelName = Field(
        default=None, description="A Dirichlet-process mixture model (trained with 'digitlab dpmm fit' or "
                                  "'digitlab train dpmm'); default: the first one by name.")

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: object) -> object:
        _must_be_object(data, "'pixels' and 'keep' or 'mask'")
        return data

    @model_validator(mode="after")
    def _one_mask(self) -> CompleteRequest:
        if (self.keep is None) == (self.mask is None):
            raise ValueError("give exactly one of 'keep' (top, bottom, left or right) or 'mask' (784 booleans)")
        return self


class ReadRequest(BaseModel):
    """``POST /v1/read``: a number drawn as ``strokes`` on a canvas of any aspect ratio, or an ``image``."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False, json_schema_extra={
        **_exactly_one(image=(("image",), ("strokes", "width", "height", "pen_width")),
                       strokes=(("strokes", "width", "height"), ("image",))),
        "examples": [{"strokes": [[[60, 60], [60, 240]], [[160, 80], [230, 70], [170, 240]]], "width": 600,
                      "height": 300, "pen_width": 16}]})

    image: Image64 = None  # any size and aspect ratio
    strokes: Strokes = None
    width: CanvasSide = _canvas_side("width")
    height: CanvasSide = _canvas_side("height")
    pen_width: PenWidth = Field(
        default=None, description="Pen width in canvas pixels (with strokes); default: 1/14 of the canvas's larger "
                                  "side.",
        json_schema_extra={"type": "number", "exclusiveMinimum": 0, "maximum": DEFAULT_LIMITS.max_pen_width})
    model: MaybeModelName = None

    _drawing: Drawing | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: object) -> object:
        _must_be_object(data, "'image' or 'strokes'")
        return data

    @model_validator(mode="after")
    def _one_input(self, info: ValidationInfo) -> ReadRequest:
        _one_input_given(self, ("image", "strokes"))
        self._drawing = _canvas_drawing(self, info)
        return self

    @property
    def drawing(self) -> Drawing | None:
        """The validated strokes and canvas, when the request has ``strokes``."""
        return self._drawing


# --------------------------------------------------------------------------- responses


def _vector_check(length: int, kinds: str) -> PlainValidator:
    """Validator of a response vector: ``length`` values whose dtype kind is one of ``kinds``, kept as an ndarray."""

    def check(value: object) -> np.ndarray:
        arr = np.asarray(value)
        if arr.shape != (length,) or arr.dtype.kind not in kinds:
            raise ValueError(f"must be {length} values of dtype kind {kinds!r}, got shape {arr.shape} of {arr.dtype}")
        return arr

    return PlainValidator(check)


def _vector_schema(length: int, items: dict[str, object], description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "array", "items": items, "minItems": length, "maxItems": length,
                           "description": description})


_AS_LIST = PlainSerializer(np.ndarray.tolist, when_used="json")
ClassVector = Annotated[np.ndarray, _vector_check(10, "f"), _AS_LIST,
                        _vector_schema(10, {"type": "number"}, "One value per digit 0-9.")]
PixelVector = Annotated[np.ndarray, _vector_check(784, "iuf"), _AS_LIST,
                        _vector_schema(784, {"type": "number"}, "784 values, row-major.")]
ImageVector = Annotated[np.ndarray, _vector_check(784, "iu"), _AS_LIST,
                        _vector_schema(784, {"type": "integer", "minimum": 0, "maximum": 255},
                                       "784 pixels 0-255, row-major.")]
MaskVector = Annotated[np.ndarray, _vector_check(784, "b"), _AS_LIST,
                       _vector_schema(784, {"type": "boolean"}, "784 booleans, row-major.")]

_ANSWER = ConfigDict(arbitrary_types_allowed=True)
_NOT_A_DIGIT = ("true when the drawing does not look like one digit (a letter, a symbol or shape, a scribble, two "
                "digits): 'digit' still holds the best guess. Always false for a model that cannot tell "
                "(GET /v1/models, 'not_a_digit').")


class ModelAnswer(BaseModel):
    """One model's answer in ``by_model``."""

    model_config = _ANSWER

    model: str
    digit: int | None = Field(default=None, description="The predicted digit (null when nothing is drawn).")
    probability: float | None = Field(default=None, description="The predicted digit's probability.")
    probabilities: ClassVector | None = Field(default=None, description="10 class probabilities, digits 0-9.")
    elapsed_ms: float = Field(description="Time this model's answer took, milliseconds.")


class PredictResponse(BaseModel):
    """The answer of ``POST /v1/predict``; the ``explanation`` fields are present only when one was asked for."""

    model_config = _ANSWER

    no_ink: bool = Field(description="true when the drawing or image is empty: no digit, scores or explanation.")
    digit: int | None = Field(default=None, description="The predicted digit.")
    not_a_digit: bool | None = Field(default=None, description=_NOT_A_DIGIT)
    probabilities: ClassVector | None = Field(default=None, description="10 class probabilities, digits 0-9.")
    scores: ClassVector | None = Field(default=None, description="10 raw model scores (logits, negative distances...).")
    input: PixelVector = Field(description="The 784 normalised pixels (0-255, row-major) the model saw.")
    explanation: PixelVector | None = Field(default=None, description="784 signed per-pixel contributions, when asked.")
    explained_digit: int | None = Field(default=None, description="The digit the explanation is for.")
    explanation_method: str | None = Field(default=None, description="'exact' or the approximation used.")
    model: str = Field(description="The model that answered.")
    elapsed_ms: float = Field(description="Server time for this request, milliseconds.")
    profile: str | None = Field(default=None, description="The profile the answer adapted to (when one was given).")
    profile_drawings: int | None = Field(default=None, description="How many corrections that profile holds.")
    by_model: list[ModelAnswer] | None = Field(default=None, description="Each model's answer, when 'models' "
                                                                         "was given, in that order.")


class CorrectionResponse(BaseModel):
    """The answer of ``POST /v1/corrections`` (201)."""

    id: int = Field(description="The correction's id in the store's table drawings.")
    profile: str | None = Field(description="Its profile, or null.")
    count: int = Field(description="The profile's stored corrections, this one included.")
    label: int
    predicted: int = Field(description="What the model answered for the drawing before this correction.")
    model: str = Field(description="The model that answered.")
    stored: Literal["store", "staged"] = Field(
        description="'store': in the database; 'staged': the store was busy, the correction is safe on disk "
                    "beside it and the next write applies it.")


class ProfileResponse(BaseModel):
    """``GET /v1/profiles/{name}``."""

    profile: str
    count: int = Field(description="Corrections stored under this profile.")
    counts: list[int] = Field(description="Corrections per digit, 0-9.")


class ProfileDeleted(BaseModel):
    """``DELETE /v1/profiles/{name}``."""

    profile: str
    deleted: int = Field(description="Corrections deleted.")


class NotADigitInfo(BaseModel):
    """Whether a model's answers can say ``not_a_digit: true`` (it has a detector), and how often wrongly."""

    can_tell: bool = Field(description="The model has a not-a-digit detector fitted for its weights.")
    false_alarm_rate: float | None = Field(default=None, description="The share of real digits held out from "
                                                                      "fitting (MNIST and pen digits) it flags.")
    note: str | None = Field(default=None, description="Why it cannot tell, and how to make it.")


class ModelInfo(BaseModel):
    """One entry of ``GET /v1/models``."""

    name: str
    family: str | None = None
    model_type: str | None = Field(default=None, description="Registered estimator name (e.g. 'cnn', 'centroid').")
    explanation: str | None = Field(default=None, description="How its predictions are explained: 'exact', "
                                                              "'integrated_gradients' or 'occlusion'.")
    test_accuracy: float | None = Field(default=None, description="Accuracy on the MNIST test set (model card).")
    default: bool = Field(default=False, description="The model used when a request names none.")
    predicts: bool = Field(default=True, description="Whether it answers POST /v1/predict (a model of the ten "
                                                      "digits).")
    reason: str | None = Field(default=None, description="Why it does not answer POST /v1/predict, when it does not.")
    not_a_digit: NotADigitInfo | None = Field(default=None, description="Whether it can tell a digit from something "
                                                                         "else, and at what operating point.")



class ModelsResponse(BaseModel):
    """``GET /v1/models``."""

    default: str
    models: list[ModelInfo]
    served: list[str] = Field(default_factory=list, description="The models compared side by side (the default "
                                                                "first): what \"models\": \"all\" means.")


class SampleResponse(BaseModel):
    """``GET /v1/samples``: one MNIST test image."""

    model_config = _ANSWER

    digit: int
    offset: int
    count: int = Field(description="How many test images have this digit.")
    index: int = Field(description="Position in the MNIST test set.")
    pixels: ImageVector


class HealthResponse(BaseModel):
    """``GET /healthz``."""

    status: str
    default_model: str
    loaded_models: list[str]


class ReadyResponse(BaseModel):
    """``GET /readyz``."""

    ready: bool = Field(description="true once the models are loaded and checked.")
    detail: str = Field(description="What the server is doing, or why it is not ready.")
    loaded_models: list[str]


class ErrorResponse(BaseModel):
    """Every error answer (4xx and 5xx)."""

    detail: str = Field(description="What was wrong, stating the rule and the value seen.")


class CompleteResponse(BaseModel):
    """The answer of ``POST /v1/complete``."""

    model_config = _ANSWER

    probabilities: PixelVector = Field(description="784 probabilities that each pixel is ink; visible pixels keep "
                                                   "their own (binarised) value.")
    visible: MaskVector = Field(description="The 784-pixel mask that was used (true = given).")
    model: str = Field(description="The mixture model that answered.")
    elapsed_ms: float


class ReadDigitInfo(BaseModel):
    """One digit of a ``POST /v1/read`` answer."""

    model_config = _ANSWER

    digit: int = Field(description="The digit (the best guess, also when not_a_digit).")
    probabilities: ClassVector = Field(description="10 class probabilities, digits 0-9.")
    box: tuple[float, float, float, float] = Field(description="[x0, y0, x1, y1] in the input's coordinates "
                                                               "(canvas or picture pixels, y down).")
    not_a_digit: bool = Field(description=_NOT_A_DIGIT)


class ReadResponse(BaseModel):
    """The answer of ``POST /v1/read``: the digits found, left to right."""

    model_config = _ANSWER

    no_ink: bool = Field(description="true when nothing is drawn: 'text' is empty and 'digits' too.")
    text: str = Field(description="The digits left to right, e.g. \"2026\" (best guesses: check not_a_digit).")
    digits: list[ReadDigitInfo]
    model: str = Field(description="The model that answered.")
    elapsed_ms: float = Field(description="Server time for this request, milliseconds.")
