"""Request and response models of the REST API, with validation.

The request model :class:`PredictRequest` validates the heavy fields
(``pixels``, ``strokes``) with NumPy in one pass instead of element by element,
so a 784-number body costs tens of microseconds. Validation failures carry one
clear message naming the field, the rule and the value seen.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator

__all__ = [
    "CompleteRequest",
    "CompleteResponse",
    "ErrorResponse",
    "HealthResponse",
    "ModelInfo",
    "ModelsResponse",
    "PredictRequest",
    "PredictResponse",
    "SampleResponse",
    "parse_explain",
    "parse_mask",
    "parse_pixels",
    "parse_strokes",
]

_MODEL_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$"


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_pixels(value: Any) -> np.ndarray:
    """Validate ``pixels``: 784 numbers, or 28 rows of 28, finite, within 0-255.

    Returns
    -------
    ndarray of float32, shape (784,)

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
        raise ValueError(f"must hold only numbers, got {_describe(value if not isinstance(value, list) else _first_bad(value))}")
    if arr.shape not in ((784,), (28, 28)):
        raise ValueError(f"must be 784 numbers or 28 rows of 28 numbers, got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False).reshape(784)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"must be finite numbers, got {arr[~np.isfinite(arr)][0]} at index "
                         f"{int(np.flatnonzero(~np.isfinite(arr))[0])}")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255:
        bad = int(np.flatnonzero((arr < 0) | (arr > 255))[0])
        raise ValueError(f"must be between 0 and 255, got {float(arr[bad]):g} at index {bad}")
    return arr


def _first_bad(value: list[Any]) -> Any:
    for v in value:
        if isinstance(v, list):
            for w in v:
                if isinstance(w, bool) or not isinstance(w, (int, float)):
                    return w
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            return v
    return value


def parse_strokes(value: Any) -> list[np.ndarray]:
    """Validate ``strokes``: a list of strokes, each a non-empty list of finite ``[x, y]`` points.

    Returns
    -------
    list of ndarray of float64, each of shape (n_points, 2)
    """
    if not isinstance(value, list):
        raise ValueError(f"must be a list of strokes (lists of [x, y] points), got {type(value).__name__}")
    out = []
    for i, stroke in enumerate(value):
        if not isinstance(stroke, list) or not stroke:
            raise ValueError(f"stroke {i} must be a non-empty list of [x, y] points, got {_describe(stroke)}")
        try:
            arr = np.asarray(stroke, dtype=np.float64)
        except (ValueError, TypeError):
            raise ValueError(f"stroke {i} must hold [x, y] pairs of numbers, got {_describe(stroke)}") from None
        if arr.ndim != 2 or arr.shape[1] != 2 or any(isinstance(p, list) and any(isinstance(c, bool) for c in p)
                                                      for p in stroke[:1]):
            raise ValueError(f"stroke {i} must hold [x, y] pairs of numbers, got {_describe(stroke)}")
        if not np.isfinite(arr).all():
            raise ValueError(f"stroke {i} has a non-finite coordinate")
        out.append(arr)
    return out


def parse_explain(value: Any) -> int | bool:
    """Validate ``explain``: ``true``/``false``/``null`` or a digit 0-9; returns ``False``, ``True`` or the digit."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, int) and 0 <= value <= 9:
        return int(value)
    raise ValueError(f"must be true, false or a digit 0-9, got {_describe(value)}")


Pixels = Annotated[np.ndarray, PlainValidator(parse_pixels), WithJsonSchema({
    "oneOf": [
        {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 255}, "minItems": 784, "maxItems": 784},
        {"type": "array", "minItems": 28, "maxItems": 28,
         "items": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 255},
                   "minItems": 28, "maxItems": 28}},
    ],
    "description": "784 pixel intensities 0-255 row-major (white ink on black, as MNIST), or 28 rows of 28.",
})]
Strokes = Annotated[list[np.ndarray], PlainValidator(parse_strokes), WithJsonSchema({
    "type": "array",
    "items": {"type": "array", "minItems": 1,
              "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}},
    "description": "Strokes drawn on a width x height canvas, each a list of [x, y] points (pixels).",
})]
Explain = Annotated[int | bool, PlainValidator(parse_explain), WithJsonSchema({
    "oneOf": [{"type": "boolean"}, {"type": "integer", "minimum": 0, "maximum": 9}, {"type": "null"}],
    "description": "true: explain the predicted digit; 0-9: explain that digit; false/absent: no explanation.",
})]


class PredictRequest(BaseModel):
    """``POST /v1/predict`` (JSON): exactly one of ``pixels``, ``image`` or ``strokes``."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False, json_schema_extra={
        "examples": [{"strokes": [[[140, 40], [140, 240]]], "width": 280, "height": 280, "pen_width": 20,
                      "explain": True}]})

    pixels: Pixels | None = None
    image: str | None = Field(None, description="A PNG/JPEG/BMP/GIF image, base64 or a data: URL, any size.")
    strokes: Strokes | None = None
    width: int | None = Field(None, ge=1, le=4000, description="Canvas width in pixels (with strokes).")
    height: int | None = Field(None, ge=1, le=4000, description="Canvas height in pixels (with strokes).")
    pen_width: float | None = Field(None, gt=0, le=200,
                                    description="Pen width in canvas pixels (with strokes); default: 1/14 of "
                                                "the canvas's larger side.")
    model: str | None = Field(None, pattern=_MODEL_NAME, description="A model name from GET /v1/models.")
    explain: Explain = False

    @model_validator(mode="after")
    def _one_input(self) -> PredictRequest:
        given = [k for k in ("pixels", "image", "strokes") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'pixels', 'image' or 'strokes', got "
                             + (" and ".join(repr(g) for g in given) if given else "none"))
        if self.strokes is not None:
            if self.width is None or self.height is None:
                raise ValueError("'strokes' need the canvas 'width' and 'height'")
        elif self.width is not None or self.height is not None or self.pen_width is not None:
            raise ValueError("'width', 'height' and 'pen_width' only go with 'strokes'")
        return self


class PredictResponse(BaseModel):
    """The answer of ``POST /v1/predict``."""

    no_ink: bool = Field(description="true when the drawing or image is empty: no digit, scores or explanation.")
    digit: int | None = Field(None, description="The predicted digit.")
    probabilities: list[float] | None = Field(None, description="10 class probabilities, digits 0-9.")
    scores: list[float] | None = Field(None, description="10 raw model scores (logits, negative distances...).")
    input: list[float] = Field(description="The 784 normalised pixels (0-255, row-major) the model saw.")
    explanation: list[float] | None = Field(None, description="784 signed per-pixel contributions, when asked.")
    explained_digit: int | None = Field(None, description="The digit the explanation is for.")
    explanation_method: str | None = Field(None, description="'exact' or the approximation used.")
    model: str = Field(description="The model that answered.")
    elapsed_ms: float = Field(description="Server time for this request, milliseconds.")


class ModelInfo(BaseModel):
    """One entry of ``GET /v1/models``."""

    name: str
    family: str | None = None
    model_type: str | None = Field(None, description="Registered estimator name (e.g. 'cnn', 'centroid').")
    test_accuracy: float | None = Field(None, description="Accuracy on the MNIST test set, from the model card.")
    default: bool = Field(False, description="The model used when a request names none.")


class ModelsResponse(BaseModel):
    """``GET /v1/models``."""

    default: str
    models: list[ModelInfo]


class SampleResponse(BaseModel):
    """``GET /v1/samples``: one MNIST test image."""

    digit: int
    offset: int
    count: int = Field(description="How many test images have this digit.")
    index: int = Field(description="Position in the MNIST test set.")
    pixels: list[int] = Field(description="784 pixels 0-255, row-major.")


class HealthResponse(BaseModel):
    """``GET /healthz``."""

    status: str
    default_model: str
    loaded_models: list[str]


class ErrorResponse(BaseModel):
    """Every error answer (4xx and 5xx)."""

    detail: str = Field(description="What was wrong, stating the rule and the value seen.")


Mask = Annotated[np.ndarray, PlainValidator(lambda v: parse_mask(v)), WithJsonSchema({
    "type": "array", "items": {"type": "boolean"}, "minItems": 784, "maxItems": 784,
    "description": "784 booleans, row-major: true where the pixel is visible (given), false where it is hidden.",
})]


def parse_mask(value: Any) -> np.ndarray:
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


def _first_bad_bool(value: list[Any]) -> Any:
    for v in value:
        for w in (v if isinstance(v, list) else [v]):
            if not isinstance(w, bool):
                return w
    return value


class CompleteRequest(BaseModel):
    """``POST /v1/complete``: a digit's ``pixels`` and which part is visible (``keep`` or ``mask``)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False, json_schema_extra={
        "examples": [{"pixels": [0] * 784, "keep": "top"}]})

    pixels: Pixels
    keep: Literal["top", "bottom", "left", "right"] | None = Field(
        None, description="The visible half; the other half is completed.")
    mask: Mask | None = None
    model: str | None = Field(None, pattern=_MODEL_NAME,
                              description="A Dirichlet-process mixture model (trained with 'digitlab dpmm fit' or "
                                          "'digitlab train dpmm'); default: the first one by name.")

    @model_validator(mode="after")
    def _one_mask(self) -> CompleteRequest:
        if (self.keep is None) == (self.mask is None):
            raise ValueError("give exactly one of 'keep' (top, bottom, left or right) or 'mask' (784 booleans)")
        return self


class CompleteResponse(BaseModel):
    """The answer of ``POST /v1/complete``."""

    probabilities: list[float] = Field(description="784 probabilities that each pixel is ink; visible pixels keep "
                                                   "their own (binarised) value.")
    visible: list[bool] = Field(description="The 784-pixel mask that was used (true = given).")
    model: str = Field(description="The mixture model that answered.")
    elapsed_ms: float
