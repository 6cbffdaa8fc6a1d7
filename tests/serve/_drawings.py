"""Drawings as the MLPaint page sends them, for comparing the JS normaliser with ``digitlab.preprocess``.

* :func:`pen_digits`: digits written on a tablet by 30 people (UNIPEN's pendigits, ``pendigits-orig.tra.gz``),
  read with a minimal parser of the file's ``.SEGMENT`` / ``.COMMENT <label> <writer>`` / ``.PEN_DOWN`` /
  ``.PEN_UP`` records (written here; ``digitlab.data.read_unipen`` is not on this branch) and put on the
  280x280 canvas at random sizes, places and pens, rounded to 0.1 px and clamped as the page's pad does.
* :func:`synthetic_digits`: MNIST-like strokes of each digit (one or two styles each) under random affine
  distortions and jitter.
* :func:`edge_cases`: dots, specks, strokes leaving the canvas, other canvas sizes, pens outside MNIST's range.

Every drawing is ``{"strokes": [[[x, y], ...], ...], "width", "height", "pen"}`` (``pen`` may be None).
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np

CANVAS = 280.0
_REPO = Path(__file__).resolve().parents[2]
_FILE = Path("pendigits") / "pendigits-orig.tra.gz"


def pendigits_file() -> Path:
    """``$DIGITLAB_PENDIGITS``, else ``pendigits/`` beside the MNIST folder (``$DIGITLAB_DATA``), else
    ``../shared/data/pendigits`` beside the repository (CI's layout)."""
    candidates = [Path(os.environ["DIGITLAB_PENDIGITS"])] if os.environ.get("DIGITLAB_PENDIGITS") else []
    if os.environ.get("DIGITLAB_DATA"):
        candidates.append(Path(os.environ["DIGITLAB_DATA"]).parent / _FILE)
    candidates.append(_REPO.parent / "shared" / "data" / _FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"pendigits-orig.tra.gz not found in {', '.join(map(str, candidates))}: set "
                            "DIGITLAB_PENDIGITS to the file")

Drawing = dict[str, object]


def read_pendigits(path: Path | None = None) -> list[tuple[int, int, list[np.ndarray]]]:
    """(label, writer, strokes) of every digit in a UNIPEN file; strokes in tablet coordinates (y up)."""
    digits: list[tuple[int, int, list[np.ndarray]]] = []
    label = writer = -1
    strokes: list[np.ndarray] = []
    points: list[tuple[float, float]] | None = None
    with gzip.open(path or pendigits_file(), "rt", encoding="ascii") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            if line.startswith(".SEGMENT"):
                if strokes:
                    digits.append((label, writer, strokes))
                strokes = []
            elif line.startswith(".COMMENT"):
                _, label_s, writer_s, *_ = line.split()
                label, writer = int(label_s), int(writer_s)
            elif line.startswith(".PEN_DOWN"):
                points = []
            elif line.startswith(".PEN_UP"):
                if points:
                    strokes.append(np.array(points, dtype=np.float64))
                points = None
            elif not line.startswith(".") and points is not None:
                x, y = line.split()
                points.append((float(x), float(y)))
    if strokes:
        digits.append((label, writer, strokes))
    return digits


def _on_canvas(strokes: list[np.ndarray], rng: np.random.Generator, *, flip_y: bool) -> list[list[list[float]]]:
    """Strokes scaled to a random height (35-85 % of the canvas), placed, rounded and clamped like the pad's."""
    pts = [s.copy() for s in strokes]
    if flip_y:
        for p in pts:
            p[:, 1] = -p[:, 1]
    allp = np.concatenate(pts)
    lo, hi = allp.min(0), allp.max(0)
    ext = np.maximum(hi - lo, 1e-9)
    scale = min(rng.uniform(0.35, 0.85) * CANVAS / ext[1], 0.9 * CANVAS / ext[0])
    centre = CANVAS * (0.5 + rng.uniform(-0.12, 0.12, 2))
    mid = (lo + hi) / 2
    return [np.clip(np.round((p - mid) * scale + centre, 1), 0.0, CANVAS).tolist() for p in pts]


def _pen(rng: np.random.Generator) -> float | None:
    """The page's pen slider (6-40 px) most of the time, sometimes the API's default pen."""
    return None if rng.random() < 0.1 else float(rng.uniform(6.0, 40.0))


def pen_digits(n: int, seed: int = 0, path: Path | None = None) -> list[Drawing]:
    """``n`` pen digits (every label and writer represented), placed at random on the 280x280 canvas."""
    digits = read_pendigits(path)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(digits), size=n, replace=False)
    out: list[Drawing] = []
    for i in pick:
        label, _, strokes = digits[i]
        out.append({"strokes": _on_canvas(strokes, rng, flip_y=True), "width": CANVAS, "height": CANVAS,
                    "pen": _pen(rng), "label": label})
    return out


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 16) -> list[tuple[float, float]]:
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in np.linspace(a0, a1, n)]


# Unit-square strokes (y down) of each digit, one or two styles.
TEMPLATES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[_arc(0.5, 0.5, 0.22, 0.34, -math.pi / 2, 1.5 * math.pi, 24)]],
    1: [[[(0.5, 0.15), (0.5, 0.85)]], [[(0.38, 0.28), (0.52, 0.15), (0.52, 0.85)]]],
    2: [[[*_arc(0.5, 0.33, 0.2, 0.18, math.pi, 2.2 * math.pi, 12), (0.3, 0.85), (0.72, 0.85)]]],
    3: [[_arc(0.48, 0.32, 0.2, 0.17, -0.8 * math.pi, 0.5 * math.pi, 12)
         + _arc(0.48, 0.67, 0.22, 0.18, -0.5 * math.pi, 0.8 * math.pi, 12)]],
    4: [[[(0.6, 0.85), (0.6, 0.15), (0.25, 0.62), (0.75, 0.62)]],
        [[(0.35, 0.15), (0.3, 0.55), (0.72, 0.55)], [(0.62, 0.3), (0.62, 0.86)]]],
    5: [[[(0.7, 0.16), (0.36, 0.16), (0.33, 0.46),
          *_arc(0.5, 0.64, 0.21, 0.2, -0.75 * math.pi, 0.8 * math.pi, 14)]]],
    6: [[[(0.66, 0.15), *_arc(0.5, 0.64, 0.2, 0.2, -0.9 * math.pi, 1.1 * math.pi, 20)]]],
    7: [[[(0.28, 0.18), (0.72, 0.18), (0.45, 0.85)]],
        [[(0.3, 0.2), (0.7, 0.2), (0.5, 0.85)], [(0.4, 0.5), (0.66, 0.5)]]],
    8: [[_arc(0.5, 0.31, 0.17, 0.16, 0.5 * math.pi, 2.5 * math.pi, 16)
         + _arc(0.5, 0.67, 0.21, 0.19, -0.5 * math.pi, 1.5 * math.pi, 16)]],
    9: [[[*_arc(0.5, 0.33, 0.19, 0.18, 0.1 * math.pi, 2.1 * math.pi, 16), (0.66, 0.55), (0.6, 0.86)]]],
}


def synthetic_digits(n: int, seed: int = 0) -> list[Drawing]:
    """``n`` MNIST-like drawings: each digit's template rotated, sheared, scaled, moved and jittered."""
    rng = np.random.default_rng(seed)
    out: list[Drawing] = []
    for i in range(n):
        label = i % 10
        style = TEMPLATES[label][int(rng.integers(len(TEMPLATES[label])))]
        a, shear, s = math.radians(rng.uniform(-15, 15)), rng.uniform(-0.3, 0.3), rng.uniform(0.45, 1.0)
        m = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) @ np.array([[1, shear], [0, 1]])
        shift = rng.uniform(-0.15, 0.15, 2)
        strokes = []
        for stroke in style:
            p = np.array(stroke) - 0.5
            # resample densely, as a pointer produces points, then jitter
            t = np.linspace(0, len(p) - 1, max(2, 4 * len(p)))
            p = np.stack([np.interp(t, np.arange(len(p)), p[:, k]) for k in (0, 1)], 1)
            p = p @ m.T + 0.5 + shift + rng.normal(0, 0.006, p.shape)
            strokes.append(np.clip(np.round(p * CANVAS, 1), 0, CANVAS).tolist())
        out.append({"strokes": strokes, "width": CANVAS, "height": CANVAS, "pen": _pen(rng), "label": label})
    return out


def edge_cases() -> list[Drawing]:
    """Drawings near the rules' edges: nothing, dots, specks, off-canvas strokes, odd canvases and pens."""
    one = [[[140.0, 40.0], [141.0, 140.0], [139.5, 240.0]]]
    zero = [[[140 + 60 * math.sin(t / 12 * math.pi), 140 - 90 * math.cos(t / 12 * math.pi)] for t in range(25)]]
    d: list[Drawing] = [
        {"strokes": [], "width": 280, "height": 280, "pen": 20.0},
        {"strokes": [[]], "width": 280, "height": 280, "pen": 20.0},
        {"strokes": [[[100.0, 100.0]]], "width": 280, "height": 280, "pen": 20.0},                 # a dot
        {"strokes": [[[100.0, 100.0], [105.0, 104.0]]], "width": 280, "height": 280, "pen": 20.0},  # a speck
        {"strokes": [[[100.0, 100.0], [130.0, 100.0]]], "width": 280, "height": 280, "pen": 20.0},  # a dash
        {"strokes": [[[-50.0, -50.0], [-10.0, -40.0]]], "width": 280, "height": 280, "pen": 20.0},  # off canvas
        {"strokes": [[[-40.0, 140.0], [140.0, 140.0], [320.0, 60.0]]], "width": 280, "height": 280, "pen": 20.0},
        {"strokes": one, "width": 280, "height": 280, "pen": 2.0},     # pens outside MNIST's range
        {"strokes": one, "width": 280, "height": 280, "pen": 120.0},
        {"strokes": zero, "width": 280, "height": 280, "pen": None},
        {"strokes": zero, "width": 280, "height": 280, "pen": 1e-3},
        {"strokes": [[[x / 2, y / 2] for x, y in zero[0]]], "width": 140, "height": 300, "pen": 8.0},
        {"strokes": [[[x * 10, y * 10] for x, y in zero[0]]], "width": 4000, "height": 4000, "pen": 150.0},
        {"strokes": [[[x / 20, y / 20] for x, y in one[0]]], "width": 14, "height": 14, "pen": 1.0},
        {"strokes": [[[140.0, 140.0]], [[160.0, 150.0]], [[150.0, 190.0]]], "width": 280, "height": 280, "pen": 20.0},
        {"strokes": [[[20.0, 140.0], [260.0, 140.0]]], "width": 280, "height": 280, "pen": 20.0},  # flat
        {"strokes": [[[140.0, 10.0], [140.0, 270.0]]], "width": 280, "height": 280, "pen": 6.0},   # upright
        {"strokes": [[[140.0, 140.0], [140.0, 140.0], [141.0, 141.0]]], "width": 280, "height": 280, "pen": 30.0},
    ]
    return d
