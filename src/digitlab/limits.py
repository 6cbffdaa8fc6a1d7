"""What digitlab accepts as input, declared once.

:class:`Limits` holds every bound on an input's size: pictures, canvases,
strokes and request bodies. :mod:`digitlab.preprocess` checks pictures and
strokes against a ``Limits`` (by default :data:`DEFAULT_LIMITS`), the server
holds one in its settings and passes it down, and the API's schemas
document the same numbers, so the CLI, the library and the server refuse the
same inputs with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from digitlab.errors import UserError

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True)
class Limits:
    """Bounds on the size of inputs.

    Attributes
    ----------
    max_body_bytes : int
        Largest HTTP request body (JSON or multipart); larger ones get 413.
    max_file_bytes : int
        Largest image file read from disk.
    min_image_side : int
        Smallest accepted longer side of a picture, in pixels.
    max_image_side : int
        Largest accepted side of a picture, in pixels (decoded header).
    max_image_pixels : int
        Most pixels (width x height) of a picture: larger ones, decompression
        bombs among them, are refused from the header, before decoding.
    min_canvas_side, max_canvas_side : int
        Bounds of a drawing canvas's width and height, in pixels.
    max_strokes : int
        Most strokes in one drawing.
    max_stroke_points : int
        Most points over all the strokes of one drawing.
    max_pen_width : float
        Widest pen, in canvas pixels.
    max_jpeg_scans : int
        Most scans in a JPEG file: each scan of a progressive JPEG is decoded over the whole
        picture, so a small file of hundreds of repeated scans costs as much as a huge picture.
        Ordinary encoders write 1 to about 10.
    """

    max_body_bytes: int = 2 * 1024 * 1024
    max_file_bytes: int = 100_000_000
    min_image_side: int = 8
    max_image_side: int = 4000
    max_image_pixels: int = 16_000_000
    min_canvas_side: int = 8
    max_canvas_side: int = 4000
    max_strokes: int = 1000
    max_stroke_points: int = 20_000
    max_pen_width: float = 200.0
    max_jpeg_scans: int = 32

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise UserError(f"limit {f.name} must be a positive number, got {value!r}")
        for low, high in (("min_image_side", "max_image_side"), ("min_canvas_side", "max_canvas_side")):
            if getattr(self, low) > getattr(self, high):
                raise UserError(f"limit {low} ({getattr(self, low)}) must not exceed {high} ({getattr(self, high)})")


#: The limits used wherever none are given.
DEFAULT_LIMITS = Limits()
