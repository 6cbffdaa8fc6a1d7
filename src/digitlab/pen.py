"""Pen-drawn digits as the MLPaint page would send them, and the writer folds to validate on.

A digit written on a tablet (:func:`digitlab.data.read_unipen`) becomes the
strokes a user's drawing on the page produces: :func:`to_canvas` flips the y
axis (tablets grow upwards, canvases downwards), sizes the digit as a person
draws on the 280x280 canvas (its height a fixed or random fraction of the
canvas, its aspect ratio kept) and places it; coordinates are rounded to
0.1 px and clamped to the canvas, as the page's ``toCanvas`` does.
:func:`render` then turns those strokes into the model's 28x28 input exactly
as the server does (``preprocess.render_strokes(strokes, 280, 280, pen)``,
the page's default pen is 20 px).

Validation is by writer (:data:`WRITER_FOLDS`): 5 fixed folds of 6 writers,
fold ``k`` holding the writers ``w`` with ``(w - 1) % 5 == k``.
:data:`KEPT_OUT_WRITERS` are kept out of the bundled model's training
altogether: the honest unseen writers of the tests and the browser test.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from digitlab.preprocess import NoInkError, render_strokes

if TYPE_CHECKING:
    from digitlab.models.base import ProgressFn

__all__ = ["CALIBRATION_WRITERS", "CANVAS", "KEPT_OUT_WRITERS", "PAGE_PEN", "WRITER_FOLDS", "Placement", "fold_of",
           "random_placement", "render", "render_digits", "render_page", "to_canvas"]

#: The page's canvas side (px) and default pen width (px).
CANVAS = 280
PAGE_PEN = 20.0

#: 5 folds of 6 writers: fold k holds the writers w (1-30) with (w - 1) % 5 == k.
WRITER_FOLDS: tuple[tuple[int, ...], ...] = tuple(tuple(range(k + 1, 31, 5)) for k in range(5))
#: Writers never used to train the bundled model (the last three ids; they lie in folds 2, 3 and 4).
KEPT_OUT_WRITERS: tuple[int, ...] = (28, 29, 30)
#: Writers the bundled model is not trained on either: its temperature is fitted on their digits.
CALIBRATION_WRITERS: tuple[int, ...] = (25, 26, 27)


def fold_of(writer: int) -> int:
    """The fold (0-4) of a pendigits writer id (1-30)."""
    return (int(writer) - 1) % 5


@dataclass(frozen=True)
class Placement:
    """How a digit is drawn on the canvas.

    Attributes
    ----------
    height : float
        The digit's height as a fraction of the canvas side (its width follows
        from its aspect ratio; a digit wider than ``max_width`` is shrunk).
    cx, cy : float
        Centre of the digit's bounding box, fractions of the canvas side.
    slant : float
        Horizontal shear, ``x += slant * (centre_y - y)`` (positive leans right).
    rotate : float
        Rotation in degrees (positive: clockwise on the screen).
    stretch : float
        Width multiplier (aspect ratio change).
    pen : float
        Pen width in canvas px.
    """

    height: float = 0.7
    cx: float = 0.5
    cy: float = 0.5
    slant: float = 0.0
    rotate: float = 0.0
    stretch: float = 1.0
    pen: float = PAGE_PEN
    max_width: float = 0.9


def random_placement(rng: np.random.Generator, *, height: tuple[float, float] = (0.35, 0.9),
                     shift: float = 0.15, slant: float = 0.3, rotate: float = 10.0,
                     stretch: tuple[float, float] = (0.8, 1.25), pen: tuple[float, float] = (6.0, 40.0)) -> Placement:
    """A random placement: size, position, slant, rotation, aspect and pen, as different users draw.

    Pen widths are drawn uniformly from the page's slider range (6-40 px) by default.
    """
    h = float(rng.uniform(*height))
    room = max(0.0, min(shift, (1 - h) / 2))
    return Placement(height=h, cx=0.5 + float(rng.uniform(-room, room)), cy=0.5 + float(rng.uniform(-room, room)),
                     slant=float(rng.uniform(-slant, slant)), rotate=float(rng.uniform(-rotate, rotate)),
                     stretch=float(math.exp(rng.uniform(math.log(stretch[0]), math.log(stretch[1])))),
                     pen=float(rng.uniform(*pen)))


def to_canvas(strokes: Sequence[np.ndarray], placement: Placement = Placement(), *, size: int = CANVAS,
              flip_y: bool = True) -> list[np.ndarray]:
    """Strokes of a tablet digit as the page's canvas records them.

    Parameters
    ----------
    strokes : list of ndarray of shape (n_points, 2)
        (x, y) in tablet coordinates (y up when ``flip_y``).
    placement : Placement
    size : int, default=280
        Canvas side in px.
    flip_y : bool, default=True

    Returns
    -------
    list of ndarray of float64, shape (n_points, 2)
        Canvas (x, y), y down, rounded to 0.1 px and clamped to ``[0, size]``.
    """
    pts = [np.asarray(s, dtype=np.float64).reshape(-1, 2).copy() for s in strokes]
    allp = np.concatenate(pts)
    lo, hi = allp.min(0), allp.max(0)
    mid = (lo + hi) / 2
    out = []
    a = math.radians(placement.rotate)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    for p in pts:
        q = p - mid
        if flip_y:
            q[:, 1] = -q[:, 1]                      # now y grows downwards
        q[:, 0] = q[:, 0] * placement.stretch - placement.slant * q[:, 1]  # lean: top (y < 0) moves right
        out.append(q @ rot.T)
    allq = np.concatenate(out)
    qlo, qhi = allq.min(0), allq.max(0)
    ext = np.maximum(qhi - qlo, 1e-9)
    scale = min(placement.height * size / ext[1], placement.max_width * size / ext[0])
    centre = (qlo + qhi) / 2
    target = np.array([placement.cx, placement.cy]) * size
    return [np.clip(np.round((q - centre) * scale + target, 1), 0.0, float(size)) for q in out]


def render(strokes: Sequence[np.ndarray], placement: Placement = Placement(), *, size: int = CANVAS) -> np.ndarray:
    """A tablet digit drawn on the page and turned into the model's input as the server does.

    Returns
    -------
    ndarray of uint8, shape (28, 28)
    """
    canvas = to_canvas(strokes, placement, size=size)
    return render_strokes([c.tolist() for c in canvas], size, size, placement.pen)


def render_digits(digits: Sequence[Sequence[np.ndarray]], placement: Placement | None = None,
                  rng: np.random.Generator | None = None, **random_kw: Any) -> np.ndarray:
    """Render many tablet digits: with one ``placement`` (default: the page's pen, centred, 70 % high) or,
    given ``rng``, a :func:`random_placement` each.

    Returns
    -------
    ndarray of uint8, shape (n_digits, 28, 28)
        A digit that renders to nothing (never in pendigits) is left black.
    """
    out = np.zeros((len(digits), 28, 28), dtype=np.uint8)
    for i, s in enumerate(digits):
        pl = random_placement(rng, **random_kw) if rng is not None else (placement or Placement())
        with contextlib.suppress(NoInkError):
            out[i] = render(s, pl)
    return out


def render_page(digits: Sequence[Sequence[np.ndarray]], *, progress: ProgressFn | None = None,
                ) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """Tablet digits drawn on the page with the default :class:`Placement`: the pixels and the canvas strokes.

    Each digit's pixels equal :func:`render` of it; its canvas strokes are
    :func:`to_canvas` of it (what the page would send).

    Parameters
    ----------
    digits : sequence of lists of ndarray of shape (n_points, 2)
    progress : callable, optional
        ``progress("render", done, total)`` every few hundred digits.

    Returns
    -------
    images : ndarray of uint8, shape (n_digits, 28, 28)
    canvas : list of n_digits lists of ndarray of float64, shape (n_points, 2)

    Raises
    ------
    NoInkError
        A digit draws to nothing; the message gives its position (from 1).
    """
    placement = Placement()
    images = np.zeros((len(digits), 28, 28), dtype=np.uint8)
    canvas: list[list[np.ndarray]] = []
    for i, s in enumerate(digits):
        c = to_canvas(s, placement)
        try:
            images[i] = render_strokes([q.tolist() for q in c], CANVAS, CANVAS, placement.pen)
        except NoInkError as exc:
            raise NoInkError(f"digit {i + 1} draws to nothing on the canvas: {exc}") from None
        canvas.append(c)
        if progress is not None and ((i + 1) % 250 == 0 or i + 1 == len(digits)):
            progress("render", i + 1, len(digits))
    return images, canvas
