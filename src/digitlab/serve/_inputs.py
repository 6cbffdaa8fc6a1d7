"""Turn a request's input (image bytes, strokes) into the 784 pixels a model sees.

Blocking helpers, run by the routes in a worker thread. They use
:mod:`digitlab.preprocess` (``decode_image``, ``to_mnist``, ``render_strokes``,
``NoInkError``); while ``render_strokes``/``NoInkError`` are not in it yet, the
small stand-ins below are used.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from digitlab import preprocess
from digitlab.errors import UserError

__all__ = ["NoInkError", "TooLargeError", "image_bytes", "image_to_input", "render_strokes", "strokes_to_input"]


class TooLargeError(UserError):
    """An input is larger than the server accepts (HTTP 413)."""


if hasattr(preprocess, "NoInkError"):
    NoInkError: type[UserError] = preprocess.NoInkError
else:
    class NoInkError(UserError):  # type: ignore[no-redef]
        """The picture has no ink: nothing to classify."""


def _render_strokes_fallback(strokes: Sequence[Sequence[Sequence[float]]], width: int, height: int,
                             pen_width: float) -> np.ndarray:
    """Draw strokes white on black on a ``width`` x ``height`` canvas; uint8 array of shape (height, width)."""
    from PIL import ImageDraw

    img = Image.new("L", (int(width), int(height)), 0)
    draw = ImageDraw.Draw(img)
    w = max(1, int(round(pen_width)))
    r = pen_width / 2
    for stroke in strokes:
        pts = [(float(x), float(y)) for x, y in stroke]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=w, joint="curve")
        for x, y in pts:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(img, dtype=np.uint8)


render_strokes = getattr(preprocess, "render_strokes", _render_strokes_fallback)

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


def _check_size(data: bytes, max_side: int, max_pixels: int) -> None:
    """Refuse images whose header declares too many pixels, before decoding them."""
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


def image_to_input(data: bytes | str, max_side: int, max_pixels: int) -> np.ndarray | None:
    """Decode an image (bytes, or base64 / data: URL text) and normalise it to MNIST style.

    Returns
    -------
    ndarray of float32, shape (784,), or None when the picture has no ink
    """
    if isinstance(data, str):
        data = image_bytes(data)
    _check_size(data, max_side, max_pixels)
    return _normalised(preprocess.decode_image(data))


def strokes_to_input(strokes: list[np.ndarray], width: int, height: int, pen_width: float) -> np.ndarray | None:
    """Render strokes and normalise to MNIST style; shape (784,) float32, or None when nothing is drawn."""
    try:
        img = render_strokes([s.tolist() for s in strokes], width, height, pen_width)
    except NoInkError:
        return None
    return _normalised(img)


def _normalised(img: Any) -> np.ndarray | None:
    try:
        x = np.asarray(preprocess.to_mnist(img), dtype=np.float32).reshape(784)
    except NoInkError:
        return None
    return x if x.any() else None
