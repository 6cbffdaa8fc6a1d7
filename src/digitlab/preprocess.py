"""Turn any digit picture into a 28x28 MNIST-style image.

(First version: grey conversion, polarity detection and resize. The drawing
normalisation of issue 4 — crop to ink, 20 px box, centre of mass — replaces
the body of :func:`to_mnist` while keeping these signatures.)
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from digitlab.errors import UserError

__all__ = ["MAX_SIDE", "load_image", "decode_image", "to_mnist"]

MAX_SIDE = 4000


def _open(src: Image.Image) -> Image.Image:
    if max(src.size) > MAX_SIDE:
        raise UserError(f"image is {src.size[0]}x{src.size[1]}; the largest accepted side is {MAX_SIDE} px")
    return src


def decode_image(data: bytes) -> Image.Image:
    """Decode image bytes with Pillow, refusing undecodable, truncated and oversized images."""
    try:
        img = Image.open(io.BytesIO(data))
        _open(img)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UserError(f"cannot decode image: {exc}") from None
    return img


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file and return it as a 28x28 uint8 MNIST-style array."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    try:
        return to_mnist(decode_image(data))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def to_mnist(img: Image.Image | np.ndarray) -> np.ndarray:
    """Convert a picture to a 28x28 uint8 array, white ink on black.

    Parameters
    ----------
    img : PIL.Image or ndarray of shape (h, w) or (h, w, 3|4)

    Returns
    -------
    ndarray of uint8, shape (28, 28)
        A 28x28 grey picture that already is light-on-dark passes unchanged.
    """
    if isinstance(img, np.ndarray):
        img = Image.fromarray(np.asarray(img, dtype=np.uint8))
    img = _open(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3]
        if alpha.min() < 250:  # transparent background: the alpha channel is the ink
            grey = alpha
        else:
            grey = _polarity(np.asarray(img.convert("L"), dtype=np.float32))
    else:
        grey = _polarity(np.asarray(img.convert("L"), dtype=np.float32))
    out = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    if out.size != (28, 28):
        out = out.resize((28, 28), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.uint8)


def _polarity(grey: np.ndarray) -> np.ndarray:
    """Return ``grey`` as light ink on a dark background, inverting dark-on-light pictures."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 255.0 - grey if np.median(border) > 127 else grey
