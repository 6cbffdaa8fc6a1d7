"""Where batch work runs: ``local`` (processes or threads of this machine) or ``ray`` (a Ray cluster).

digitlab grows no scheduler of its own: past one machine it runs on Ray, which is an optional extra
(``pip install 'digitlab[ray]'``). Nothing here imports Ray until an engine needs it, and without it
``engine="ray"`` raises a :class:`~digitlab.errors.UserError` saying how to install it.

:func:`ray_session` joins the cluster named by ``address`` (``auto``: the one this machine belongs to; else
``$RAY_ADDRESS``) or, with neither, starts Ray on this machine for the duration of the work; a Ray that the
caller already started (``ray.init(...)``) is used as it is and left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from digitlab.errors import DigitlabError, UserError

__all__ = ["ENGINES", "LOOPBACK_ONLY", "RAY_INSTALL", "check_engine", "check_ray", "ray_available", "ray_session",
           "require_ray"]

#: The engines, in the order the CLI lists them.
ENGINES = ("local", "ray")
#: How to get Ray: the message of ``--engine ray`` without it.
RAY_INSTALL = "pip install 'digitlab[ray]'"
#: Ray's switch that keeps a single-machine Ray's node on 127.0.0.1 (set to "0" before ``import ray``).
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def check_engine(engine: str) -> str:
    """Return ``engine`` if it is one of :data:`ENGINES`, else raise :class:`UserError`."""
    if engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


def ray_available() -> bool:
    """Whether Ray (with Ray Data and Ray Tune) can be imported."""
    try:
        require_ray()
    except UserError:
        return False
    return True


def check_ray() -> None:
    """Raise the :func:`require_ray` error when Ray is not installed, without importing it."""
    import importlib.util

    try:
        found = sys.modules.get("ray", False) is not None and importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UserError(f"--engine ray needs Ray, which is not installed (ray): {RAY_INSTALL}")


def require_ray() -> ModuleType:
    """The ``ray`` module, checked to have Ray Data and Ray Tune.

    Raises
    ------
    UserError
        Ray is not installed (or without its ``data`` and ``tune`` parts); the message says how to install it.
    """
    try:
        import ray
        import ray.data
        import ray.tune
    except ImportError as exc:
        raise UserError(f"--engine ray needs Ray, which is not installed ({exc.name or exc}): {RAY_INSTALL}") \
            from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[ModuleType]:
    """Yield ``ray`` connected to a cluster: the caller's, ``address``'s, ``$RAY_ADDRESS``'s or a local one.

    A Ray started here is shut down at the end; one already running in this process is left as it is.
    """
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target is None and "ray" not in sys.modules:
        # A Ray of our own, for one machine: its node on the loopback interface (Ray reads this when imported).
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, object] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if target is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=target or "local", **options)  # "local": a new Ray, never a stale `ray start` one
    except Exception as exc:  # Ray raises plain Exception when its processes time out starting
        if target is not None:
            raise UserError(f"cannot reach the Ray cluster at {target!r}: {exc}") from None
        raise DigitlabError(f"Ray did not start on this machine: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
