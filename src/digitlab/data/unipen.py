"""Pen trajectories of digits in the UNIPEN text format (raw or gzip-compressed).

The format, as the pendigits files (Alpaydin and Alimoglu, UCI) write it::

    .INCLUDE  dene.doc                header keywords, ignored
    .LEXICON "0" "1" ... "9"
    .HIERARCHY DIGIT
    .SEGMENT DIGIT 6-7 ? "4"          a digit: its strokes (here strokes 6 and 7 of the file) and label
    .COMMENT 4 1 117                  label, writer id, the digit's number among the writer's
    .PEN_DOWN                         a stroke: lines of "x y" tablet coordinates ...
     267  333
     267  336
    .PEN_UP                           ... until the pen is lifted
    .DT 100                           time to the next stroke (ms), ignored

The tablet's y axis grows upwards (a browser canvas's grows downwards): the
points are returned as the file holds them.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab._io import atomic_write_bytes
from digitlab.errors import DataError

__all__ = ["PenDigits", "read_unipen", "write_unipen"]

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


def write_unipen(path: str | os.PathLike[str], digits: PenDigits, rows: np.ndarray | None = None) -> Path:
    """Write digits in pendigits' UNIPEN layout (gzip-compressed when the name ends in ``.gz``), atomically.

    :func:`read_unipen` reads the file back to the same strokes, labels and
    writers (coordinates as ``%g`` writes them).

    Parameters
    ----------
    path : path-like
    digits : PenDigits
    rows : ndarray of int, optional
        Write only these digits, in this order (default: all).

    Returns
    -------
    Path
    """
    path = Path(path)
    order = range(len(digits)) if rows is None else [int(i) for i in rows]
    lines = ['.LEXICON "0" "1" "2" "3" "4" "5" "6" "7" "8" "9"', ".HIERARCHY DIGIT"]
    first = 0
    for i in order:
        strokes, label, writer = digits.strokes[i], int(digits.labels[i]), int(digits.writers[i])
        span = f"{first}" if len(strokes) == 1 else f"{first}-{first + len(strokes) - 1}"
        first += len(strokes)
        lines += [f'.SEGMENT DIGIT {span} ? "{label}"', f".COMMENT {label} {writer} 0"]
        for stroke in strokes:
            lines += [".PEN_DOWN", *(f" {x:g} {y:g}" for x, y in np.asarray(stroke).reshape(-1, 2)), ".PEN_UP",
                      ".DT 100"]
    data = ("\n".join(lines) + "\n").encode("ascii")
    atomic_write_bytes(path, gzip.compress(data, mtime=0) if path.name.lower().endswith(".gz") else data)
    return path
