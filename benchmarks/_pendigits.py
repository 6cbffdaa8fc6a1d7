"""Pen-drawn digits for the benchmarks: a COPY of exp12's UNIPEN reader and canvas conversion.

``digitlab.data.read_unipen`` (``src/digitlab/data/unipen.py``) and ``digitlab.pen`` (``src/digitlab/pen.py``)
are on the ``exp12`` branch, not on ``main`` yet; until they land, ``bench_profiles.py`` reads the pendigits
file with this copy of them (``read_unipen``, ``PenDigits``, ``Placement``, ``random_placement``, ``to_canvas``,
``render``, taken unchanged). Once they are on main, import them from there and delete this file.

Tablet digits become the strokes a user's drawing on the page's 280x280 canvas produces (y flipped, 70 % of
the canvas high, centred, the page's 20 px pen), then the model's input exactly as the server makes it
(``preprocess.render_strokes``).
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.errors import DataError
from digitlab.preprocess import render_strokes

__all__ = ["CANVAS", "PAGE_PEN", "PenDigits", "Placement", "random_placement", "read_unipen", "render", "to_canvas"]

# Keywords that describe the file (before the first .SEGMENT) or timing; their contents are not needed.
_IGNORED = {".INCLUDE", ".LEXICON", ".HIERARCHY", ".VERSION", ".DATA_SOURCE", ".DATA_ID", ".COORD",
            ".X_DIM", ".Y_DIM", ".H_LINE", ".V_LINE", ".X_POINTS_PER_INCH", ".Y_POINTS_PER_INCH",
            ".X_POINTS_PER_MM", ".Y_POINTS_PER_MM", ".POINTS_PER_SECOND", ".DATE", ".STYLE", ".WRITER_ID",
            ".SETUP", ".PAD", ".DOCUMENT", ".CONTACT", ".COPYRIGHT", ".START_SET", ".START_BOX", ".DT"}
_SEGMENT = re.compile(r'^\.SEGMENT\s+DIGIT\s+(?P<strokes>\S+)\s+\S+\s+"(?P<label>[^"]*)"\s*$')
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class PenDigits:
    """Digits read from a UNIPEN file.

    Attributes
    ----------
    strokes : tuple of n_digits lists
        Per digit, its strokes in writing order: each a float64 array of shape
        ``(n_points, 2)`` of (x, y) in the file's coordinates (tablet: y up).
    labels : ndarray of int64, shape (n_digits,)
        Digits 0-9.
    writers : ndarray of int64, shape (n_digits,)
        Writer ids, as the file's ``.COMMENT`` lines give them (1-30 in pendigits).
    """

    strokes: tuple[list[np.ndarray], ...]
    labels: np.ndarray
    writers: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read file: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(path, f"corrupt or truncated gzip data: {exc}") from None
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(path, f"line {line}: not a UNIPEN text file (byte {raw[exc.start]:#04x} is not "
                              "ASCII)") from None


def read_unipen(path: str | os.PathLike[str]) -> PenDigits:
    """Read the digits of a UNIPEN file, ``.gz`` or plain text.

    Parameters
    ----------
    path : path-like
        A file such as ``pendigits-orig.tra.gz``.

    Returns
    -------
    PenDigits
        ``strokes`` (per digit a list of ``(n_points, 2)`` float64 arrays,
        file coordinates), ``labels`` (int64, shape ``(n_digits,)``) and
        ``writers`` (int64, shape ``(n_digits,)``).

    Raises
    ------
    DataError
        Unreadable or malformed file; the message names the file and the line:
        a point outside a stroke or not two finite numbers, a digit without a
        0-9 label, without a writer (``.COMMENT <label> <writer> <n>``) or
        without strokes, a stroke count that disagrees with the ``.SEGMENT``
        line, an unknown keyword, a file that ends inside a stroke or holds no digit.
    """
    path = Path(path)
    lines = _text(path).splitlines()
    strokes: list[list[np.ndarray]] = []
    labels: list[int] = []
    writers: list[int] = []

    def fail(lineno: int, message: str) -> DataError:
        return DataError(path, f"line {lineno}: {message}")

    digit: list[np.ndarray] | None = None  # strokes of the digit being read
    seg_line, expected, writer = 0, None, None
    points: list[tuple[float, float]] | None = None  # points of the stroke being read (pen down)
    down_line = 0

    def close_digit(lineno: int) -> None:
        """Check and keep the digit begun at ``seg_line``."""
        if digit is None:
            return
        if writer is None:
            raise fail(seg_line, "the digit has no .COMMENT <label> <writer> <n> line: its writer is unknown")
        if not digit:
            raise fail(seg_line, "the digit has no strokes (no .PEN_DOWN ... .PEN_UP before line "
                                 f"{lineno})")
        if expected is not None and len(digit) != expected:
            raise fail(seg_line, f"the .SEGMENT line announces {expected} strokes, the digit has {len(digit)}")
        strokes.append(digit)
        writers.append(writer)

    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("."):
            if points is None:
                raise fail(lineno, f"a point {line[:40]!r} outside a stroke (no .PEN_DOWN before it)")
            fields = line.split()
            if len(fields) != 2:
                raise fail(lineno, f"expected a point 'x y', got {line[:40]!r}")
            try:
                x, y = float(fields[0]), float(fields[1])
            except ValueError:
                raise fail(lineno, f"non-numeric coordinates {line[:40]!r}") from None
            if not (math.isfinite(x) and math.isfinite(y)):
                raise fail(lineno, f"non-finite coordinates {line[:40]!r}")
            points.append((x, y))
            continue
        keyword = line.split(None, 1)[0]
        if points is not None and keyword != ".PEN_UP":
            raise fail(lineno, f"{keyword} inside a stroke (the .PEN_DOWN of line {down_line} has no .PEN_UP)")
        if keyword == ".SEGMENT":
            close_digit(lineno)
            m = _SEGMENT.match(line)
            if m is None:
                raise fail(lineno, 'expected .SEGMENT DIGIT <strokes> ? "<label>", got ' + repr(line[:60]))
            label = m.group("label")
            if len(label) != 1 or label not in "0123456789":
                raise fail(lineno, f"the digit's label must be one of 0-9, got {label!r}")
            r = _RANGE.match(m.group("strokes"))
            expected = None if r is None else (1 if r.group(2) is None else int(r.group(2)) - int(r.group(1)) + 1)
            if expected is not None and expected < 1:
                raise fail(lineno, f"bad stroke range {m.group('strokes')!r}")
            digit, seg_line, writer = [], lineno, None
            labels.append(int(label))
        elif keyword == ".COMMENT":
            if digit is None:
                continue  # a comment on the file
            fields = line.split()[1:]
            if len(fields) != 3 or not all(f.lstrip("-").isdigit() for f in fields):
                raise fail(lineno, f"expected .COMMENT <label> <writer> <n> (three integers), got {line[:60]!r}")
            if writer is not None:
                raise fail(lineno, "a second .COMMENT for the same digit: its writer is ambiguous")
            if int(fields[0]) != labels[-1]:
                raise fail(lineno, f"the comment's label {fields[0]} differs from the .SEGMENT's "
                                   f"{labels[-1]} (line {seg_line})")
            if int(fields[1]) < 1:
                raise fail(lineno, f"unknown writer id {fields[1]} (writer ids are positive)")
            writer = int(fields[1])
        elif keyword == ".PEN_DOWN":
            if digit is None:
                raise fail(lineno, ".PEN_DOWN before the first .SEGMENT (a stroke that belongs to no digit)")
            points, down_line = [], lineno
        elif keyword == ".PEN_UP":
            if points is None:
                raise fail(lineno, ".PEN_UP without a .PEN_DOWN")
            if not points:
                raise fail(lineno, f"the stroke begun at line {down_line} has no points")
            assert digit is not None
            digit.append(np.array(points, dtype=np.float64).reshape(-1, 2))
            points = None
        elif keyword in _IGNORED:
            if digit is not None and keyword != ".DT":
                raise fail(lineno, f"{keyword} is a header keyword, found after the first .SEGMENT")
        else:
            raise fail(lineno, f"unknown keyword {keyword}")
    end = len(lines)
    if points is not None:
        raise fail(end, f"the file ends inside a stroke (the .PEN_DOWN of line {down_line} has no .PEN_UP): "
                        "is it truncated?")
    close_digit(end)
    if not labels:
        raise fail(end, "no digit in the file (no .SEGMENT DIGIT line)")
    return PenDigits(tuple(strokes), np.array(labels, dtype=np.int64), np.array(writers, dtype=np.int64))


#: The page's canvas side (px) and default pen width (px).
CANVAS = 280
PAGE_PEN = 20.0


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
