"""Turn a request's input (image bytes, strokes) into the 784 pixels a model sees.

Blocking helpers, run by the routes in a worker thread, over
:mod:`digitlab.preprocess` (``decode_image``, ``to_mnist``, ``render_strokes``,
``NoInkError``). An empty picture or drawing gives ``None`` (the API's ``no_ink``).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from digitlab import preprocess
from digitlab.errors import UserError
from digitlab.preprocess import NoInkError, render_strokes

__all__ = ["TooLargeError", "check_image", "image_bytes", "image_to_input", "normalised", "strokes_to_input"]


class TooLargeError(UserError):
    """An input is larger than the server accepts (HTTP 413)."""


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
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UserError("image must be base64 (or a data: URL); it is not valid base64") from None
    if not data:
        raise UserError("image is empty")
    return data


def check_image(data: bytes, max_side: int, max_pixels: int) -> int:
    """Read an image's header only: refuse too many pixels before decoding; return its pixel count.

    Raises
    ------
    TooLargeError
        Oversized picture or decompression bomb (HTTP 413).
    UserError
        Not a picture.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLargeError(f"image refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise UserError("cannot decode image: it is not a PNG, JPEG, BMP or GIF picture") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"cannot decode image: {exc}") from None
    w, h = img.size
    if max(w, h) > max_side:
        raise TooLargeError(f"image is {w}x{h}; the largest accepted side is {max_side} px")
    if w * h > max_pixels:
        raise TooLargeError(f"image is {w}x{h} = {w * h} pixels; at most {max_pixels} are accepted")
    return int(w * h)


def image_to_input(data: bytes | str, max_side: int, max_pixels: int) -> np.ndarray | None:
    """Decode an image (bytes, or base64 / data: URL text) and normalise it to MNIST style.

    Returns
    -------
    ndarray of float32, shape (784,), or None when the picture has no ink
    """
    if isinstance(data, str):
        data = image_bytes(data)
    check_image(data, max_side, max_pixels)
    return normalised(preprocess.decode_image(data))


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
