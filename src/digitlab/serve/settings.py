"""The web server's settings: one typed, immutable object.

:func:`serve_settings` builds it from the library's locations
(:func:`digitlab.settings.get_settings`) plus keyword overrides, so the CLI,
the tests and the benchmark all configure the server the same way. Every
bound on a request's size is in :attr:`ServeSettings.limits`, the
:class:`~digitlab.limits.Limits` that the request schemas and
:mod:`digitlab.preprocess` read too.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from digitlab.errors import UserError
from digitlab.limits import DEFAULT_LIMITS, Limits
from digitlab.models.io import check_model_name
from digitlab.settings import get_settings

__all__ = ["ServeSettings", "serve_settings", "settings_from_json", "settings_to_json"]

_LIMIT_NAMES = frozenset(f.name for f in fields(Limits))


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
    limits : Limits
        Bounds on request bodies, pictures, canvases and strokes; larger inputs are refused with 413.
    request_timeout : float
        Seconds a prediction may take before the request answers 503.
    max_batch : int
        Most concurrent predictions run together in one model call.
    torch_threads : int
        Torch's intra-op threads. 1: the model runs on one core while the event loop and input
        decoding use the other (more threads made image requests slower on 2 cores: thread-pool churn).
    preprocess_threads : int
        Worker threads decoding and normalising images and strokes (about one per core).
    explain_threads : int
        Explanations computed at once per model, each on one core (one per core); the web page asks
        for one with every drawing.
    freeze_gc : bool
        ``gc.freeze()`` after each model load, so that full garbage collections do not walk the
        libraries' objects (shorter tail latencies). Off for servers inside test processes.
    models : tuple of str
        Models loaded at start and compared side by side (``"models": "all"``, the page's compare
        view), besides the default; ``digitlab serve --model A --model B``. Empty: the default only.
    serve_all : bool
        Load and compare every model of the models folder (``digitlab serve --all``).
    store_path : Path, optional
        The store that corrections are written to; default ``digitlab.duckdb`` beside ``models_dir``
        (the home folder's store).

    Raises
    ------
    UserError
        A setting out of its range (the message names the setting).
    """

    data_dir: Path
    models_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    default_model: str = "default"
    limits: Limits = DEFAULT_LIMITS
    request_timeout: float = 10.0
    max_batch: int = 32
    torch_threads: int = 1
    preprocess_threads: int = max(2, os.cpu_count() or 1)
    explain_threads: int = max(1, os.cpu_count() or 1)
    freeze_gc: bool = True
    models: tuple[str, ...] = ()
    serve_all: bool = False
    store_path: Path | None = None

    def __post_init__(self) -> None:
        for name in ("data_dir", "models_dir"):
            value = getattr(self, name)
            if not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        check_model_name(self.default_model)
        # --- corrections and compare (issue 15): the models compared, the store corrections go to
        if isinstance(self.models, str) or not all(isinstance(m, str) for m in self.models):
            raise UserError(f"setting models must be a list of model names, got {self.models!r}")
        object.__setattr__(self, "models", tuple(check_model_name(m) for m in self.models))
        store = self.store_path if self.store_path is not None else self.models_dir.parent / "digitlab.duckdb"
        object.__setattr__(self, "store_path", Path(store))
        if not isinstance(self.limits, Limits):
            raise UserError(f"setting limits must be a digitlab.limits.Limits, got {type(self.limits).__name__}")
        if not 0 <= self.port <= 65535:
            raise UserError(f"setting port must lie in 0..65535, got {self.port}")
        if not self.request_timeout > 0:
            raise UserError(f"setting request_timeout must be > 0 seconds, got {self.request_timeout}")
        for name in ("max_batch", "torch_threads", "preprocess_threads", "explain_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"setting {name} must be an integer >= 1, got {value!r}")


def serve_settings(data_dir: str | os.PathLike[str] | None = None,
                   home: str | os.PathLike[str] | None = None, **overrides: Any) -> ServeSettings:
    """Server settings from the library's locations plus ``overrides``.

    Parameters
    ----------
    data_dir, home : path, optional
        As for :func:`digitlab.settings.get_settings`.
    **overrides
        :class:`ServeSettings` fields, or :class:`~digitlab.limits.Limits` fields
        (``max_body_bytes=...``), which change :attr:`ServeSettings.limits`.

    Raises
    ------
    TypeError
        An override names neither a setting nor a limit.
    """
    base = get_settings(data_dir=data_dir, home=home)
    limit_overrides = {k: overrides.pop(k) for k in list(overrides) if k in _LIMIT_NAMES}
    limits = overrides.pop("limits", DEFAULT_LIMITS)
    if limit_overrides:
        limits = replace(limits, **limit_overrides)
    settings = ServeSettings(data_dir=base.data_dir, models_dir=base.models_dir, limits=limits,
                             store_path=base.store_path)
    return replace(settings, **overrides)


def settings_to_json(settings: ServeSettings) -> dict[str, Any]:
    """The settings as a JSON-able dict (paths as strings, limits as an object), e.g. for worker processes."""
    doc = asdict(settings)
    doc["data_dir"], doc["models_dir"] = str(settings.data_dir), str(settings.models_dir)
    doc["store_path"], doc["models"] = str(settings.store_path), list(settings.models)
    return doc


def settings_from_json(doc: dict[str, Any]) -> ServeSettings:
    """Inverse of :func:`settings_to_json`."""
    values = dict(doc)
    values["limits"] = Limits(**values.get("limits", {}))
    values["data_dir"], values["models_dir"] = Path(values["data_dir"]), Path(values["models_dir"])
    values["models"] = tuple(values.get("models", ()))
    return ServeSettings(**values)
