"""digitlab in Jupyter: the live sketchpad widget and the rich displays of digitlab's objects.

::

    from digitlab.notebook import Sketchpad, beside

    pad = Sketchpad(model="default")     # draw; pad.prediction, pad.pixels, pad.explanation follow
    pad.observe(lambda change: print(change.new["digit"]), names="prediction")

:class:`~digitlab.notebook.sketchpad.Sketchpad` needs the ``[notebook]`` extra
(``pip install digitlab[notebook]``: anywidget and Jupyter); it is imported on
first use, so :mod:`digitlab.notebook.display` (the displays, :func:`beside`)
works without the extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Beside", "Sketchpad", "beside"]

_LAZY = {"Sketchpad": "digitlab.notebook.sketchpad", "Beside": "digitlab.notebook.display",
         "beside": "digitlab.notebook.display"}

if TYPE_CHECKING:
    from digitlab.notebook.display import Beside, beside
    from digitlab.notebook.sketchpad import Sketchpad


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562), so the displays need no widget library."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'digitlab.notebook' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name in ("anywidget", "traitlets", "ipywidgets"):
            raise ModuleNotFoundError(f"digitlab.notebook.{name} needs the notebook extra: pip install "
                                      f"'digitlab[notebook]' ({exc.name} is missing)", name=exc.name) from None
        raise
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
