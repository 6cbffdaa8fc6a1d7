"""Turn a ``/v1/predict`` request (JSON or multipart) into the 784 pixels a model sees.

:func:`read_predict_request` reads and validates the body against the
server's :class:`~digitlab.limits.Limits`. The blocking helpers over
:mod:`digitlab.preprocess` come in one version each, which the route runs
on the event loop or in a worker thread: :func:`open_picture` (base64 and the
header), :func:`picture_to_input` (pixels and MNIST normalising) and
:func:`drawing_to_input`. An empty picture or drawing gives ``None`` (the
API's ``no_ink``).
"""

from __future__ import annotations

import base64
import binascii
import re

import numpy as np
from fastapi import Request
from PIL import Image
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from digitlab import preprocess
from digitlab.errors import NoInkError, UserError
from digitlab.limits import Limits
from digitlab.preprocess import Drawing
from digitlab.serve.schemas import PredictRequest, validation_context
from digitlab.serve.state import AppState

__all__ = ["drawing_to_input", "image_bytes", "open_picture", "picture_to_input", "read_predict_request"]

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?),", re.S)
_INLINE_PARSE_BYTES = 32 * 1024  # smaller JSON bodies (784 pixels are ~4 kB) are parsed on the event loop
_FORM_FIELDS = frozenset({"image", "file", "model", "explain"})


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


async def read_predict_request(request: Request, state: AppState) -> tuple[PredictRequest, bytes | None]:
    """The validated request and, for a multipart upload, the uploaded image's bytes.

    Raises
    ------
    HTTPException
        400 for a malformed or empty body, 415 for another content type.
    ValidationError
        The JSON does not match :class:`PredictRequest` (the error table answers 400, 413 or 422).
    UserError
        A multipart form with unknown or missing fields.
    """
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    context = validation_context(state.settings.limits)
    if ctype == "multipart/form-data":
        return await _read_multipart(request, state.settings.limits)
    if ctype not in ("application/json", "text/plain", ""):
        raise HTTPException(415, f"send JSON (application/json) or a multipart image upload, not {ctype!r}")
    body = await request.body()
    if not body.strip():
        raise HTTPException(400, "the request body is empty; send a JSON object with 'pixels', 'image' or "
                                 "'strokes'")
    if len(body) < _INLINE_PARSE_BYTES:
        return PredictRequest.model_validate_json(body, context=context), None
    # big bodies (images, long strokes) are parsed off the event loop so others are not held up
    return await state.on_cpu(_parse_json, body, context), None


def _parse_json(body: bytes, context: dict[str, Limits]) -> PredictRequest:
    return PredictRequest.model_validate_json(body, context=context)


async def _read_multipart(request: Request, limits: Limits) -> tuple[PredictRequest, bytes]:
    try:
        async with request.form(max_files=1, max_fields=8, max_part_size=limits.max_body_bytes) as form:
            req = _multipart_request(form, limits)
            upload = form.get("image") or form.get("file")
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
    upload = form.get("image") or form.get("file")
    if not isinstance(upload, UploadFile):
        raise UserError("multipart upload needs the picture in a file field named 'image'")
    fields: dict[str, object] = {"image": ""}  # the picture is the upload; "" stands for it
    if form.get("model"):
        fields["model"] = str(form["model"])
    explain = str(form.get("explain") or "").strip().lower()
    if explain in ("true", "yes", "on"):
        fields["explain"] = True
    elif explain.isdigit():
        fields["explain"] = int(explain)
    elif explain not in ("", "false", "no", "off"):
        raise UserError(f"explain: must be true, false or a digit 0-9, got {explain!r}")
    return PredictRequest.model_validate(fields, context=validation_context(limits))
