"""Drawings that are not one digit: what the not-a-digit detector is fitted and measured on.

Each maker returns ``(n, 28, 28)`` uint8 pictures normalised exactly as a
request to ``/v1/predict`` would be (:func:`digitlab.preprocess.to_mnist` for
pictures, :func:`digitlab.preprocess.render_strokes` for canvas strokes), so
the detector sees what the server sees:

* :func:`letters`: Latin letters of TrueType fonts, rotated, sheared and
  thickened at random. Letters written like a digit (``O o Q D I l i j Z z S s
  G b B g q``, :data:`DIGIT_LIKE`) are left out: nobody could tell them from
  0, 1, 2, 5, 6, 8 or 9.
* :func:`shapes`: symbols and shapes drawn as pen strokes on the page's
  canvas: ``+ x = # * % $ ? ! @ & ~`` arrows, ticks, squares, triangles,
  stars, hearts, smileys, spirals, houses, zigzags. A circle or an
  ellipse alone is a 0, so there is none.
* :func:`scribbles`: random pen walks, hatching and filled blobs.
* :func:`stroke_pairs` and :func:`image_pairs`: two digits where one was
  expected, side by side (pen digits on one canvas, or two pictures pasted).
* :func:`stroke_parts` and :func:`image_parts`: pieces of digits (the first
  part of a pen trajectory, a cropped half). Some pieces are digits (the
  stem of a 4 is a 1): they are fit-time negatives only, never measured.

The fonts come with matplotlib (a dependency), so the same negatives are made
on every machine: :data:`FIT_FONTS` (DejaVu) for fitting, :data:`HELD_OUT_FONTS`
(STIX and Computer Modern) for measuring on letters of fonts never fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitlab.errors import NoInkError
from digitlab.pen import CANVAS, random_placement, to_canvas
from digitlab.preprocess import render_strokes, to_mnist

__all__ = ["DIGIT_LIKE", "FIT_FONTS", "HELD_OUT_FONTS", "KINDS", "LETTERS", "font_path", "image_pairs",
           "image_parts", "letters", "make_negatives", "scribbles", "shapes", "stroke_pairs", "stroke_parts"]

#: Letters written like a digit, never used as negatives.
DIGIT_LIKE = frozenset("OoQDIlijZzSsGbBgq")
#: The letters drawn by :func:`letters`.
LETTERS = "".join(c for c in "ABCEFHJKLMNPRTUVWXYacdefhkmnprtuvwxy" if c not in DIGIT_LIKE)
#: Font files (in matplotlib's font folder) the detector is fitted on ...
FIT_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerif.ttf",
             "DejaVuSerif-Italic.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Oblique.ttf")
#: ... and those it is measured on.
HELD_OUT_FONTS = ("STIXGeneral.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBol.ttf", "cmr10.ttf", "cmss10.ttf",
                  "cmtt10.ttf", "cmti10.ttf")
#: The kinds of negatives, as :func:`make_negatives` names them.
KINDS = ("letter", "shape", "scribble", "pair", "part")

Strokes = list[np.ndarray]


def font_path(name: str) -> Path:
    """A font file of matplotlib's bundled fonts."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(name)), size=size)


def _finish(render: Callable[[], np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pictures of ``render()``, retrying the rare one that has no ink."""
    out = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        for _ in range(20):
            try:
                out[i] = render()
                break
            except NoInkError:
                continue
    return out


# --------------------------------------------------------------------------- letters


def letters(n: int, rng: np.random.Generator, fonts: Sequence[str] = FIT_FONTS, chars: str = LETTERS) -> np.ndarray:
    """``n`` letters of ``fonts``, each rotated (+-15 degrees), sheared and thickened at random.

    Returns
    -------
    ndarray of uint8, shape (n, 28, 28)
    """

    def one() -> np.ndarray:
        font = _font(fonts[int(rng.integers(len(fonts)))], int(rng.integers(64, 112)))
        ch = chars[int(rng.integers(len(chars)))]
        img = Image.new("L", (200, 200), 0)
        ImageDraw.Draw(img).text((100, 100), ch, fill=255, font=font, anchor="mm",
                                 stroke_width=int(rng.integers(0, 4)), stroke_fill=255)
        shear = float(rng.uniform(-0.3, 0.3))
        img = img.transform(img.size, Image.Transform.AFFINE, (1, shear, -shear * 100, 0, 1, 0),
                            resample=Image.Resampling.BILINEAR)
        img = img.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
        return to_mnist(np.asarray(img), force=True)

    return _finish(one, n, rng)


# --------------------------------------------------------------------------- strokes on the canvas


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, k: int = 24) -> np.ndarray:
    t = np.linspace(math.radians(a0), math.radians(a1), k)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _line(*pts: tuple[float, float]) -> np.ndarray:
    return np.array(pts, dtype=np.float64)


def _dot(x: float, y: float) -> np.ndarray:
    return _line((x, y), (x + 0.01, y + 0.01))


def _shape_table() -> dict[str, Callable[[np.random.Generator], Strokes]]:
    """Symbols and shapes in unit coordinates (y down), one function per kind."""

    def star(rng: np.random.Generator) -> Strokes:
        k = int(rng.choice([5, 5, 6]))
        angles = np.arange(2 * k + 1) * math.pi / k - math.pi / 2
        r = np.where(np.arange(2 * k + 1) % 2 == 0, 0.5, float(rng.uniform(0.18, 0.3)))
        return [np.stack([0.5 + r * np.cos(angles), 0.5 + r * np.sin(angles)], axis=1)]

    def heart(rng: np.random.Generator) -> Strokes:
        t = np.linspace(0, 2 * math.pi, 40)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return [np.stack([x / 34 + 0.5, y / 34 + 0.45], axis=1)]

    def smiley(rng: np.random.Generator) -> Strokes:
        sad = rng.random() < 0.3
        mouth = _arc(0.5, 0.78 if sad else 0.55, 0.22, 0.15, 200, 340) if sad else _arc(0.5, 0.55, 0.22, 0.17, 20, 160)
        return [_arc(0.5, 0.5, 0.5, 0.5, 0, 360, 40), _dot(0.35, 0.35), _dot(0.65, 0.35), mouth]

    def spiral(rng: np.random.Generator) -> Strokes:
        turns = float(rng.uniform(2, 3.5))
        t = np.linspace(0, turns * 2 * math.pi, int(30 * turns))
        r = 0.5 * t / t[-1]
        return [np.stack([0.5 + r * np.cos(t), 0.5 + r * np.sin(t)], axis=1)]

    def zigzag(rng: np.random.Generator) -> Strokes:
        k = int(rng.integers(4, 8))
        x = np.linspace(0, 1, k)
        y = np.where(np.arange(k) % 2 == 0, 0.2, 0.8)
        return [np.stack([x, y], axis=1)]

    def wave(rng: np.random.Generator) -> Strokes:
        x = np.linspace(0, 1, 30)
        return [np.stack([x, 0.5 + 0.15 * np.sin(x * 2 * math.pi * float(rng.uniform(1, 2)))], axis=1)]

    def at(rng: np.random.Generator) -> Strokes:
        return [np.concatenate([_arc(0.5, 0.5, 0.16, 0.2, 0, 360, 20), _line((0.66, 0.5), (0.66, 0.68)),
                                _arc(0.5, 0.5, 0.45, 0.45, 20, 340, 30)])]

    def amp(rng: np.random.Generator) -> Strokes:
        return [np.concatenate([_line((0.9, 0.95), (0.3, 0.4)), _arc(0.45, 0.25, 0.15, 0.18, 140, 400, 16),
                                _line((0.58, 0.3), (0.15, 0.65)), _arc(0.35, 0.75, 0.22, 0.2, 180, 300, 10),
                                _line((0.46, 0.95), (0.85, 0.6))])]

    table: dict[str, Callable[[np.random.Generator], Strokes]] = {
        "plus": lambda r: [_line((0.5, 0), (0.5, 1)), _line((0, 0.5), (1, 0.5))],
        "times": lambda r: [_line((0, 0), (1, 1)), _line((1, 0), (0, 1))],
        "equals": lambda r: [_line((0, 0.35), (1, 0.35)), _line((0, 0.65), (1, 0.65))],
        "hash": lambda r: [_line((0.35, 0), (0.25, 1)), _line((0.75, 0), (0.65, 1)), _line((0, 0.33), (1, 0.33)),
                           _line((0, 0.67), (1, 0.67))],
        "asterisk": lambda r: [_line((0.5, 0), (0.5, 1)), _line((0.07, 0.25), (0.93, 0.75)),
                               _line((0.93, 0.25), (0.07, 0.75))],
        "percent": lambda r: [_arc(0.2, 0.2, 0.15, 0.18, 0, 360, 16), _line((0.9, 0), (0.1, 1)),
                              _arc(0.8, 0.8, 0.15, 0.18, 0, 360, 16)],
        "dollar": lambda r: [np.concatenate([_arc(0.5, 0.3, 0.3, 0.2, -20, -270, 16),
                                             _arc(0.5, 0.7, 0.3, 0.2, -90, 160, 16)]), _line((0.5, 0), (0.5, 1))],
        "question": lambda r: [np.concatenate([_arc(0.5, 0.3, 0.3, 0.25, 180, 400, 16), _line((0.5, 0.6))]),
                               _dot(0.5, 0.95)],
        "exclamation": lambda r: [_line((0.5, 0), (0.5, 0.7)), _dot(0.5, 0.95)],
        "at": at,
        "ampersand": amp,
        "tilde": wave,
        "arrow": lambda r: [_line((0, 0.5), (1, 0.5)), _line((0.7, 0.25), (1, 0.5), (0.7, 0.75))],
        "up_arrow": lambda r: [_line((0.5, 1), (0.5, 0)), _line((0.25, 0.3), (0.5, 0), (0.75, 0.3))],
        "tick": lambda r: [_line((0, 0.55), (0.35, 0.95), (1, 0))],
        "square": lambda r: [_line((0, 0), (1, 0), (1, 1), (0, 1), (0, 0))],
        "triangle": lambda r: [_line((0.5, 0), (1, 1), (0, 1), (0.5, 0))],
        "diamond": lambda r: [_line((0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5), (0.5, 0))],
        "star": star,
        "heart": heart,
        "smiley": smiley,
        "spiral": spiral,
        "zigzag": zigzag,
        "house": lambda r: [_line((0, 1), (0, 0.4), (0.5, 0), (1, 0.4), (1, 1), (0, 1))],
        "square_x": lambda r: [_line((0, 0), (1, 0), (1, 1), (0, 1), (0, 0)), _line((0, 0), (1, 1)),
                               _line((1, 0), (0, 1))],
        "cloud": lambda r: [np.concatenate([_arc(0.2, 0.6, 0.2, 0.2, 90, 270, 10),
                                            _arc(0.45, 0.35, 0.25, 0.25, 180, 360, 12),
                                            _arc(0.8, 0.55, 0.2, 0.22, 270, 450, 10), _line((0.8, 0.77), (0.2, 0.8))])],
    }
    return table


_SHAPES = _shape_table()
#: The symbols and shapes of :func:`shapes`.
SHAPE_NAMES = tuple(_SHAPES)


def _wobble(strokes: Strokes, rng: np.random.Generator, amount: float) -> Strokes:
    """Strokes resampled densely and bent by a smooth random displacement (a hand is never steady)."""
    out = []
    phase = rng.uniform(0, 2 * math.pi, 4)
    freq = rng.uniform(1.0, 3.0, 2)
    for s in strokes:
        s = np.asarray(s, dtype=np.float64)
        if len(s) > 1:
            seg = np.hypot(*np.diff(s, axis=0).T)
            arc = np.concatenate([[0.0], np.cumsum(seg)])
            k = max(2, int(arc[-1] * 40))
            t = np.linspace(0, arc[-1], k)
            s = np.stack([np.interp(t, arc, s[:, 0]), np.interp(t, arc, s[:, 1])], axis=1)
        dx = amount * np.sin(freq[0] * 2 * math.pi * s[:, 1] + phase[0]) * np.cos(s[:, 0] * 3 + phase[1])
        dy = amount * np.sin(freq[1] * 2 * math.pi * s[:, 0] + phase[2]) * np.cos(s[:, 1] * 3 + phase[3])
        out.append(s + np.stack([dx, dy], axis=1))
    return out


def _draw(strokes: Strokes, rng: np.random.Generator, *, flip_y: bool = False) -> np.ndarray:
    """Strokes drawn on the page's canvas at a random placement, normalised as the server does."""
    pl = random_placement(rng)
    canvas = to_canvas(strokes, pl, flip_y=flip_y)
    return render_strokes(canvas, CANVAS, CANVAS, pl.pen)


def shapes(n: int, rng: np.random.Generator, names: Sequence[str] = SHAPE_NAMES) -> np.ndarray:
    """``n`` symbols and shapes (:data:`SHAPE_NAMES`) drawn as wobbly pen strokes on the canvas.

    Returns
    -------
    ndarray of uint8, shape (n, 28, 28)
    """

    def one() -> np.ndarray:
        make = _SHAPES[names[int(rng.integers(len(names)))]]
        strokes = _wobble(make(rng), rng, float(rng.uniform(0.0, 0.04)))
        return _draw(strokes, rng)

    return _finish(one, n, rng)


def _walk(rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(15, 90))
    turn = rng.normal(0, float(rng.uniform(0.3, 1.2)), k).cumsum()
    step = rng.uniform(0.02, 0.08)
    return np.stack([np.cos(turn), np.sin(turn)], axis=1).cumsum(axis=0) * step


def scribbles(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` scribbles: random pen walks (1-3 strokes), hatching, filled blobs and tangles.

    Returns
    -------
    ndarray of uint8, shape (n, 28, 28)
    """

    def one() -> np.ndarray:
        kind = rng.random()
        if kind < 0.5:
            strokes = [_walk(rng) + rng.uniform(-0.3, 0.3, 2) for _ in range(int(rng.integers(1, 4)))]
        elif kind < 0.7:  # hatching: parallel lines
            k = int(rng.integers(3, 9))
            a = rng.uniform(0, math.pi)
            d = np.array([math.cos(a), math.sin(a)])
            nrm = np.array([-d[1], d[0]])
            strokes = [np.stack([o * nrm - d, o * nrm + d]) for o in np.linspace(-1, 1, k)]
        elif kind < 0.85:  # a filled blob: a dense back-and-forth
            k = int(rng.integers(8, 20))
            x = np.where(np.arange(k) % 2 == 0, 0.0, 1.0) + rng.normal(0, 0.05, k)
            strokes = [np.stack([x, np.linspace(0, 1, k)], axis=1)]
        else:  # a tangle of loops
            t = np.linspace(0, float(rng.uniform(4, 9)) * math.pi, 120)
            r = 0.2 + 0.1 * rng.random()
            strokes = [np.stack([t / t[-1] + r * np.cos(t), 0.5 + r * np.sin(t) * float(rng.uniform(1, 2.5))],
                                axis=1)]
        return _draw(strokes, rng)

    return _finish(one, n, rng)


# --------------------------------------------------------------------------- pieces of digits


def _side_by_side(a: Strokes, b: Strokes, rng: np.random.Generator) -> Strokes:
    """Two tablet digits (y up) as one drawing: ``b`` right of ``a``, about the same height, a small gap."""
    def norm(s: Strokes) -> Strokes:
        p = np.concatenate(s)
        lo, hi = p.min(0), p.max(0)
        h = max(float(hi[1] - lo[1]), 1e-9)
        return [(q - lo) / h for q in s]

    na, nb = norm(a), norm(b)
    wa = max(float(np.concatenate(na)[:, 0].max()), 0.05)
    scale = float(rng.uniform(0.8, 1.25))
    gap = float(rng.uniform(-0.05, 0.3))
    shift = np.array([wa + gap, float(rng.uniform(-0.15, 0.15))])
    return na + [q * scale + shift for q in nb]


def stroke_pairs(digits: Sequence[Strokes], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pairs of pen digits (tablet strokes, y up) drawn side by side on one canvas.

    Returns
    -------
    ndarray of uint8, shape (n, 28, 28)
    """

    def one() -> np.ndarray:
        i, j = rng.integers(len(digits), size=2)
        return _draw(_side_by_side(list(digits[int(i)]), list(digits[int(j)]), rng), rng, flip_y=True)

    return _finish(one, n, rng)


def image_pairs(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pairs of 28x28 digits pasted side by side (overlapping by up to 8 px, or apart by up to 4).

    Returns
    -------
    ndarray of uint8, shape (n, 28, 28)
    """

    def one() -> np.ndarray:
        a, b = images[rng.integers(len(images), size=2)]
        step = int(rng.integers(14, 26))
        canvas = np.zeros((36, step + 28 + 4), dtype=np.uint8)
        dy = int(rng.integers(0, 8))
        canvas[4:32, 2:30] = a
        canvas[dy:dy + 28, 2 + step:2 + step + 28] = np.maximum(canvas[dy:dy + 28, 2 + step:2 + step + 28], b)
        return to_mnist(canvas, force=True)

    return _finish(one, n, rng)


def stroke_parts(digits: Sequence[Strokes], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pieces of pen digits: the first 35-65 % of the trajectory.

    Returns
    -------
    ndarray of uint8, shape (n, 28, 28)
    """

    def one() -> np.ndarray:
        s = list(digits[int(rng.integers(len(digits)))])
        total = sum(len(q) for q in s)
        keep = max(2, int(total * rng.uniform(0.35, 0.65)))
        part: Strokes = []
        for q in s:
            if keep <= 0:
                break
            part.append(q[:keep])
            keep -= len(q)
        return _draw(part, rng, flip_y=True)

    return _finish(one, n, rng)


def image_parts(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` halves of 28x28 digits (top, bottom, left or right 40-55 % kept).

    Returns
    -------
    ndarray of uint8, shape (n, 28, 28)
    """

    def one() -> np.ndarray:
        img = images[int(rng.integers(len(images)))].copy()
        cut = int(28 * rng.uniform(0.4, 0.55))
        side = int(rng.integers(4))
        if side == 0:
            img[cut:] = 0
        elif side == 1:
            img[:28 - cut] = 0
        elif side == 2:
            img[:, cut:] = 0
        else:
            img[:, :28 - cut] = 0
        padded = np.zeros((36, 36), dtype=np.uint8)
        padded[4:32, 4:32] = img
        return to_mnist(padded, force=True)

    return _finish(one, n, rng)


def make_negatives(counts: dict[str, int], rng: np.random.Generator, *, fonts: Sequence[str] = FIT_FONTS,
                   pen_digits: Sequence[Strokes] = (), images: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Negatives of each kind of :data:`KINDS`, as many as ``counts`` asks.

    Pairs and parts are made half from ``pen_digits`` (tablet strokes) and
    half from ``images`` (28x28 digits), from whichever is given.

    Returns
    -------
    pictures : ndarray of uint8, shape (n, 28, 28)
    kinds : ndarray of str, shape (n,)
    """
    blocks, kinds = [], []
    for kind, n in counts.items():
        if n <= 0:
            continue
        if kind == "letter":
            blocks.append(letters(n, rng, fonts))
        elif kind == "shape":
            blocks.append(shapes(n, rng))
        elif kind == "scribble":
            blocks.append(scribbles(n, rng))
        elif kind in ("pair", "part"):
            by_strokes = stroke_pairs if kind == "pair" else stroke_parts
            by_images = image_pairs if kind == "pair" else image_parts
            n_strokes = (n // 2 if images is not None else n) if pen_digits else 0
            if n_strokes:
                blocks.append(by_strokes(pen_digits, n_strokes, rng))
            if n - n_strokes:
                if images is None:
                    raise ValueError(f"{kind} negatives need pen digits or digit images")
                blocks.append(by_images(images, n - n_strokes, rng))
        else:
            raise ValueError(f"unknown kind of negative {kind!r}; known: {', '.join(KINDS)}")
        kinds += [kind] * n
    pictures = np.concatenate(blocks) if blocks else np.zeros((0, 28, 28), dtype=np.uint8)
    return pictures, np.array(kinds)

