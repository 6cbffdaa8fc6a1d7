"""Whole numbers written on a wide canvas, composed from pen digits: what the number reader is measured on.

:func:`compose_number` lays the tablet digits of one writer (:mod:`digitlab.data.unipen`,
y up) side by side on a canvas such as the page's number pad, as a person
writes a number: each digit a little larger or smaller than the last, a
little rotated, uneven gaps between them, the baseline sloping; then flips y
and rounds to 0.1 px as the page's pad does. :func:`canvas_picture` paints
those strokes as the page's canvas shows them (white on black, round pen),
the picture a user would upload.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["GLYPHS", "NUMBER_CANVAS", "Number", "canvas_picture", "compose_number", "sketch"]

#: The page's number pad (px).
NUMBER_CANVAS = (900, 300)


@dataclass(frozen=True)
class Number:
    """A composed number.

    Attributes
    ----------
    strokes : list of ndarray of float64, shape (n_points, 2)
        Canvas (x, y), y down.
    width, height : int
        The canvas.
    pen_width : float
    boxes : list of (x0, y0, x1, y1)
        Each digit's box (the points, without the pen), left to right.
    """

    strokes: list[np.ndarray]
    width: int
    height: int
    pen_width: float
    boxes: list[tuple[float, float, float, float]]


def compose_number(digits: Sequence[Sequence[np.ndarray]], rng: np.random.Generator, *,
                   canvas: tuple[int, int] = NUMBER_CANVAS, gap: tuple[float, float] = (0.12, 0.6),
                   slope: float = 8.0, size_jitter: float = 0.15, rotate: float = 6.0,
                   pen: tuple[float, float] = (8.0, 22.0)) -> Number:
    """Lay ``digits`` (tablet strokes, y up) left to right on a canvas as one person writes a number.

    Parameters
    ----------
    digits : list of digits, each a list of (n, 2) stroke arrays
    rng : numpy Generator
    canvas : (width, height), default NUMBER_CANVAS
    gap : (low, high)
        Gap between neighbours' boxes, uniform, in digit heights (uneven gaps).
    slope : float
        Baseline slope, degrees, uniform in +-slope.
    size_jitter : float
        Each digit's height varies by up to this fraction.
    rotate : float
        Each digit turns by up to this many degrees.
    pen : (low, high)
        Pen width in canvas px, uniform.
    """
    cw, ch = canvas
    height = 1.0
    angle = math.radians(float(rng.uniform(-slope, slope)))
    placed: list[list[np.ndarray]] = []
    x = 0.0
    for d in digits:
        pts = [np.asarray(s, dtype=np.float64).copy() for s in d]
        allp = np.concatenate(pts)
        lo, hi = allp.min(0), allp.max(0)
        h = max(float(hi[1] - lo[1]), 1e-9)
        scale = height * float(rng.uniform(1 - size_jitter, 1 + size_jitter)) / h
        a = math.radians(float(rng.uniform(-rotate, rotate)))
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        mid = (lo + hi) / 2
        qs = []
        for p in pts:
            q = (p - mid) * scale
            q[:, 1] = -q[:, 1]  # y down
            qs.append(q @ rot.T)
        allq = np.concatenate(qs)
        qlo, qhi = allq.min(0), allq.max(0)
        shift = np.array([x - qlo[0], 0.0])
        placed.append([q + shift for q in qs])
        x += float(qhi[0] - qlo[0]) + float(rng.uniform(*gap)) * height
    # the baseline's slope, then fit the number into the canvas with a margin
    c, s = math.cos(angle), math.sin(angle)
    tilt = np.array([[c, -s], [s, c]])
    placed = [[q @ tilt.T for q in d] for d in placed]
    allp = np.concatenate([q for d in placed for q in d])
    lo, hi = allp.min(0), allp.max(0)
    fill = float(rng.uniform(0.55, 0.8))
    k = min(fill * ch / max(float(hi[1] - lo[1]), 1e-9), 0.92 * cw / max(float(hi[0] - lo[0]), 1e-9))
    offset = np.array([cw, ch]) / 2 - (lo + hi) / 2 * k
    strokes, boxes = [], []
    for d in placed:
        qs = [np.clip(np.round(q * k + offset, 1), 0.0, [cw, ch]) for q in d]
        strokes += qs
        ink = np.concatenate(qs)
        boxes.append((float(ink[:, 0].min()), float(ink[:, 1].min()), float(ink[:, 0].max()),
                      float(ink[:, 1].max())))
    pen_width = float(rng.uniform(*pen))
    return Number(strokes, cw, ch, pen_width, boxes)


def canvas_picture(number: Number) -> Image.Image:
    """The number as the page's canvas paints it: white round-capped strokes on black, ``L`` mode."""
    img = Image.new("L", (number.width, number.height), 0)
    draw = ImageDraw.Draw(img)
    r = number.pen_width / 2
    for s in number.strokes:
        pts = [(float(a), float(b)) for a, b in s]
        if len(pts) > 1:
            draw.line(pts, fill=255, width=max(1, round(number.pen_width)), joint="curve")
        for a, b in pts:
            draw.ellipse((a - r, b - r, a + r, b + r), fill=255)
    return img


def _ellipse(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float,
             k: int = 20) -> list[tuple[float, float]]:
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, k)]


#: Plain pen strokes of each digit in a unit box (x right, y down), as a tidy hand writes them;
#: 4, 5 and 7 use two strokes.
GLYPHS: dict[str, list[list[tuple[float, float]]]] = {
    "0": [_ellipse(0.5, 0.5, 0.45, 0.5, -90, 270, 28)],
    "1": [[(0.3, 0.2), (0.55, 0.0), (0.55, 0.5), (0.55, 1.0)]],
    "2": [[*_ellipse(0.5, 0.28, 0.4, 0.28, 190, 370, 12), (0.8, 0.45), (0.05, 1.0), (0.95, 1.0)]],
    "3": [_ellipse(0.45, 0.25, 0.4, 0.25, 200, 450, 14) + _ellipse(0.45, 0.75, 0.45, 0.25, 270, 500, 14)],
    "4": [[(0.6, 0.0), (0.0, 0.65), (1.0, 0.65)], [(0.72, 0.3), (0.72, 1.0)]],
    "5": [[(0.85, 0.0), (0.2, 0.0)], [(0.2, 0.0), (0.12, 0.45), *_ellipse(0.45, 0.7, 0.42, 0.3, 230, 500, 16)]],
    "6": [[(0.75, 0.0), (0.35, 0.3), (0.1, 0.65), *_ellipse(0.5, 0.72, 0.4, 0.28, 180, 540, 20)]],
    "7": [[(0.0, 0.0), (1.0, 0.0), (0.6, 0.5), (0.4, 1.0)], [(0.3, 0.5), (0.85, 0.5)]],
    "8": [_ellipse(0.5, 0.25, 0.33, 0.25, 90, 450, 16) + _ellipse(0.5, 0.75, 0.42, 0.25, -90, 270, 18)[::-1]],
    "9": [[*_ellipse(0.5, 0.28, 0.4, 0.28, 0, 360, 18), (0.9, 0.28), (0.85, 0.6), (0.75, 1.0)]],
}


def sketch(text: str, *, canvas: tuple[int, int] = NUMBER_CANVAS, pen_width: float = 16.0, gap: float = 0.45,
           slope: float = 0.0) -> Number:
    """``text`` (digits) written with :data:`GLYPHS` on a canvas, left to right, digits 60 % of it high.

    Parameters
    ----------
    gap : float
        Between neighbours, in digit heights (negative: they overlap).
    slope : float
        Baseline slope, degrees (positive: rising to the right).
    """
    cw, ch = canvas
    h = 0.6 * ch
    h = min(h, 0.92 * cw / (len(text) * 0.55 + (len(text) - 1) * gap)) if text else h
    w = 0.55 * h
    total = len(text) * w + (len(text) - 1) * gap * h
    x = (cw - total) / 2
    strokes, boxes = [], []
    t = math.tan(math.radians(slope))
    for c in text:
        y0 = (ch - h) / 2 - (x + w / 2 - cw / 2) * t
        qs = [np.round(np.array([(x + px * w, y0 + py * h) for px, py in s]), 1) for s in GLYPHS[c]]
        strokes += qs
        a = np.concatenate(qs)
        boxes.append((float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 0].max()), float(a[:, 1].max())))
        x += w + gap * h
    return Number(strokes, cw, ch, pen_width, boxes)
