"""Turn a request's input (image bytes, strokes) into the 784 pixels a model sees.

Blocking helpers, run by the routes in a worker thread, over
:mod:`digitlab.preprocess` (``decode_image``, ``to_mnist``, ``render_strokes``,
``NoInkError``). An empty picture or drawing gives ``None`` (the API's ``no_ink``).
"""

from __future__ import annotations

import base64
import binascii
import re

import numpy as np

from digitlab import preprocess
from digitlab.errors import UserError
from digitlab.preprocess import NoInkError, render_strokes

__all__ = ["image_bytes", "image_to_input", "normalised", "strokes_to_input"]


_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?),", re.S)


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


def image_to_input(data: bytes | str, max_side: int, max_pixels: int) -> np.ndarray | None:
    """Decode an image (bytes, or base64 / data: URL text) and normalise it to MNIST style.

    Returns
    -------
    ndarray of float32, shape (784,), or None when the picture has no ink
    """
    if isinstance(data, str):
        data = image_bytes(data)
    return normalised(preprocess.decode_image(data, max_side=max_side, max_pixels=max_pixels))


def strokes_to_input(strokes: list[np.ndarray], width: int, height: int, pen_width: float) -> np.ndarray | None:
    """Render strokes and normalise to MNIST style; shape (784,) float32, or None when nothing is drawn."""
    try:
        x = np.asarray(render_strokes([s.tolist() for s in strokes], width, height, pen_width), dtype=np.float32)
    except NoInkError:
        return None
    x = x.reshape(784)
    return x if x.any() else None


def normalised(img: Image.Image) -> np.ndarray | None:
    """The 784 MNIST-style pixels (float32) of a decoded picture, or None when it has no ink."""
    try:
        x = np.asarray(preprocess.to_mnist(img), dtype=np.float32).reshape(784)
    except NoInkError:
        return None
    return x if x.any() else None
