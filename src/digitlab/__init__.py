"""digitlab: handwritten digit recognition as a workbench and a service.

The library is what the CLI, the HTTP server and notebooks share::

    import digitlab

    x, y = digitlab.load_mnist(split="train")
    model = digitlab.make_model("centroid").fit(x, y)
    cnn = digitlab.load_model(digitlab.bundled_dir()).estimator
    digit = cnn.predict(digitlab.load_image("my-seven.png")[None])[0]
    result = digitlab.train(digitlab.TrainSpec(model="logreg", train_size=1000))

Names are imported lazily on first use, so ``import digitlab`` is cheap and
torch is loaded only when a CNN is.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "DataError": "digitlab.errors",
    "DigitlabError": "digitlab.errors",
    "ModelError": "digitlab.errors",
    "NoInkError": "digitlab.errors",
    "NotFoundError": "digitlab.errors",
    "ParameterError": "digitlab.errors",
    "TooLargeError": "digitlab.errors",
    "UserError": "digitlab.errors",
    "Limits": "digitlab.limits",
    "Settings": "digitlab.settings",
    "get_settings": "digitlab.settings",
    "load_mnist": "digitlab.data",
    "read_dataset": "digitlab.data",
    "Store": "digitlab.store",
    "DigitClassifier": "digitlab.models.base",
    "make_model": "digitlab.models",
    "ModelCard": "digitlab.models.card",
    "LoadedModel": "digitlab.models.io",
    "bundled_dir": "digitlab.models.io",
    "load_model": "digitlab.models.io",
    "save_model": "digitlab.models.io",
    "load_image": "digitlab.preprocess",
    "render_strokes": "digitlab.preprocess",
    "to_mnist": "digitlab.preprocess",
    "read_number": "digitlab.read",
    "Explanation": "digitlab.explain",
    "explain": "digitlab.explain",
    "Evaluation": "digitlab.evaluate",
    "evaluate": "digitlab.evaluate",
    "TrainSpec": "digitlab.workflows",
    "train": "digitlab.workflows",
}

__all__ = [
    "DataError",
    "DigitClassifier",
    "DigitlabError",
    "Evaluation",
    "Explanation",
    "Limits",
    "LoadedModel",
    "ModelCard",
    "ModelError",
    "NoInkError",
    "NotFoundError",
    "ParameterError",
    "Settings",
    "Store",
    "TooLargeError",
    "TrainSpec",
    "UserError",
    "__version__",
    "bundled_dir",
    "evaluate",
    "explain",
    "get_settings",
    "load_image",
    "load_mnist",
    "load_model",
    "make_model",
    "read_dataset",
    "read_number",
    "render_strokes",
    "save_model",
    "to_mnist",
    "train",
]

if TYPE_CHECKING:
    from digitlab.data import load_mnist, read_dataset
    from digitlab.errors import (
        DataError,
        DigitlabError,
        ModelError,
        NoInkError,
        NotFoundError,
        ParameterError,
        TooLargeError,
        UserError,
    )
    from digitlab.evaluate import Evaluation, evaluate
    from digitlab.explain import Explanation, explain
    from digitlab.limits import Limits
    from digitlab.models import make_model
    from digitlab.models.base import DigitClassifier
    from digitlab.models.card import ModelCard
    from digitlab.models.io import LoadedModel, bundled_dir, load_model, save_model
    from digitlab.preprocess import load_image, render_strokes, to_mnist
    from digitlab.settings import Settings, get_settings
    from digitlab.store import Store
    from digitlab.workflows import TrainSpec, train


class _Package(types.ModuleType):
    """The ``digitlab`` module, whose functions ``evaluate`` and ``explain`` share their names with submodules.

    Importing a submodule binds it on its package, so once anything had imported ``digitlab.evaluate``
    (``digitlab.workflows`` does) ``digitlab.evaluate(...)`` would be a module, not the function, and a
    notebook's call would fail depending on what ran before. The public function keeps the name; the
    submodule stays importable as ``digitlab.evaluate`` (``from digitlab.evaluate import Evaluation``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'digitlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
