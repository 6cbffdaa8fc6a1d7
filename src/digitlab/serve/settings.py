"""The web server's settings: one typed, immutable object.

:func:`serve_settings` builds it from, in increasing precedence, the defaults,
the library's locations (:func:`digitlab.settings.get_settings`), the
``DIGITLAB_*`` environment variables and keyword overrides (what the CLI's
flags give), so the CLI, the tests and the benchmark all configure the server
the same way. Every bound on a request's size is in
:attr:`ServeSettings.limits`, the :class:`~digitlab.limits.Limits` that the
request schemas and :mod:`digitlab.preprocess` read too; a limit is set by its
own name (``max_body_bytes=...``, ``DIGITLAB_MAX_BODY_BYTES``,
``--max-body-bytes``).

The environment is read by pydantic-settings (:func:`environment_overrides`):
each setting and each limit is ``DIGITLAB_`` + its name in capitals, parsed and
checked as its type; lists (``cors_origins``, ``allowed_hosts``) are
comma-separated.
"""

from __future__ import annotations

import os
import typing
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import ValidationError, create_model
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from digitlab.errors import UserError
from digitlab.limits import DEFAULT_LIMITS, Limits
from digitlab.models.io import check_model_name
from digitlab.settings import get_settings

__all__ = ["ENV_PREFIX", "ServeSettings", "environment_overrides", "serve_settings", "settings_from_json",
           "settings_to_json"]

#: Prefix of the environment variables that set the server's settings and limits.
ENV_PREFIX = "DIGITLAB_"
_LIMIT_NAMES = frozenset(f.name for f in fields(Limits))
#: Settings taken from the library's locations, never from a variable of their own name.
_LOCATIONS = frozenset({"data_dir", "models_dir", "store_path"})
_LISTS = frozenset({"cors_origins", "allowed_hosts", "models"})


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
        Worker threads decoding and normalising *small* inputs (a canvas-sized picture, a short drawing).
    heavy_threads : int
        Worker threads for *expensive* inputs (large pictures, long drawings, large bodies), at a lower
        scheduling priority, so that they cannot starve small requests.
    heavy_queue : int
        Most expensive requests waiting for a heavy thread; more answer 503 at once.
    explain_threads : int
        Explanations computed at once per model, each on one core (one per core); the web page asks
        for one with every drawing.
    freeze_gc : bool
        ``gc.freeze()`` after each model load, so that full garbage collections do not walk the
        libraries' objects (shorter tail latencies). Off for servers inside test processes.
    preload : bool
        Load and check every model at start, in the background (``GET /readyz`` answers ready after);
        off, models other than the default are loaded at first use.
    reload_interval : float
        Seconds between checks of the models folder: a model whose files changed is reloaded, a deleted
        one stops being served. 0 turns the checks off.
    idle_timeout : float
        Seconds an open connection may stay silent (before its first request or between requests).
    header_timeout : float
        Seconds from a request's first byte to the end of its headers.
    body_timeout : float
        Seconds from the end of a request's headers to the end of its body.
    max_connections : int
        Most open connections (and requests in progress); beyond it requests answer 503.
    cors_origins : tuple of str
        Origins whose pages may call the API from a browser (CORS); ``*`` for any. Empty: none.
    allowed_hosts : tuple of str
        Host names accepted in the ``Host`` header besides the ones the server serves (``localhost``,
        ``127.0.0.1``, ``[::1]``, the listening host, and any IP address when listening on all
        interfaces); ``*`` accepts any. A guard against DNS rebinding.
    request_log : bool
        Log one line per request (method, path, status, milliseconds, model).
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
    heavy_threads: int = 1
    heavy_queue: int = 64
    explain_threads: int = max(1, os.cpu_count() or 1)
    freeze_gc: bool = True
    preload: bool = True
    reload_interval: float = 1.0
    idle_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 2048
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    request_log: bool = True
    models: tuple[str, ...] = ()
    serve_all: bool = False
    store_path: Path | None = None

    def __post_init__(self) -> None:
        for name in ("data_dir", "models_dir"):
            value = getattr(self, name)
            if not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        for name in _LISTS:
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise UserError(f"setting {name} must be a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
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
        for name in ("request_timeout", "idle_timeout", "header_timeout", "body_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise UserError(f"setting {name} must be > 0 seconds, got {value}")
        if isinstance(self.reload_interval, bool) or not (isinstance(self.reload_interval, (int, float))
                                                          and self.reload_interval >= 0):
            raise UserError(f"setting reload_interval must be >= 0 seconds (0: off), got {self.reload_interval}")
        for name in ("max_batch", "torch_threads", "preprocess_threads", "heavy_threads", "heavy_queue",
                     "explain_threads", "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"setting {name} must be an integer >= 1, got {value!r}")


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


def _environment_model() -> type[BaseSettings]:
    """A pydantic-settings model with one optional field per setting and per limit (``DIGITLAB_<NAME>``)."""
    from pydantic import BeforeValidator

    hints = typing.get_type_hints(ServeSettings)
    limit_hints = typing.get_type_hints(Limits)
    spec: dict[str, Any] = {}
    for f in fields(ServeSettings):
        if f.name in _LOCATIONS or f.name == "limits":
            continue
        kind = hints[f.name]
        if f.name in _LISTS:  # comma-separated, not JSON
            kind = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]
        spec[f.name] = (kind | None, None)
    for f in fields(Limits):
        spec[f.name] = (limit_hints[f.name] | None, None)
    config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=False, extra="ignore")
    model: type[BaseSettings] = create_model("ServeEnvironment", __base__=BaseSettings, __config__=None, **spec)
    model.model_config.update(config)
    return model


_ENV_MODEL: type[BaseSettings] | None = None


def environment_overrides() -> dict[str, Any]:
    """The settings and limits set by ``DIGITLAB_*`` environment variables, parsed and typed.

    Raises
    ------
    UserError
        A variable's value is not of its setting's type (the message names the variable).
    """
    global _ENV_MODEL
    if _ENV_MODEL is None:
        _ENV_MODEL = _environment_model()
    names = {f"{ENV_PREFIX}{n}".upper() for n in _ENV_MODEL.model_fields}
    if not any(k.upper() in names for k in os.environ):
        return {}
    try:
        values = _ENV_MODEL()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = f"{ENV_PREFIX}{str(first['loc'][0]).upper()}" if first.get("loc") else "a DIGITLAB_ variable"
        raise UserError(f"environment variable {name}: {first['msg']}, got {first.get('input')!r}") from None
    return {k: v for k, v in values.model_dump().items() if v is not None}


def serve_settings(data_dir: str | os.PathLike[str] | None = None,
                   home: str | os.PathLike[str] | None = None, **overrides: Any) -> ServeSettings:
    """Server settings: defaults, the library's locations, ``DIGITLAB_*`` variables, then ``overrides``.

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
    UserError
        A setting or limit out of its range, or an environment variable of the wrong type.
    """
    base = get_settings(data_dir=data_dir, home=home)
    given = {**environment_overrides(), **overrides}
    limit_overrides = {k: given.pop(k) for k in list(given) if k in _LIMIT_NAMES}
    limits = given.pop("limits", DEFAULT_LIMITS)
    if limit_overrides:
        limits = replace(limits, **limit_overrides)
    settings = ServeSettings(data_dir=base.data_dir, models_dir=base.models_dir, limits=limits,
                             store_path=base.store_path)
    return replace(settings, **given)


def settings_to_json(settings: ServeSettings) -> dict[str, Any]:
    """The settings as a JSON-able dict (paths as strings, limits as an object), e.g. for worker processes."""
    doc = asdict(settings)
    doc["data_dir"], doc["models_dir"] = str(settings.data_dir), str(settings.models_dir)
    for name in _LISTS:
        doc[name] = list(doc[name])
    doc["store_path"] = str(settings.store_path)
    return doc


def settings_from_json(doc: dict[str, Any]) -> ServeSettings:
    """Inverse of :func:`settings_to_json`."""
    values = dict(doc)
    values["limits"] = Limits(**values.get("limits", {}))
    values["data_dir"], values["models_dir"] = Path(values["data_dir"]), Path(values["models_dir"])
    for name in _LISTS:
        values[name] = tuple(values.get(name, ()))
    return ServeSettings(**values)
