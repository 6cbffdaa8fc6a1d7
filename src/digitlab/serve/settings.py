"""The web server's settings: one typed, immutable object.

:func:`serve_settings` builds it from the library's locations
(:func:`digitlab.settings.get_settings`) plus keyword overrides, so the CLI,
the tests and the benchmark all configure the server the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from digitlab.settings import get_settings

__all__ = ["ServeSettings", "serve_settings"]


@dataclass(frozen=True)
class ServeSettings:
    """Everything the server needs to know.

    Attributes
    ----------
    data_dir : Path
        MNIST folder, for ``GET /v1/samples``.
    models_dir : Path
        Saved models (the bundled ``default`` is always available too).
    host, port : str, int
        Where ``digitlab serve`` listens.
    default_model : str
        Model used when a request names none.
    max_body_bytes : int
        Larger request bodies are refused with 413.
    max_image_side : int
        Images (decoded header) with a larger side are refused with 413.
    max_image_pixels : int
        Images with more pixels (width x height) are refused with 413: decompression bombs.
    max_stroke_points : int
        Total points over all strokes; more is refused with 413.
    max_pen_width : float
        Largest accepted ``pen_width``.
    request_timeout : float
        Seconds a prediction may take before the request answers 503.
    max_batch : int
        Most concurrent predictions run together in one model call.
    torch_threads : int
        Cap on torch's intra-op threads (the server shares the cores with its clients).
    """

    data_dir: Path
    models_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    default_model: str = "default"
    max_body_bytes: int = 2 * 1024 * 1024
    max_image_side: int = 4000
    max_image_pixels: int = 4_000_000
    max_stroke_points: int = 20_000
    max_pen_width: float = 200.0
    request_timeout: float = 10.0
    max_batch: int = 32
    torch_threads: int = max(1, min(2, os.cpu_count() or 1))


def serve_settings(data_dir: str | os.PathLike[str] | None = None,
                   home: str | os.PathLike[str] | None = None, **overrides: Any) -> ServeSettings:
    """Server settings from the library's locations plus ``overrides`` (field name -> value).

    Raises
    ------
    TypeError
        An override names no field of :class:`ServeSettings`.
    """
    base = get_settings(data_dir=data_dir, home=home)
    settings = ServeSettings(data_dir=base.data_dir, models_dir=base.models_dir)
    return replace(settings, **overrides)
