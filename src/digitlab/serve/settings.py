"""The web server's settings: one typed, immutable object.

:func:`serve_settings` builds it from the library's locations
(:func:`digitlab.settings.get_settings`) plus keyword overrides, so the CLI,
the tests and the benchmark all configure the server the same way.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from digitlab.settings import get_settings

__all__ = ["ServeSettings", "serve_settings", "settings_from_json", "settings_to_json"]


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
        Torch's intra-op threads. 1: the model runs on one core while the event loop and input
        decoding use the other; 2 threads made image requests 3x slower on 2 cores (thread-pool churn).
    preprocess_threads : int
        Worker threads decoding and normalising images and strokes (about one per core).
    explain_threads : int
        Explanations computed at once per model, each on one core (one per core). An integrated-gradients
        explanation of the CNN takes ~20 ms of one core, and the web page asks for one with every drawing.
    freeze_gc : bool
        ``gc.freeze()`` after each model load, so that full garbage collections do not walk the
        libraries' objects (p99 latency 95 -> 16 ms at 32 clients). Off for servers inside test processes.
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
    torch_threads: int = 1
    preprocess_threads: int = max(2, os.cpu_count() or 1)
    explain_threads: int = max(1, os.cpu_count() or 1)
    freeze_gc: bool = True


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


def settings_to_json(settings: ServeSettings) -> dict[str, Any]:
    """The settings as a JSON-able dict (paths as strings), e.g. to hand them to worker processes."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()}


def settings_from_json(doc: dict[str, Any]) -> ServeSettings:
    """Inverse of :func:`settings_to_json`."""
    paths = {f.name for f in fields(ServeSettings) if f.type in ("Path", Path)}
    return ServeSettings(**{k: Path(v) if k in paths else v for k, v in doc.items()})
