"""Turn a ``/v1/predict`` request (JSON or multipart) into the 784 pixels a model sees, at a cost known early.

:func:`read_json` reads and validates a JSON body against the server's
:class:`~digitlab.limits.Limits`, refusing an oversized drawing from the raw
bytes (:func:`check_json_counts`: a count of brackets and commas, before any
list is built); :func:`read_predict_request` adds the multipart upload. Work
goes where its cost says (:class:`~digitlab.serve.state.AppState`'s lanes):
a small body is parsed on the event loop, others in the *fast* lane, large
ones in the *heavy* lane; pictures are never decoded on the event loop
(:func:`image_input`: a canvas-sized picture in the fast lane, a large one in
the heavy lane), and drawings of many points are rendered in the heavy lane
(:func:`drawing_input`). The blocking helpers over :mod:`digitlab.preprocess`:
:func:`open_picture` (base64 and the header), :func:`picture_to_input`
(pixels and MNIST normalising) and :func:`drawing_to_input`. An empty picture
or drawing gives ``None`` (the API's ``no_ink``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TypeVar

import numpy as np
from fastapi import Request
from PIL import Image
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from digitlab import preprocess
from digitlab.errors import NoInkError, TooLargeError, UserError
from digitlab.limits import Limits
from digitlab.preprocess import Drawing
from digitlab.serve.schemas import PredictRequest, validation_context
from digitlab.serve.state import AppState

__all__ = ["EXPLAIN_FIELD", "check_json_counts", "drawing_input", "drawing_to_input", "image_bytes", "image_input",
           "open_picture", "picture_to_input", "read_json", "read_predict_request"]

M = TypeVar("M", bound=BaseModel)
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?),", re.S)
_FORM_FIELDS = frozenset({"image", "model", "explain"})
#: The values of a multipart upload's ``explain`` field.
EXPLAIN_FIELD = ("true", "false", *(str(d) for d in range(10)))
# Costs. A body this small without strokes (784 pixels are ~4 kB) is parsed on the event loop: parsing it
# takes tens of microseconds, less than a thread hop.
_INLINE_BODY_BYTES = 16 * 1024
# A body this small, or with this few brackets, is parsed in the fast lane; larger ones in the heavy lane.
_FAST_BODY_BYTES = 64 * 1024
_FAST_BODY_BRACKETS = 256
# A picture is cheap to decode (fast lane) when its file is this small, its header declares this few pixels
# and, for a JPEG, it has this few scans; others go to the heavy lane.
_FAST_IMAGE_BYTES = 64 * 1024
_FAST_IMAGE_PIXELS = 512 * 512
_FAST_JPEG_SCANS = 12
# A drawing of this many points is rendered in the fast lane (each point is a disc to draw).
_FAST_DRAWING_POINTS = 2000
_STROKES_KEY = b'"strokes"'


def check_json_counts(body: bytes, limits: Limits) -> None:
    """Refuse a JSON body that holds more arrays or values than any valid request can, from its raw bytes.

    A valid request's strings hold no brackets (base64, model names), so every ``[`` opens an array of
    the request: a drawing has one per stroke and point, plus one; 28 rows of pixels have 29. Values
    are separated by commas: two per point, one per stroke. Counting bytes with NumPy takes about a
    millisecond for the largest body, where building the lists of 240,000 one-point strokes took most
    of a second.

    Raises
    ------
    TooLargeError
        More arrays or values than ``limits`` allow (the message names the limits).
    """
    b = np.frombuffer(body, dtype=np.uint8)
    arrays = int(np.count_nonzero(b == ord("[")))
    most_arrays = 1 + limits.max_strokes + limits.max_stroke_points + 2 * 29  # strokes, or pixels and a mask
    if arrays > most_arrays:
        raise TooLargeError(f"the body holds {arrays} JSON arrays; a drawing has at most {limits.max_strokes} "
                            f"strokes and {limits.max_stroke_points} points in all (limits max_strokes, "
                            "max_stroke_points)")
    values = int(np.count_nonzero(b == ord(",")))
    most_values = 2 * limits.max_stroke_points + limits.max_strokes + 2 * 784 + 64
    if values > most_values:
        raise TooLargeError(f"the body holds about {values} JSON values; a request has at most {most_values} "
                            f"(a drawing of {limits.max_stroke_points} points, limit max_stroke_points)")


def image_bytes(text: str) -> bytes:
    """Bytes of an image given as base64 or as a ``data:`` URL.

    Raises
    ------
    UserError
        Not base64, or a data: URL that is not base64-encoded.
    """
    m = _DATA_URL.match(text[:256])
    if m:
        if "base64" not in m.group("params"):
            raise UserError("the image data: URL must be base64-encoded (data:image/png;base64,...)")
        text = text[m.end():]
    elif text.startswith("data:"):
        raise UserError("the image data: URL is malformed; expected data:image/png;base64,...")
    try:
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error:  # line breaks or spaces in the base64 text are allowed
            data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UserError("image must be base64 (or a data: URL); it is not valid base64") from None
    if not data:
        raise UserError("image is empty")
    return data


def open_picture(data: bytes | str, limits: Limits) -> Image.Image:
    """An image's header, from bytes or base64 / data: URL text, checked against ``limits`` (no pixels yet).

    Raises
    ------
    TooLargeError
        Too many pixels, a side too long, or a decompression bomb.
    UserError
        Not base64, not a picture.
    """
    return preprocess.open_image(image_bytes(data) if isinstance(data, str) else data, limits=limits)


def picture_to_input(img: Image.Image, limits: Limits) -> np.ndarray | None:
    """Decode the pixels of a picture opened by :func:`open_picture` and normalise them to MNIST style.

    Returns
    -------
    ndarray of float32, shape (784,), or None when the picture has no ink
    """
    try:
        x = np.asarray(preprocess.to_mnist(preprocess.load_pixels(img), limits=limits), dtype=np.float32)
    except NoInkError:
        return None
    x = x.reshape(784)
    return x if x.any() else None


def drawing_to_input(drawing: Drawing) -> np.ndarray | None:
    """Render checked strokes and normalise them to MNIST style; shape (784,) float32, or None when nothing is drawn."""
    try:
        x = np.asarray(preprocess.render_drawing(drawing), dtype=np.float32)
    except NoInkError:
        return None
    x = x.reshape(784)
    return x if x.any() else None


async def read_json(request: Request, state: AppState, model: type[M]) -> M:
    """The JSON body of ``request`` validated as ``model`` against the server's limits, parsed where its cost says.

    Raises
    ------
    HTTPException
        400 for an empty body, 415 for a content type other than JSON.
    TooLargeError
        More arrays or values than a request can hold (:func:`check_json_counts`).
    ValidationError
        The JSON does not match ``model`` (the error table answers 400, 413 or 422).
    """
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype not in ("application/json", "text/plain", ""):
        raise HTTPException(415, f"send JSON (application/json), not {ctype!r}")
    body = await request.body()
    if not body.strip():
        raise HTTPException(400, "the request body is empty; send a JSON object")
    limits = state.settings.limits
    if len(body) < _INLINE_BODY_BYTES and _STROKES_KEY not in body:
        return model.model_validate_json(body, context=validation_context(limits))
    if len(body) >= _FAST_BODY_BYTES:
        check_json_counts(body, limits)  # about 1 ms for 2 MB: refuse before anything is built
        return await state.on_heavy(_checked_parse, model, body, limits)
    return await state.on_cpu(_checked_parse, model, body, limits)


def _checked_parse(model: type[M], body: bytes, limits: Limits) -> M:
    check_json_counts(body, limits)
    return model.model_validate_json(body, context=validation_context(limits))


async def read_predict_request(request: Request, state: AppState) -> tuple[PredictRequest, bytes | None]:
    """The validated request and, for a multipart upload, the uploaded image's bytes.

    Raises
    ------
    HTTPException
        400 for a malformed or empty body, 415 for another content type.
    ValidationError
        The JSON does not match :class:`PredictRequest` (the error table answers 400, 413 or 422).
    UserError
        A multipart form with unknown or missing fields; too many arrays or values (413).
    """
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return await _read_multipart(request, state.settings.limits)
    if ctype not in ("application/json", "text/plain", ""):
        raise HTTPException(415, f"send JSON (application/json) or a multipart image upload, not {ctype!r}")
    return await read_json(request, state, PredictRequest), None


async def image_input(data: bytes | str, state: AppState) -> np.ndarray | None:
    """Decode and normalise an image in a worker thread: the fast lane when it is cheap, else the heavy lane.

    A picture is cheap when its bytes (or base64 text) are short and its header declares few pixels and,
    for a JPEG, few scans (a tiny file can declare a huge picture, or repeat one scan hundreds of times).
    The header is read once, in the fast lane; a picture it shows to be expensive moves to the heavy lane.
    """
    limits = state.settings.limits
    if len(data) > _FAST_IMAGE_BYTES:
        return await state.on_heavy(_open_and_normalise, data, limits)
    out = await state.on_cpu(_small_picture, data, limits)
    if isinstance(out, Image.Image):
        return await state.on_heavy(picture_to_input, out, limits)
    return out


def _open_and_normalise(data: bytes | str, limits: Limits) -> np.ndarray | None:
    return picture_to_input(open_picture(data, limits), limits)


def _small_picture(data: bytes | str, limits: Limits) -> np.ndarray | Image.Image | None:
    """The input of a picture whose header shows it cheap; else the opened picture, for the heavy lane."""
    raw = image_bytes(data) if isinstance(data, str) else data
    img = preprocess.open_image(raw, limits=limits)
    if img.width * img.height > _FAST_IMAGE_PIXELS or (
            img.format == "JPEG" and preprocess.jpeg_scans(raw) > _FAST_JPEG_SCANS):
        return img
    return picture_to_input(img, limits)


async def drawing_input(drawing: Drawing, state: AppState) -> np.ndarray | None:
    """Render checked strokes in a worker thread: the heavy lane for a drawing of many points."""
    points = sum(len(s) for s in drawing.strokes)
    if points > _FAST_DRAWING_POINTS:
        return await state.on_heavy(drawing_to_input, drawing)
    return await state.on_cpu(drawing_to_input, drawing)


async def _read_multipart(request: Request, limits: Limits) -> tuple[PredictRequest, bytes]:
    try:
        async with request.form(max_files=1, max_fields=8, max_part_size=limits.max_body_bytes) as form:
            req = _multipart_request(form, limits)
            upload = form.get("image")
            assert isinstance(upload, UploadFile)  # checked by _multipart_request
            data = await upload.read()
    except (UserError, ValidationError):
        raise
    except HTTPException as exc:
        if exc.status_code == 413:  # the body limit (BodyLimitMiddleware)
            raise
        raise HTTPException(400, f"malformed multipart body: {exc.detail}") from None
    except Exception as exc:
        raise HTTPException(400, f"malformed multipart body: {str(exc) or type(exc).__name__}") from None
    if not data:
        raise UserError("the uploaded image is empty")
    return req, data


def _multipart_request(form: FormData, limits: Limits) -> PredictRequest:
    unknown = sorted(set(form.keys()) - _FORM_FIELDS)
    if unknown:
        raise UserError(f"unknown form field {unknown[0]!r}; expected an 'image' file and optional 'model' and "
                        "'explain'")
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise UserError("multipart upload needs the picture in a file field named 'image'")
    fields: dict[str, object] = {"image": ""}  # the picture is the upload; "" stands for it
    if "model" in form:
        fields["model"] = str(form["model"])
    if "explain" in form:  # the values the OpenAPI document lists (EXPLAIN_FIELD)
        explain = str(form["explain"])
        if explain not in EXPLAIN_FIELD:
            raise UserError(f"explain: must be true, false or a digit 0-9, got {explain!r}")
        fields["explain"] = True if explain == "true" else False if explain == "false" else int(explain)
    return PredictRequest.model_validate(fields, context=validation_context(limits))
