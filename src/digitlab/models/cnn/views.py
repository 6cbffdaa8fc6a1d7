"""Views of MNIST digits for training on drawings: stroke-style redraws and tiny pictures.

Stroke-style augmentation of MNIST: each digit thinned to its skeleton and drawn again with a
constant-width pen, as a canvas draws (no pressure, round caps).

MNIST's strokes were written with pens on paper, scanned and antialiased:
their width varies along a stroke and from digit to digit. A drawing on the
page is a constant-width line. :func:`redraw_constant_pen` takes an MNIST
digit to that style:

1. upsample the 28x28 digit 4x (bilinear) and binarise it at half its peak;
2. thin it to a 1-px skeleton (Zhang-Suen, vectorised NumPy);
3. draw the skeleton again with a disk of the pen's radius (a Euclidean
   distance transform), antialiased by averaging 4x4 blocks back to 28x28;
4. normalise the result as any picture (``preprocess.to_mnist`` with
   ``force=True``): crop, 20 px box, centre of mass at (14, 14).

The variants are precomputed (:func:`stroke_variants`: about 2 ms a digit)
and mixed into the training set; they are not made per batch.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from digitlab.preprocess import NoInkError, to_mnist

__all__ = ["lowres_variants", "lowres_view", "redraw_constant_pen", "stroke_variants", "thin"]

_UP = 4


def thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean picture to 1-px wide strokes (vectorised NumPy)."""
    b = np.pad(binary.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p2, p3, p4 = b[:-2, 1:-1], b[:-2, 2:], b[1:-1, 2:]
            p5, p6, p7 = b[2:, 2:], b[2:, 1:-1], b[2:, :-2]
            p8, p9 = b[1:-1, :-2], b[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            n = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
            a = sum(((ring[i] == 0) & (ring[i + 1] == 1)).astype(np.uint8) for i in range(8))
            if step == 0:
                c = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                c = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            kill = (b[1:-1, 1:-1] == 1) & (n >= 2) & (n <= 6) & (a == 1) & c
            if kill.any():
                b[1:-1, 1:-1][kill] = 0
                changed = True
        if not changed:
            return b[1:-1, 1:-1].astype(bool)


def redraw_constant_pen(img28: np.ndarray, pen: float, up: int = _UP) -> np.ndarray:
    """An MNIST digit's skeleton drawn again with a pen ``pen`` px wide (in the 28x28 frame's pixels).

    Parameters
    ----------
    img28 : ndarray of uint8, shape (28, 28)
        White ink on black.
    pen : float
        Pen width in 28x28 pixels (MNIST's strokes are about 2-3 px wide).
    up : int, default=4
        Upsampling factor of the thinning (2: about 6x cheaper, a coarser skeleton).

    Returns
    -------
    ndarray of uint8, shape (28, 28)
        Normalised as ``to_mnist`` does; the input unchanged when nothing is left.
    """
    a = np.asarray(img28, dtype=np.float32)
    big = np.asarray(Image.fromarray(a, mode="F").resize((28 * up, 28 * up), Image.Resampling.BILINEAR))
    skel = thin(big > 0.5 * float(big.max(initial=0.0)))
    if not skel.any():
        return np.asarray(img28, dtype=np.uint8)
    ink = ndi.distance_transform_edt(~skel) <= pen * up / 2.0
    small = ink.reshape(28, up, 28, up).mean(axis=(1, 3)) * 255.0
    try:
        return to_mnist(np.clip(small, 0, 255).astype(np.uint8), force=True, strokes=False)
    except NoInkError:
        return np.asarray(img28, dtype=np.uint8)


def stroke_variants(x: np.ndarray, rng: np.random.Generator, pen: tuple[float, float] = (1.5, 3.5),
                    up: int = _UP) -> np.ndarray:
    """One constant-pen variant of every digit of ``x`` (n, 28, 28) uint8, the pen width uniform in ``pen``.

    Returns
    -------
    ndarray of uint8, shape (n, 28, 28)
    """
    x = np.asarray(x, dtype=np.uint8).reshape(-1, 28, 28)
    widths = rng.uniform(*pen, size=len(x))
    return np.stack([redraw_constant_pen(img, w, up) for img, w in zip(x, widths, strict=True)]) if len(x) else x.copy()


def lowres_view(img28: np.ndarray, *, cells: int = 8, bitmap: int = 32, stretch: bool = True) -> np.ndarray:
    """A digit as a tiny picture would show it, then normalised as any picture is (``to_mnist``).

    The digit's ink is cropped, resized to a ``bitmap`` x ``bitmap`` binary
    bitmap (filling the box when ``stretch``, else keeping its aspect ratio),
    and its on-pixels counted in ``cells`` x ``cells`` blocks: the making of
    the UCI/scikit-learn 8x8 digits. That grid is upscaled 8x (bilinear) and
    normalised by ``preprocess.to_mnist``, as an uploaded small picture is.

    Returns
    -------
    ndarray of uint8, shape (28, 28); the input unchanged when it holds no ink.
    """
    a = np.asarray(img28, dtype=np.uint8)
    rows, cols = np.flatnonzero(a.max(1) > 0), np.flatnonzero(a.max(0) > 0)
    if len(rows) < 2 or len(cols) < 1:
        return a.copy()
    crop = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    if stretch:
        bw, bh = bitmap, bitmap
    else:
        k = bitmap / max(h, w)
        bw, bh = max(1, round(w * k)), max(1, round(h * k))
    big = np.asarray(Image.fromarray(crop).resize((bw, bh), Image.Resampling.BILINEAR)) > 127
    box = np.zeros((bitmap, bitmap), dtype=np.float32)
    top, left = (bitmap - bh) // 2, (bitmap - bw) // 2
    box[top:top + bh, left:left + bw] = big
    f = bitmap // cells
    grid = box.reshape(cells, f, cells, f).sum(axis=(1, 3)) * (255.0 / (f * f))
    up = Image.fromarray(grid.astype(np.uint8)).resize((cells * 8, cells * 8), Image.Resampling.BILINEAR)
    try:
        return to_mnist(up, force=True)
    except NoInkError:
        return a.copy()


def lowres_variants(x: np.ndarray, rng: np.random.Generator, p_stretch: float = 0.5) -> np.ndarray:
    """One :func:`lowres_view` of every digit of ``x`` (n, 28, 28) uint8 (stretched with probability ``p_stretch``)."""
    x = np.asarray(x, dtype=np.uint8).reshape(-1, 28, 28)
    st = rng.random(len(x)) < p_stretch
    return np.stack([lowres_view(img, stretch=bool(s)) for img, s in zip(x, st, strict=True)]) if len(x) else x.copy()
