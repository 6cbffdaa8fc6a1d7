"""Read a whole number: find the digits of a drawing or a picture, left to right, and classify each.

:func:`read_number` takes canvas strokes (a :class:`~digitlab.preprocess.Drawing`,
any aspect ratio) or a picture (any aspect ratio) and returns a
:class:`Reading`: the digits as text and, per digit, its probabilities, its
box in the input's coordinates and whether it looks like a digit at all.

How the digits are found
------------------------
1. **Pieces.** For strokes, each stroke is a piece: strokes are grouped into
   digits by where they are, not by their pixels, so a 4, a 5 or a 7 drawn
   with two strokes stays one digit and a stroke that crosses into its
   neighbour's space still belongs to its own digit. For a picture, each
   connected blob of ink is a piece; a blob much wider than the digits are
   high (touching digits) is cut at the thinnest columns of ink into several
   pieces.
2. **Candidates.** Pieces are ordered by their horizontal centre. Every run of
   up to four consecutive pieces that is compact (no wide gap inside, not
   much wider than a digit is high) is a candidate digit: a broken stroke's
   two blobs, a 5's body and its bar, or the two halves of a cut.
3. **Scores decide.** Each candidate goes through exactly what ``/v1/predict``
   does with the same input (the same rendering of the strokes or
   normalisation of the picture, the same model) in one batch. The reading
   is the split of the pieces into consecutive candidates that maximises
   the sum of each digit's log-probability, its log-odds of being a digit
   (when the model has a not-a-digit detector: two digits merged into one
   are flagged) and two geometric terms (a digit much wider than high, two
   neighbours that overlap much): dynamic programming over the pieces.
   Where the model is sure the geometry hardly matters; where it is unsure,
   splitting or merging is tried and the better-scored reading wins.

The model is a fitted :class:`~digitlab.models.base.DigitClassifier`, a
:class:`~digitlab.models.io.LoadedModel` (its detector, if any, is loaded
from its folder), or any :data:`Recognizer`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage as ndi

from digitlab import preprocess
from digitlab.errors import NoInkError, TooLargeError, UserError
from digitlab.limits import DEFAULT_LIMITS, Limits
from digitlab.models.base import DigitClassifier
from digitlab.models.io import LoadedModel
from digitlab.novelty import NoveltyDetector, load_detector
from digitlab.preprocess import Drawing

__all__ = ["Box", "ReadDigit", "Reading", "Recognition", "Recognizer", "read_number", "recognizer"]

#: ``[x0, y0, x1, y1]`` in the input's coordinates (canvas or picture pixels), x to the right, y down.
Box = tuple[float, float, float, float]

_MAX_RUN = 4            # strokes or blobs in one candidate digit
_MAX_SLICES = 12        # pieces in one candidate digit (slices of a blob of touching digits count each)
_MAX_PIECES = 120       # beyond this, only single pieces are candidates (the cost stays linear)
_MAX_DIGITS = 64        # a reading never holds more digits than this
# Score weights (chosen on numbers composed from the pen digits of the fitting writers 1-24, never 28-30).
_W_NOVEL = 1.0          # weight of log P(digit) from the detector
_W_ASPECT = 3.0         # per unit of width/height beyond _ASPECT
_ASPECT = 1.15
_W_OVERLAP = 4.0        # per unit of horizontal overlap (of the narrower) beyond _OVERLAP between neighbours
_OVERLAP = 0.25
_GAP = 0.45             # widest gap inside a candidate, in digit heights
_W_LOOSE = 1.0          # per loose join inside a digit (pieces that do not overlap)
_W_CUT = 1.5            # per cut through a blob of ink (touching digits in a picture)
_UNSURE = 0.75          # a piece whose top probability is lower (or that is flagged) is tried with its neighbours
_WIDE = 1.6             # widest candidate, in digit heights


@dataclass(frozen=True)
class Recognition:
    """A recogniser's answer for a batch of 28x28 inputs.

    Attributes
    ----------
    probabilities : ndarray of float64, shape (n, 10)
    novelty : ndarray of float64, shape (n,)
        Probability of *not a digit* (zeros without a detector).
    not_a_digit : ndarray of bool, shape (n,)
    """

    probabilities: NDArray[np.float64]
    novelty: NDArray[np.float64]
    not_a_digit: NDArray[np.bool_]


#: Anything that classifies a batch of (n, 784) float32 MNIST-style inputs.
Recognizer = Callable[[NDArray[np.float32]], Recognition]


def recognizer(estimator: DigitClassifier, detector: NoveltyDetector | None = None) -> Recognizer:
    """The :data:`Recognizer` of a fitted classifier and, optionally, its not-a-digit detector."""

    def run(x: NDArray[np.float32]) -> Recognition:
        scores, probs = estimator.scores_and_proba(x)
        if detector is None:
            return Recognition(probs, np.zeros(len(x)), np.zeros(len(x), dtype=bool))
        nov = detector.probability(x, scores)
        return Recognition(probs, nov, nov > detector.threshold)

    run.has_detector = detector is not None  # type: ignore[attr-defined]
    return run


@dataclass(frozen=True)
class ReadDigit:
    """One digit of a :class:`Reading`.

    Attributes
    ----------
    digit : int
        The best guess, even when ``not_a_digit``.
    probabilities : ndarray of float64, shape (10,)
    box : Box
        ``[x0, y0, x1, y1]`` in the input's coordinates.
    not_a_digit : bool
        The detector's verdict (always False for a model without one).
    input : ndarray of uint8, shape (784,)
        The normalised 28x28 pixels the model saw.
    """

    digit: int
    probabilities: NDArray[np.float64]
    box: Box
    not_a_digit: bool
    input: NDArray[np.uint8]


@dataclass(frozen=True)
class Reading:
    """The number found in a drawing or picture.

    Attributes
    ----------
    text : str
        The digits left to right (best guesses, also for pieces flagged ``not_a_digit``).
    digits : tuple of ReadDigit
    no_ink : bool
        Nothing is drawn: ``text`` is empty and ``digits`` too.
    """

    text: str
    digits: tuple[ReadDigit, ...]
    no_ink: bool = False


_NOTHING = Reading("", (), True)


# --------------------------------------------------------------------------- pieces


@dataclass(frozen=True)
class _Piece:
    """A stroke, or a blob (or part of one) of a picture's ink; coordinates of the input."""

    x0: float
    y0: float
    x1: float
    y1: float
    key: int    # the stroke's index, or the piece's index in the picture
    group: int  # pieces cut from one blob of ink share a group

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0


def _union(pieces: Sequence[_Piece]) -> Box:
    return (min(p.x0 for p in pieces), min(p.y0 for p in pieces), max(p.x1 for p in pieces),
            max(p.y1 for p in pieces))


def _digit_height(pieces: Sequence[_Piece], floor: float) -> float:
    """A typical digit's height: a high quantile of the pieces' heights (bars and dots are low)."""
    hs = np.array([p.h for p in pieces])
    return max(float(np.quantile(hs, 0.75)), floor)


# --------------------------------------------------------------------------- the search


def _join(union: Box, p: _Piece, join_gap: float, height: float) -> int:
    """How ``p`` may join the run whose box is ``union``: 2 tightly (they overlap, or a small break), 1 loosely
    (a small gap: two digits, or one the model will tell), 0 not at all."""
    inter = min(union[2], p.x1) - max(union[0], p.x0)
    narrow = max(min(union[2] - union[0], p.w), 1e-9)
    if inter / narrow >= 0.15 or 0 <= -inter <= join_gap:
        return 2
    return 1 if -inter <= _GAP * height else 0


def _candidates(pieces: Sequence[_Piece], height: float, join_gap: float,
                loose_at: set[int] | None = None) -> list[tuple[int, int, int]]:
    """Runs ``(i, j, loose)`` (pieces i..j inclusive, ``loose`` joins inside) that could be one digit.

    Without ``loose_at``: every single piece and the runs whose joins are all tight. With it: the runs
    with a loose join that include a piece of ``loose_at`` (pieces the model is unsure of).
    """
    runs = [(i, i, 0) for i in range(len(pieces))] if loose_at is None else []
    if len(pieces) > _MAX_PIECES:
        return runs
    for i in range(len(pieces)):
        box: Box = (pieces[i].x0, pieces[i].y0, pieces[i].x1, pieces[i].y1)
        loose, groups = 0, 1
        for j in range(i + 1, min(i + _MAX_SLICES, len(pieces))):
            p = pieces[j]
            same = p.group == pieces[j - 1].group
            groups += not same
            if groups > _MAX_RUN:
                break
            how = 2 if same else _join(box, p, join_gap, height)
            if how == 0:
                break
            loose += how == 1
            box = (min(box[0], p.x0), min(box[1], p.y0), max(box[2], p.x1), max(box[3], p.y1))
            if box[2] - box[0] > _WIDE * height:
                break
            if loose_at is None:
                if loose:
                    break
                runs.append((i, j, 0))
            elif loose and any(i <= n <= j for n in loose_at):
                runs.append((i, j, loose))
    return runs


def _geometry(box: Box, height: float) -> float:
    w, h = box[2] - box[0], max(box[3] - box[1], 0.6 * height)
    return -_W_ASPECT * max(0.0, w / h - _ASPECT)


def _overlap(a: Box, b: Box) -> float:
    inter = min(a[2], b[2]) - max(a[0], b[0])
    narrow = max(min(a[2] - a[0], b[2] - b[0]), 1e-9)
    return -_W_OVERLAP * max(0.0, inter / narrow - _OVERLAP)


def _best_split(pieces: Sequence[_Piece], runs: Sequence[tuple[int, int]], scores: NDArray[np.float64],
                boxes: Sequence[Box]) -> list[int]:
    """Indices into ``runs`` of the best split of the pieces into consecutive runs (dynamic programming).

    ``best[(i, j)]`` is the best total of a split of pieces 0..j whose last run is (i, j); the overlap
    term between neighbours makes the state the last run, not just its end.
    """
    by_end: dict[int, list[int]] = {}
    for k, (_, j) in enumerate(runs):
        by_end.setdefault(j, []).append(k)
    best: dict[int, tuple[float, int]] = {}  # run index -> (total, previous run index or -1)
    for j in range(len(pieces)):
        for k in by_end.get(j, []):
            i = runs[k][0]
            if i == 0:
                best[k] = (float(scores[k]), -1)
                continue
            cut = -_W_CUT if pieces[i - 1].group == pieces[i].group else 0.0  # the runs part a blob of ink
            options = [(best[q][0] + _overlap(boxes[q], boxes[k]) + cut, q) for q in by_end.get(i - 1, [])
                       if q in best]
            if options:
                total, q = max(options)
                best[k] = (total + float(scores[k]), q)
    last = [k for k in by_end.get(len(pieces) - 1, []) if k in best]
    k = max(last, key=lambda q: best[q][0])
    chosen = []
    while k != -1:
        chosen.append(k)
        k = best[k][1]
    return chosen[::-1]


def _read(pieces: list[_Piece], height: float, join_gap: float,
          render: Callable[[Sequence[_Piece]], NDArray[np.uint8] | None], recognise: Recognizer) -> Reading:
    pieces.sort(key=lambda p: (p.cx, p.x0))
    runs: list[tuple[int, int, int]] = []
    inputs: list[NDArray[np.uint8] | None] = []

    def evaluate(candidates: list[tuple[int, int, int]]) -> None:
        batch, at = [], []
        for i, j, loose in candidates:
            x = render(pieces[i:j + 1])
            if x is not None or i == j:  # a lone piece that renders to nothing (a dot) may be left out
                runs.append((i, j, loose))
                inputs.append(x)
                if x is not None:
                    batch.append(x)
                    at.append(len(inputs) - 1)
        if batch:
            rec = recognise(np.stack(batch).reshape(len(batch), 784).astype(np.float32))
            for n, k in enumerate(at):
                results[k] = (rec.probabilities[n], float(rec.novelty[n]), bool(rec.not_a_digit[n]))

    results: dict[int, tuple[NDArray[np.float64], float, bool]] = {}
    evaluate(_candidates(pieces, height, join_gap))
    unsure = {runs[k][0] for k, (pr, nov, flag) in results.items()
              if runs[k][0] == runs[k][1] and (float(pr.max()) < _UNSURE or flag)}
    if unsure:
        evaluate(_candidates(pieces, height, join_gap, loose_at=unsure))
    if not results:
        return _NOTHING
    n = len(runs)
    probs = np.zeros((n, 10))
    novelty, flags = np.zeros(n), np.zeros(n, dtype=bool)
    for k, (pr, nov, flag) in results.items():
        probs[k], novelty[k], flags[k] = pr, nov, flag
    boxes = [_union(pieces[i:j + 1]) for i, j, _ in runs]
    top = np.log(np.clip(probs.max(axis=1), 1e-9, 1.0))
    digit_odds = np.log(np.clip(1.0 - novelty, 0.05, 1.0))
    scores = (top + _W_NOVEL * digit_odds + np.array([_geometry(b, height) for b in boxes])
              - _W_LOOSE * np.array([loose for _, _, loose in runs]))
    empty = np.array([k not in results for k in range(n)])
    scores[empty] = -2.0  # leaving a speck out costs a little: it may belong to a neighbour
    chosen = [k for k in _best_split(pieces, [(i, j) for i, j, _ in runs], scores, boxes) if not empty[k]]
    if not chosen:
        return _NOTHING
    if len(chosen) > _MAX_DIGITS:
        raise TooLargeError(f"the drawing holds {len(chosen)} digits; at most {_MAX_DIGITS} are read at once")
    digits = []
    for k in chosen:
        x = inputs[k]
        assert x is not None
        digits.append(ReadDigit(digit=int(np.argmax(probs[k])), probabilities=probs[k],
                                box=(round(boxes[k][0], 1), round(boxes[k][1], 1), round(boxes[k][2], 1),
                                     round(boxes[k][3], 1)),
                                not_a_digit=bool(flags[k]), input=np.asarray(x, dtype=np.uint8).reshape(784)))
    return Reading("".join(str(d.digit) for d in digits), tuple(digits))


# --------------------------------------------------------------------------- strokes


def _read_drawing(drawing: Drawing, recognise: Recognizer) -> Reading:
    pen = drawing.pen_width
    pieces: list[_Piece] = []
    for k, s in enumerate(drawing.strokes):
        lo, hi = s.min(axis=0), s.max(axis=0)
        x0, y0 = max(float(lo[0]) - pen / 2, 0.0), max(float(lo[1]) - pen / 2, 0.0)
        x1, y1 = min(float(hi[0]) + pen / 2, drawing.width), min(float(hi[1]) + pen / 2, drawing.height)
        if x1 > x0 and y1 > y0:  # a stroke wholly outside the canvas is not drawn
            pieces.append(_Piece(x0, y0, x1, y1, k, k))
    if not pieces:
        return _NOTHING
    height = _digit_height(pieces, 2.0 * pen)

    def render(run: Sequence[_Piece]) -> NDArray[np.uint8] | None:
        keys = sorted(p.key for p in run)
        sub = Drawing(tuple(drawing.strokes[k] for k in keys), drawing.width, drawing.height, pen)
        try:
            return preprocess.render_drawing(sub)
        except NoInkError:
            return None

    return _read(pieces, height, 0.0, render, recognise)


# --------------------------------------------------------------------------- pictures


def _ink(img: Image.Image | np.ndarray, limits: Limits) -> NDArray[np.float32] | None:
    """Light-on-dark ink of a picture on a 0-1 scale, (h, w); None when there is no contrast."""
    if isinstance(img, Image.Image):
        preprocess._check_size(img.size, limits)
        grey, alpha = preprocess._pil_ink(img)
    else:
        grey, alpha = preprocess._array_ink(np.asarray(img), limits)
    ink = grey if alpha else np.take(preprocess._light_on_dark(grey), grey)
    peak = float(ink.max(initial=0))
    if peak < preprocess._MIN_CONTRAST:
        return None
    out: NDArray[np.float32] = ink.astype(np.float32) * np.float32(1 / peak)
    return out


def _cuts(profile: NDArray[np.float64], height: float) -> list[int]:
    """Columns where a wide blob (touching digits) may be cut: the local minima of its ink per column and a
    grid a fifth of a digit's height apart, away from its ends. The model's scores pick among the slices."""
    w = len(profile)
    smooth = np.convolve(profile, np.ones(5) / 5, mode="same")
    lo, hi = int(0.25 * height), w - int(0.25 * height)
    if hi <= lo:
        return []
    window = max(1, int(0.08 * height))
    minima = [c for c in range(lo, hi) if smooth[c] <= smooth[max(0, c - window):c + window + 1].min() + 1e-9]
    step = max(1, int(0.2 * height))
    found: list[int] = []
    for c in sorted(minima, key=lambda c: (smooth[c], c)) + list(range(lo, hi, step)):
        if all(abs(c - f) >= 0.08 * height for f in found):
            found.append(c)
    return sorted(found)


def _read_picture(img: Image.Image | np.ndarray, recognise: Recognizer, limits: Limits) -> Reading:
    ink = _ink(img, limits)
    if ink is None:
        return _NOTHING
    mask = ink > 0.35
    labels, n = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return _NOTHING
    objects = ndi.find_objects(labels)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    keep = [k for k in range(n) if areas[k] >= max(4, 0.02 * areas.max())]  # specks and dust are not digits
    if len(keep) > 4 * _MAX_PIECES:
        raise TooLargeError(f"the picture holds {len(keep)} separate marks; at most {4 * _MAX_PIECES} are read")
    stroke = max(preprocess.stroke_width(mask.astype(np.float32)), 1.0)
    blobs = [(k, objects[k]) for k in keep]
    height = _digit_height([_Piece(s[1].start, s[0].start, s[1].stop, s[0].stop, k, k) for k, s in blobs],
                           3.0 * stroke)
    pieces: list[_Piece] = []
    parts: dict[int, tuple[int, slice, slice]] = {}  # piece key -> (label, rows, columns)
    for k, (rows, cols) in blobs:
        bounds = [cols.start, cols.stop]
        if cols.stop - cols.start > 1.25 * height:  # touching digits: cut where the ink is thinnest
            own = labels[rows, cols] == k + 1
            bounds = [cols.start, *(cols.start + c for c in _cuts(own.sum(axis=0).astype(np.float64), height)),
                      cols.stop]
        for a, b in itertools.pairwise(bounds):
            sub = labels[rows, a:b] == k + 1
            r = np.flatnonzero(sub.any(axis=1))
            if not len(r):
                continue
            key = len(parts)
            parts[key] = (k + 1, slice(rows.start + int(r[0]), rows.start + int(r[-1]) + 1), slice(a, b))
            pieces.append(_Piece(float(a), float(rows.start + r[0]), float(b), float(rows.start + r[-1] + 1), key,
                                 k))

    def render(run: Sequence[_Piece]) -> NDArray[np.uint8] | None:
        x0, y0, x1, y1 = (int(v) for v in _union(run))
        m = 4  # a dark margin, so that the border is background
        crop = np.zeros((y1 - y0 + 2 * m, x1 - x0 + 2 * m), dtype=np.float32)
        for p in run:
            label, rows, cols = parts[p.key]
            own = labels[rows, cols] == label
            # the blob's ink, with its faint antialiased edge (a dilation of its mask)
            near = ndi.binary_dilation(own, iterations=2) if min(own.shape) > 0 else own
            region = crop[rows.start - y0 + m:rows.stop - y0 + m, cols.start - x0 + m:cols.stop - x0 + m]
            np.maximum(region, np.where(near, ink[rows, cols], 0), out=region)
        side = max(crop.shape)
        if side < limits.min_image_side:
            crop = np.pad(crop, ((0, 0), (0, limits.min_image_side - crop.shape[1])))
        try:
            return preprocess.to_mnist(np.clip(crop * 255, 0, 255).astype(np.uint8), force=True, limits=limits)
        except NoInkError:
            return None

    return _read(pieces, height, 0.5 * stroke, render, recognise)


# --------------------------------------------------------------------------- the entry point


def _recognizer_of(model: DigitClassifier | LoadedModel | Recognizer,
                   detector: NoveltyDetector | None) -> Recognizer:
    if isinstance(model, LoadedModel):
        det = detector if detector is not None else load_detector(model.path, model.name)
        return recognizer(model.estimator, det)
    if isinstance(model, DigitClassifier):
        return recognizer(model, detector)
    if callable(model):
        return model
    raise UserError(f"model must be a fitted classifier, a loaded model or a recogniser, got {type(model).__name__}")


def read_number(image_or_strokes: Drawing | Image.Image | np.ndarray | str | os.PathLike[str],
                model: DigitClassifier | LoadedModel | Recognizer, *, detector: NoveltyDetector | None = None,
                limits: Limits = DEFAULT_LIMITS) -> Reading:
    """Find the digits of a drawing or a picture and read them left to right.

    Parameters
    ----------
    image_or_strokes : Drawing, PIL.Image, ndarray or path
        Canvas strokes checked by :func:`digitlab.preprocess.check_drawing`
        (any canvas size), or a picture of any aspect ratio (a PIL image, an
        array as :func:`digitlab.preprocess.to_mnist` takes, or an image file).
    model : DigitClassifier, LoadedModel or Recognizer
        A :class:`~digitlab.models.io.LoadedModel` brings its not-a-digit
        detector, if its folder has one.
    detector : NoveltyDetector, optional
        The detector to use (overrides the loaded model's).
    limits : Limits, default=DEFAULT_LIMITS

    Returns
    -------
    Reading
        ``no_ink`` when nothing is drawn.

    Raises
    ------
    UserError
        An unreadable picture or file, or a wrong input type.
    TooLargeError
        An input over ``limits``, or more marks than are read at once.
    """
    recognise = _recognizer_of(model, detector)
    if isinstance(image_or_strokes, Drawing):
        return _read_drawing(image_or_strokes, recognise)
    if isinstance(image_or_strokes, (str, os.PathLike)):
        path = Path(image_or_strokes)
        data = preprocess.read_image_file(path, limits)
        try:
            return _read_picture(preprocess.decode_image(data, limits=limits), recognise, limits)
        except UserError as exc:
            raise type(exc)(f"{path}: {exc}") from None
    if isinstance(image_or_strokes, (Image.Image, np.ndarray)):
        return _read_picture(image_or_strokes, recognise, limits)
    raise UserError("read_number takes a Drawing (check_drawing), a picture (PIL image or array) or an image file, "
                    f"got {type(image_or_strokes).__name__}")

