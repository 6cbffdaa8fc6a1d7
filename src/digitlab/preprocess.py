"""Turn any digit picture, or the strokes of a canvas, into a 28x28 MNIST-style image.

MNIST digits were made by fitting each digit, keeping its aspect ratio, into a
20x20 box with antialiasing, then translating it so that its centre of mass is
at the centre of a 28x28 frame. Models trained on MNIST only recognise digits
prepared the same way, so :func:`to_mnist` repeats those steps on any input:

1. **Ink**: the picture becomes light ink on a dark background. The alpha
   channel is the ink when the background is transparent; otherwise the
   polarity is detected from the border (dark-on-light pictures are
   inverted), the background level is subtracted and the contrast stretched.
2. **Crop** to the bounding box of the ink.
3. **Stroke width**: at a working resolution (longer side 80 px, four times
   MNIST's 20 px box) the mean stroke width is estimated as ``2 * area /
   perimeter`` of the ink; strokes thinner than nearly all of MNIST's (a 1-px
   pen) are binarised and dilated to full-intensity strokes, strokes thicker
   than MNIST's thick ones (90th percentile) are eroded to its median. Canvas strokes
   (:func:`render_strokes`) are instead drawn with a pen of MNIST's width.
4. **Scale** the longer side to 20 px with antialiasing (box filter).
5. **Centre**: paste into 28x28 so that the centre of mass lands on pixel
   (14, 14), as in MNIST; the shift is clipped so the digit stays in frame.

Empty or nearly empty pictures (no contrast, a few specks, a single dot)
raise :class:`NoInkError` instead of giving a guess. Only a 28x28
single-channel picture that already is MNIST-style (:func:`mnist_ready`:
light-on-dark, its ink in a 20x20 box, centred by mass) is returned unchanged,
unless ``force=True``; any other picture is normalised, whatever its size and mode.

:func:`render_strokes` draws a list of strokes (as a drawing canvas records
them) with round caps and joins, antialiased, and normalises the result:
:func:`check_drawing` validates the strokes and the canvas into a
:class:`Drawing`, :func:`render_drawing` draws one. Callers that validate
first (the server's request schema) hand the :class:`Drawing` on, so strokes
are checked and converted to arrays once.

Every size bound (picture sides and pixels, file bytes, canvas sides, strokes,
points, pen width) comes from a :class:`~digitlab.limits.Limits`, by default
:data:`~digitlab.limits.DEFAULT_LIMITS`: the server passes its own.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image, ImageDraw, UnidentifiedImageError

from digitlab.errors import NoInkError, TooLargeError, UserError
from digitlab.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "Drawing",
    "NoInkError",
    "TooLargeError",
    "check_drawing",
    "decode_image",
    "default_pen_width",
    "jpeg_scans",
    "load_image",
    "load_pixels",
    "mnist_ready",
    "open_image",
    "read_image_file",
    "render_drawing",
    "render_strokes",
    "stroke_width",
    "to_mnist",
]

#: Image formats :func:`decode_image` accepts (no EPS/PDF, which would run external programs).
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")

_BOX = 20          # MNIST's size-normalisation box
_FRAME = 28        # MNIST's frame
_CENTRE = 14.0     # centre of mass of MNIST digits (row, column), measured: 13.99, 14.00
_WORK = 80         # working resolution of the longer side: 4 x _BOX
# Stroke width of MNIST digits at the working resolution (2*area/perimeter of the
# ink > 0.5, digits upsampled from their 20 px box), measured on 10,000 training
# digits: 10th percentile, median, 90th percentile.
_MNIST_WIDTH = (5.7, 7.9, 11.1)
# Stroke-width step (working resolution). Thinner than _THIN_BELOW (MNIST's 1st percentile is 4.1; a
# 1-px pen measures 0.5-1): binarise and dilate to _THIN_TARGET, more than MNIST's median, because a
# 1-px skeleton has lost the shape of the stroke (logistic regression on 1-px re-drawn MNIST digits: 82 %
# dilating to the median, 85 % to 10). Thicker than _THICK_ABOVE (MNIST's 90th percentile): erode to
# MNIST's median. Chosen on 600 re-drawn MNIST test digits and the scikit-learn 8x8 digits against
# logistic regression (benchmarks/bench_preprocess.py); eroding to 6 or only above 14 did worse there.
_THIN_BELOW = 3.0
_THIN_TARGET = 10.0
_THICK_ABOVE = _MNIST_WIDTH[2]
_THICK_TARGET = _MNIST_WIDTH[1]
_INK_LEVEL = 0.5   # a working-resolution pixel is "ink" above this fraction of the peak
_MIN_CONTRAST = 40.0  # grey levels (0-255) between background and ink below which there is no ink


# --------------------------------------------------------------------------- reading


def open_image(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Image.Image:
    """Read a picture's header (no pixels yet) and refuse it cheaply when it is too large.

    Only common raster formats (:data:`FORMATS`) are opened. :func:`load_pixels`
    then decodes the pixels; :func:`decode_image` does both.

    Parameters
    ----------
    data : bytes
    limits : Limits, default=DEFAULT_LIMITS
        ``max_image_side``, ``max_image_pixels`` (width x height) and
        ``min_image_side`` apply.

    Raises
    ------
    TooLargeError
        A side or the pixel count over the limit, or a decompression bomb.
    UserError
        Not a picture in an accepted format, or a longer side under ``limits.min_image_side``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLargeError(f"image refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise UserError("cannot decode image: it is not a PNG, JPEG, BMP, GIF, TIFF, WebP or PPM picture") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"cannot decode image: {exc}") from None
    w, h = img.size
    _check_size(img.size, limits)
    if w * h > limits.max_image_pixels:
        raise TooLargeError(f"image is {w}x{h} = {w * h} pixels; at most {limits.max_image_pixels} are accepted")
    if img.format == "JPEG":
        scans = jpeg_scans(data)
        if scans > limits.max_jpeg_scans:
            raise TooLargeError(f"JPEG has {scans} scans; at most {limits.max_jpeg_scans} are accepted (each scan "
                                "is decoded over the whole picture)")
    return img


def jpeg_scans(data: bytes) -> int:
    """Number of scans (start-of-scan markers) in JPEG bytes: an upper bound, counted without decoding.

    Inside a scan's entropy-coded data a 0xFF byte is always followed by 0x00 or a restart
    marker, so ``FF DA`` occurs only as a real marker (or in an embedded thumbnail).
    """
    return data.count(b"\xff\xda")


def load_pixels(img: Image.Image) -> Image.Image:
    """Decode the pixels of a picture opened by :func:`open_image`; returns ``img``.

    Raises
    ------
    UserError
        Corrupt or truncated picture.
    """
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"cannot decode image: {exc}") from None
    return img


def decode_image(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Image.Image:
    """Decode image bytes with Pillow: :func:`open_image`, then :func:`load_pixels`.

    The size is checked from the header before the pixels are decoded, so
    oversized pictures and decompression bombs are refused cheaply.

    Raises
    ------
    TooLargeError
        Oversized picture or decompression bomb.
    UserError
        Undecodable or truncated image.
    """
    return load_pixels(open_image(data, limits=limits))


def read_image_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The bytes of a picture file, refused before reading when larger than ``limits.max_file_bytes``.

    Raises
    ------
    TooLargeError
        The file is too large.
    UserError
        It cannot be read (the message starts with the path).
    """
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise TooLargeError(f"{path}: file is {size} bytes; at most {limits.max_file_bytes} are read")
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read file: {exc.strerror or exc}") from None


def load_image(path: str | os.PathLike[str], *, force: bool = False, limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """Read an image file and return it as a 28x28 uint8 MNIST-style array.

    Parameters
    ----------
    path : path of a PNG, JPEG, BMP, GIF, TIFF, WebP or PPM/PGM file
    force : bool, default=False
        Normalise even a 28x28 picture that already looks like MNIST.
    limits : Limits, default=DEFAULT_LIMITS
        ``max_file_bytes`` and the picture limits apply.

    Returns
    -------
    ndarray of uint8, shape (28, 28)

    Raises
    ------
    UserError
        Unreadable, undecodable or oversized file (the message starts with the path).
    NoInkError
        The picture holds no digit.
    """
    path = Path(path)
    data = read_image_file(path, limits)
    try:
        return to_mnist(decode_image(data, limits=limits), force=force, limits=limits)
    except UserError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def _check_size(size: tuple[int, int], limits: Limits) -> None:
    w, h = size
    if max(w, h) > limits.max_image_side:
        raise TooLargeError(f"image is {w}x{h} px; the largest accepted side is {limits.max_image_side} px")
    if max(w, h) < limits.min_image_side or min(w, h) < 1:
        raise UserError(f"image is {w}x{h} px; the longer side must be at least {limits.min_image_side} px")


def _pil_ink(img: Image.Image) -> tuple[np.ndarray, bool]:
    """Ink of a PIL picture as uint8 (h, w) and whether it was an alpha channel."""
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        if mode in ("RGBa", "La"):  # premultiplied alpha
            img = img.convert("RGBA")
        alpha = np.asarray(img.getchannel("A"))  # (Pillow's PA -> RGBA conversion drops the A band)
        if _border_median(alpha) < 128:
            return alpha, True
        grey = np.asarray(img.convert("RGB").convert("L"), dtype=np.float32)
        return _over_white(grey, alpha), False
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise UserError("image holds non-finite values")
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
        if mode == "F" and lo >= 0 and hi <= 1.0:
            top = 1.0  # floating-point pictures on 0-1, as scientific software writes them
        else:
            top = 255.0 if hi <= 255 else 65535.0
        return _to_uint8(arr * (255.0 / top)), False
    if mode == "L":
        return np.asarray(img), False
    if mode == "LAB":  # CIELAB: the L band is the lightness, on 0-255
        return np.asarray(img.getchannel("L")), False
    try:
        converted = img.convert("L")
    except (ValueError, OSError) as exc:
        raise UserError(f"cannot read a picture in colour mode {mode!r} ({exc}); save it as RGB or greyscale") \
            from None
    return np.asarray(converted), False


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Grey levels on 0-255 (any real dtype) rounded to uint8."""
    if a.dtype == np.uint8:
        return a
    out: np.ndarray = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return out


def _alpha_or_grey(rgb: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, bool]:
    """Alpha is the ink when the border is transparent; otherwise composite over white."""
    if _border_median(alpha) < 128:
        return _to_uint8(alpha), True
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32) if rgb.ndim == 3 else rgb
    return _over_white(grey, alpha), False


def _over_white(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Grey levels (uint8) of ``grey`` (0-255) composited over white paper with ``alpha`` (0-255)."""
    a = alpha.astype(np.float32) * np.float32(1 / 255)
    return _to_uint8(grey * a + np.float32(255.0) * (np.float32(1.0) - a))


def _array_ink(arr: np.ndarray, limits: Limits) -> tuple[np.ndarray, bool]:
    """Ink of an array picture (h, w), (h, w, 1), (h, w, 3) or (h, w, 4) as uint8 (h, w)."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise UserError(f"image array must have shape (h, w), (h, w, 3) or (h, w, 4), got {arr.shape}")
    _check_size((arr.shape[1], arr.shape[0]), limits)
    if arr.dtype == bool:
        arr = arr.astype(np.float32) * 255.0
    elif not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise UserError(f"image array must hold numbers, got dtype {arr.dtype}")
    a = arr.astype(np.float32)
    if not np.isfinite(a).all():
        raise UserError("image array holds non-finite values (NaN or infinity)")
    if np.issubdtype(arr.dtype, np.floating) and a.max(initial=0) <= 1.0 and a.min(initial=0) >= 0.0:
        a = a * 255.0  # floats in [0, 1]
    if a.min(initial=0) < 0 or a.max(initial=0) > 255:
        raise UserError(f"image values must lie in 0-255 (or 0-1 for floats), got {a.min():g} to {a.max():g}")
    if a.ndim == 2:
        return _to_uint8(a), False
    if a.shape[2] == 4:
        return _alpha_or_grey(a[..., :3], a[..., 3])
    return _to_uint8(a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)), False


def _border(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def _border_median(a: np.ndarray) -> float:
    """Median of the picture's border pixels: ``np.median``'s value, a fifth of its time (one partition)."""
    b = _border(a)
    k = len(b) // 2
    if len(b) % 2:
        return float(np.partition(b, k)[k])
    part = np.partition(b, [k - 1, k])
    return (float(part[k - 1]) + float(part[k])) / 2


_LEVELS = np.arange(256, dtype=np.int16)
_IDENTITY = _LEVELS.astype(np.uint8)


def _light_on_dark(grey: np.ndarray) -> np.ndarray:
    """Grey level -> ink, shape (256,) uint8: inverts light pictures and subtracts the background level.

    Ink is light on a zero background; the background level is the median of
    the picture's border.
    """
    bg = round(_border_median(grey))
    return np.clip(bg - _LEVELS if bg > 127 else _LEVELS - bg, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- normalising


def to_mnist(img: Image.Image | np.ndarray, *, force: bool = False, strokes: bool = True,
             limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """Normalise a digit picture as MNIST was made.

    Parameters
    ----------
    img : PIL.Image (any mode) or ndarray of shape (h, w), (h, w, 1), (h, w, 3) or (h, w, 4)
        Dark-on-light or light-on-dark (detected from the border), or with a
        transparent background (the alpha channel is the ink). Integer arrays
        are on the 0-255 scale, float arrays on 0-255 or 0-1. The longer side
        must lie in ``limits.min_image_side..limits.max_image_side``.
    force : bool, default=False
        Normalise even a 28x28 single-channel picture that is already
        MNIST-style (:func:`mnist_ready`), which is otherwise returned unchanged.
    strokes : bool, default=True
        Bring the stroke width towards MNIST's (dilate thin, erode thick strokes).
    limits : Limits, default=DEFAULT_LIMITS
        Bounds of the picture's sides.

    Returns
    -------
    ndarray of uint8, shape (28, 28)
        White ink on black, the digit in a 20x20 box, centre of mass at (14, 14).

    Raises
    ------
    UserError
        Wrong shape, type, values or size.
    NoInkError
        Empty or nearly empty picture.
    """
    if isinstance(img, Image.Image):
        _check_size(img.size, limits)
        single = img.mode in ("L", "1", "I", "I;16", "F")
        ink, alpha = _pil_ink(img)
    elif isinstance(img, np.ndarray):
        single = img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1)
        ink, alpha = _array_ink(img, limits)
    else:
        raise UserError(f"expected a PIL image or a NumPy array, got {type(img).__name__}")
    if not alpha:
        if single and ink.shape == (_FRAME, _FRAME) and not force and _mnist_ready(ink):
            return ink
        return _normalise(ink, _light_on_dark(ink), strokes=strokes)
    return _normalise(ink, strokes=strokes)


def mnist_ready(img: np.ndarray) -> bool:
    """Whether a 28x28 picture already is MNIST-style, so that normalising it again would only blur it.

    It must be white ink on black (a dark border), its ink inside a 20x20 box,
    and its centre of mass within a pixel of (14, 14). Any other picture, of
    whatever size or mode, is normalised: a user's own 28x28 drawing of dark
    ink on white, or a digit filling the frame or off centre, is not trusted.
    """
    a = np.asarray(img)
    return a.shape == (_FRAME, _FRAME) and _mnist_ready(a)


def _mnist_ready(ink: np.ndarray) -> bool:
    if _border_median(ink) > 127.5:
        return False
    a = ink.astype(np.float64)
    peak = float(a.max(initial=0.0))
    if peak <= 0:
        return False
    on = a >= 0.2 * peak
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    if rows[-1] - rows[0] + 1 > _BOX or cols[-1] - cols[0] + 1 > _BOX:
        return False
    mass = float(a.sum())
    r = float(a.sum(axis=1) @ np.arange(_FRAME)) / mass
    c = float(a.sum(axis=0) @ np.arange(_FRAME)) / mass
    return abs(r - _CENTRE) <= 1.0 and abs(c - _CENTRE) <= 1.0


def _normalise(grey: np.ndarray, ink: np.ndarray = _IDENTITY, *, strokes: bool = True) -> np.ndarray:
    """Crop, stroke-normalise, scale and centre a digit into 28x28 uint8.

    ``grey`` (h, w) uint8 is the picture and ``ink`` (256,) uint8 maps its
    levels, monotonically, to light-on-zero ink. Full-size arrays only see a
    min, a max and a range test; the mapping is applied to the crop.
    """
    peak = int(max(ink[grey.min(initial=255)], ink[grey.max(initial=0)]))  # ink is monotonic in the level
    if peak < _MIN_CONTRAST:
        raise NoInkError(f"no ink: the picture has no contrast (darkest to lightest differ by {peak} of 255 "
                         f"levels, at least {_MIN_CONTRAST:.0f} needed)")
    keep = ink >= 0.2 * peak  # (256,) fainter pixels are noise or paper texture; kept levels are a range
    lo, hi = int(np.argmax(keep)), 255 - int(np.argmax(keep[::-1]))
    mask = grey <= hi if lo == 0 else grey >= lo if hi == 255 else (grey >= lo) & (grey <= hi)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    # level -> ink stretched to 0-255, below the floor zeroed; applied to the crop: (h, w) uint8
    stretch = np.where(keep, np.minimum(np.rint(ink * (255.0 / peak)), 255), 0).astype(np.uint8)
    crop = np.take(stretch, grey[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])  # (faster than stretch[...])
    h, w = crop.shape
    if max(h, w) < 3 or int(crop.sum(dtype=np.int64)) < 3 * 255:
        raise NoInkError(f"no ink: only a speck ({w}x{h} px) is drawn")
    work = _to_working(crop)
    wh, ww = work.shape
    width = stroke_width(work)
    if width == 0:  # a faint hairline (thinner than a working pixel): measure it at a lower level
        width = stroke_width(work, level=0.3 * float(work.max(initial=0.0)))
    if width == 0 or _WORK / width < 2.0:
        raise NoInkError(f"no ink: only a dot is drawn (ink {w}x{h} px, about as wide as the stroke)")
    if strokes:
        work = _adjust_strokes(work, width)
    # 20 px box, antialiased
    bh, bw = max(1, round(wh * _BOX / _WORK)), max(1, round(ww * _BOX / _WORK))
    box = np.asarray(Image.fromarray(work, mode="F").resize((bw, bh), Image.Resampling.BOX), dtype=np.float32)
    box = np.clip(box, 0.0, 1.0)
    mass = float(box.sum())
    if mass <= 0:
        raise NoInkError("no ink: the picture is empty")
    r = float(box.sum(axis=1) @ np.arange(bh)) / mass
    c = float(box.sum(axis=0) @ np.arange(bw)) / mass
    top_row = min(max(round(_CENTRE - r), 0), _FRAME - bh)
    left = min(max(round(_CENTRE - c), 0), _FRAME - bw)
    out = np.zeros((_FRAME, _FRAME), dtype=np.float32)
    out[top_row:top_row + bh, left:left + bw] = box
    digit: np.ndarray = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    return digit


def _to_working(crop: np.ndarray) -> np.ndarray:
    """Resize a crop (uint8) so that its longer side is ``_WORK`` px, keeping thin strokes visible.

    Shrinking a picture whose strokes would end up thinner than 2 working
    pixels first max-pools it by an integer factor, so a 1-px line in a large
    picture stays a full-intensity line instead of fading to grey.

    Returns
    -------
    ndarray of float32, shape about (_WORK, _WORK * w / h)
        Ink on a 0-1 scale.
    """
    h, w = crop.shape
    scale = _WORK / max(h, w)
    if scale < 0.5 and stroke_width(crop, level=127) * scale < 2.0:
        f = int(1.0 / scale)
        ph, pw = -h % f, -w % f
        if ph or pw:
            crop = np.pad(crop, ((0, ph), (0, pw)))
        crop = crop.reshape(crop.shape[0] // f, f, crop.shape[1] // f, f).max(axis=(1, 3))
        h, w = crop.shape
        scale = _WORK / max(h, w)
    wh, ww = max(1, round(h * scale)), max(1, round(w * scale))
    if scale > 1:  # upscaling interpolates: keep the fractions (a 28 px digit becomes 80 px)
        small = Image.fromarray(crop.astype(np.float32), mode="F").resize((ww, wh), Image.Resampling.BILINEAR)
    else:
        small = Image.fromarray(np.ascontiguousarray(crop)).resize((ww, wh), Image.Resampling.BOX)  # 8-bit, in C
    return np.asarray(small, dtype=np.float32) * np.float32(1 / 255)


def stroke_width(ink: np.ndarray, level: float = _INK_LEVEL) -> float:
    """Mean stroke width of binarised ink, estimated as ``2 * area / perimeter``.

    For a stroke of width ``w`` and length ``l`` the area is ``w*l`` and the
    perimeter about ``2*l``. The perimeter counts pixel edges between ink and
    background (4-connectivity).

    Parameters
    ----------
    ink : ndarray of float, shape (h, w)
        Ink on a 0-1 scale.
    level : float
        Ink threshold.

    Returns
    -------
    float
        Width in pixels; 0.0 when there is no ink above ``level``.
    """
    b = ink > level
    area = int(np.count_nonzero(b))
    if area == 0:
        return 0.0
    inner = np.count_nonzero(b[1:] != b[:-1]) + np.count_nonzero(b[:, 1:] != b[:, :-1])
    edges = np.count_nonzero(b[0]) + np.count_nonzero(b[-1]) + np.count_nonzero(b[:, 0]) + np.count_nonzero(b[:, -1])
    return 2.0 * area / int(inner + edges)


def _disk(radius: float) -> np.ndarray:
    n = math.floor(radius)
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    disk: np.ndarray = (xx * xx + yy * yy) <= radius * radius + 1e-6
    return disk


def _adjust_strokes(work: np.ndarray, width: float) -> np.ndarray:
    """Thicken strokes thinner than nearly all of MNIST's, erode those thicker than its thick ones.

    Thin strokes are faint after antialiasing (a 1-px line covers part of
    each pixel), so they are binarised at 0.3 of the peak and dilated to
    ``_THIN_TARGET``: full-intensity strokes. Strokes thicker than MNIST's
    90th percentile are eroded (grey levels) to its median, unless that
    would erase most of the digit.
    """
    from scipy import ndimage as ndi  # here: importing it costs a prediction more than the rest of its work

    if width < _THIN_BELOW:
        mask = work > 0.3 * float(work.max(initial=0.0))
        radius = (_THIN_TARGET - stroke_width(mask.astype(np.float32))) / 2.0
        if radius >= 0.5:
            dilated: np.ndarray = ndi.binary_dilation(mask, structure=_disk(radius)).astype(np.float32)
            return dilated
    elif width > _THICK_ABOVE:
        radius = (width - _THICK_TARGET) / 2.0
        if radius >= 0.5:
            eroded: np.ndarray = ndi.grey_erosion(work, footprint=_disk(radius))
            # never erase a part of the digit: keep the core of strokes erosion would remove
            if float((eroded > _INK_LEVEL).sum()) >= 0.25 * float((work > _INK_LEVEL).sum()):
                return eroded
    return work


# --------------------------------------------------------------------------- strokes


@dataclass(frozen=True, eq=False)
class Drawing:
    """Strokes on a canvas, checked against a :class:`~digitlab.limits.Limits` by :func:`check_drawing`.

    Attributes
    ----------
    strokes : tuple of ndarray of float64, each of shape (n_points, 2)
        Finite canvas coordinates (x, y) in pixels, origin at the top left;
        empty strokes are dropped.
    width, height : float
        Canvas size in pixels.
    pen_width : float
        Pen diameter in canvas pixels.
    """

    strokes: tuple[np.ndarray, ...]
    width: float
    height: float
    pen_width: float


def default_pen_width(width: float, height: float, limits: Limits = DEFAULT_LIMITS) -> float:
    """The pen used when none is given: 1/14 of the canvas's longer side (at most ``limits.max_pen_width``)."""
    return min(max(float(width), float(height)) / 14, float(limits.max_pen_width))


def check_drawing(strokes: Sequence[ArrayLike], width: float, height: float, pen_width: float | None = None, *,
                  limits: Limits = DEFAULT_LIMITS) -> Drawing:
    """Validate canvas strokes and the canvas: the one rule for the library, the CLI and the server.

    Parameters
    ----------
    strokes : list of strokes, each a list (or array) of (x, y) points
    width, height : float
        Canvas size in pixels, ``limits.min_canvas_side..limits.max_canvas_side``.
    pen_width : float, optional
        Pen diameter in canvas pixels, > 0 and at most the canvas's longer side
        and ``limits.max_pen_width``; default :func:`default_pen_width`.
    limits : Limits, default=DEFAULT_LIMITS

    Returns
    -------
    Drawing

    Raises
    ------
    TooLargeError
        More than ``limits.max_strokes`` strokes or ``limits.max_stroke_points``
        points, or a canvas side over ``limits.max_canvas_side``.
    UserError
        Malformed strokes, non-finite numbers, bad sizes or pen width.
    """
    cw, ch = _canvas_side("width", width, limits), _canvas_side("height", height, limits)
    if pen_width is None:
        pen = default_pen_width(cw, ch, limits)
    else:
        pen = _number("pen_width", pen_width)
        widest = min(max(cw, ch), float(limits.max_pen_width))
        if not 0 < pen <= widest:
            raise UserError(f"pen_width must be > 0 and at most {widest:g} px (the canvas's longer side, and "
                            f"at most {limits.max_pen_width:g}), got {pen:g}")
    return Drawing(tuple(_check_strokes(strokes, limits)), cw, ch, pen)


def render_strokes(strokes: Sequence[ArrayLike], width: float, height: float, pen_width: float | None = None, *,
                   limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """Render canvas strokes with antialiasing and normalise them as MNIST.

    :func:`check_drawing` then :func:`render_drawing`.

    Parameters
    ----------
    strokes : list of strokes, each a list (or array) of (x, y) points
        Canvas coordinates in pixels, origin at the top left. A stroke of one
        point is a dot. Parts outside the canvas are cut off, as on the canvas.
    width, height : float
        Canvas size in pixels, ``limits.min_canvas_side..limits.max_canvas_side``.
    pen_width : float, optional
        Pen diameter in canvas pixels, > 0 and at most the canvas's longer side
        and ``limits.max_pen_width``; default :func:`default_pen_width`.
    limits : Limits, default=DEFAULT_LIMITS

    Returns
    -------
    ndarray of uint8, shape (28, 28)

    Raises
    ------
    UserError
        Malformed strokes, non-finite numbers, too many strokes or points
        (:class:`TooLargeError`), bad sizes.
    NoInkError
        No strokes, or only a dot.
    """
    return render_drawing(check_drawing(strokes, width, height, pen_width, limits=limits))


def render_drawing(drawing: Drawing) -> np.ndarray:
    """Render a checked :class:`Drawing` with antialiasing and normalise it as MNIST.

    Returns
    -------
    ndarray of uint8, shape (28, 28)

    Raises
    ------
    NoInkError
        No strokes, strokes only outside the canvas, or only a dot.
    """
    pts = drawing.strokes
    cw, ch, pen = drawing.width, drawing.height, drawing.pen_width
    if not pts:
        raise NoInkError("no ink: the canvas has no strokes")
    # What lies outside the canvas is cut off, as on the canvas: the drawn region is the box of the
    # points, clipped to the canvas, plus the pen's margin.
    allp = np.concatenate(pts)
    x0, y0 = max(float(allp[:, 0].min()), 0.0), max(float(allp[:, 1].min()), 0.0)
    x1, y1 = min(float(allp[:, 0].max()), cw), min(float(allp[:, 1].max()), ch)
    if x1 < x0 or y1 < y0:
        raise NoInkError("no ink: every stroke lies outside the canvas")
    extent = max(x1 - x0, y1 - y0)
    if extent < pen:
        raise NoInkError(f"no ink: only a dot is drawn (the strokes span {extent:g} px, less than the "
                         f"{pen:g} px pen)")
    # Pen width at the working resolution (longer side of the ink _WORK px), brought into MNIST's range:
    # drawing with the normalised pen is exact, where dilating or eroding a rendered picture is not.
    lo, mid, hi = _MNIST_WIDTH
    work_pen = pen * _WORK / (extent + pen)
    if not lo <= work_pen <= hi:
        work_pen = mid
    ss = 4  # supersampling for antialiasing
    k = ss * (_WORK - work_pen) / extent      # canvas px -> supersampled px
    pr = ss * work_pen / 2.0                  # pen radius, supersampled px
    ox, oy = x0 - pr / k, y0 - pr / k
    W = H = ss * (_WORK + 1)
    canvas = Image.new("L", (W, H), 0)
    draw = ImageDraw.Draw(canvas)
    lw = max(1, round(2 * pr))
    for p in pts:
        points = ((p - (ox, oy)) * k).tolist()
        if len(points) > 1:
            draw.line([(a, b) for a, b in points], fill=255, width=lw)
        for a, b in points:  # round caps and joins
            draw.ellipse((a - pr, b - pr, a + pr, b + pr), fill=255)
    img = canvas.reduce(ss)
    return _normalise(np.asarray(img), strokes=False)


def _number(name: str, value: float) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(f):
        raise UserError(f"{name} must be finite, got {value!r}")
    return f


def _canvas_side(name: str, value: float, limits: Limits) -> float:
    v = _number(name, value)
    if v > limits.max_canvas_side:
        raise TooLargeError(f"canvas {name} must lie in {limits.min_canvas_side}..{limits.max_canvas_side} px, "
                            f"got {v:g}")
    if not v >= limits.min_canvas_side:
        raise UserError(f"canvas {name} must lie in {limits.min_canvas_side}..{limits.max_canvas_side} px, got {v:g}")
    return v


def _check_strokes(strokes: Sequence[ArrayLike], limits: Limits) -> list[np.ndarray]:
    """Each non-empty stroke as a finite (n, 2) float64 array; arrays of that shape are not copied."""
    if isinstance(strokes, (str, bytes)) or not isinstance(strokes, Sequence | np.ndarray):
        raise UserError(f"strokes must be a list of strokes, got {type(strokes).__name__}")
    if len(strokes) > limits.max_strokes:
        raise TooLargeError(f"at most {limits.max_strokes} strokes are accepted, got {len(strokes)}")
    out: list[np.ndarray] = []
    total = 0
    far = 100 * limits.max_canvas_side
    for i, s in enumerate(strokes):
        try:
            a = np.asarray(s)
        except (TypeError, ValueError):
            raise UserError(f"stroke {i} must be a list of (x, y) number pairs") from None
        if a.size == 0:
            continue
        if a.dtype.kind not in "iuf":
            raise UserError(f"stroke {i} must be a list of (x, y) number pairs")
        if a.ndim != 2 or a.shape[1] != 2:
            raise UserError(f"stroke {i} must be a list of (x, y) points, got an array of shape {a.shape}")
        total += len(a)
        if total > limits.max_stroke_points:
            raise TooLargeError(f"at most {limits.max_stroke_points} points are accepted over all strokes, got more")
        a = a.astype(np.float64, copy=False)
        if not np.isfinite(a).all():
            raise UserError(f"stroke {i} holds a non-finite coordinate (NaN or infinity)")
        if np.abs(a).max() > far:
            raise UserError(f"stroke {i} has a coordinate far outside the canvas ({np.abs(a).max():g})")
        out.append(a)
    return out
