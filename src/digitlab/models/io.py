"""Save and load models without pickle: ``weights.safetensors`` + ``card.json``.

A saved model is a folder ``$DIGITLAB_HOME/models/NAME/`` holding

* ``weights.safetensors``: the arrays of :meth:`DigitClassifier.get_state`;
* ``card.json``: format version, registered model name, parameters, the
  JSON metadata of ``get_state`` and the model card (training data checksum,
  train seconds, test metrics, ...).

Loading only ever builds classes registered in :data:`digitlab.models.MODELS`,
so a model file cannot make digitlab run arbitrary code. The name ``default``
resolves to the model bundled inside the package when no user model has it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from digitlab._json import to_jsonable
from digitlab.errors import ModelError, NotFoundError, UserError
from digitlab.models import MODELS, model_class, model_name_of

__all__ = ["FORMAT_VERSION", "LoadedModel", "bundled_dir", "list_models", "load_model", "model_path", "save_model"]

FORMAT_VERSION = 1
BUNDLED = "default"
_WEIGHTS = "weights.safetensors"
_CARD = "card.json"


@dataclass
class LoadedModel:
    """A fitted estimator with its card."""

    name: str
    estimator: Any
    card: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def bundled_dir() -> Path:
    """Folder of the default model shipped inside the package."""
    return Path(str(resources.files("digitlab") / "bundled" / BUNDLED))


def model_path(name: str, models_dir: str | os.PathLike[str]) -> Path:
    """Folder of the model ``name``: the user's, else the bundled default."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise UserError(f"model name must be a plain name without slashes, got {name!r}")
    p = Path(models_dir) / name
    if (p / _CARD).is_file():
        return p
    if name == BUNDLED and (bundled_dir() / _CARD).is_file():
        return bundled_dir()
    known = ", ".join(m["name"] for m in list_models(models_dir)) or "none"
    raise NotFoundError(f"no model named {name!r} in {models_dir}; known: {known}")


def save_model(estimator: Any, path: str | os.PathLike[str], card: dict[str, Any] | None = None) -> Path:
    """Save a fitted estimator and its card into folder ``path``, atomically.

    The folder is written beside the target and renamed into place; an
    existing model of the same name is replaced only once the new one is whole.
    """
    from safetensors.numpy import save_file

    target = Path(path)
    arrays, meta = estimator.get_state()
    doc = {
        "format_version": FORMAT_VERSION,
        "model": model_name_of(estimator),
        "params": estimator.get_params(deep=False),
        "meta": meta,
        **(card or {}),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / _WEIGHTS))
        (tmp / _CARD).write_text(json.dumps(to_jsonable(doc), indent=2), encoding="utf-8")
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_model(path: str | os.PathLike[str], name: str | None = None) -> LoadedModel:
    """Load the model saved in folder ``path``.

    Raises
    ------
    ModelError
        The files are missing, corrupt, of another format version, or name an
        unregistered model.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    p = Path(path)
    try:
        card = json.loads((p / _CARD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{p}: no {_CARD}; not a digitlab model folder") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{p / _CARD}: corrupt model card ({exc})") from None
    if not isinstance(card, dict) or card.get("format_version") != FORMAT_VERSION:
        version = card.get("format_version") if isinstance(card, dict) else None
        raise ModelError(f"{p}: model format version {version!r} is not supported (expected {FORMAT_VERSION}); "
                         "retrain it with this version of digitlab")
    if card.get("model") not in MODELS:
        raise ModelError(f"{p}: unknown model type {card.get('model')!r}")
    try:
        arrays = load_file(str(p / _WEIGHTS))
    except FileNotFoundError:
        raise ModelError(f"{p}: {_WEIGHTS} is missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{p / _WEIGHTS}: corrupt weights ({exc})") from None
    try:
        est = model_class(card["model"]).from_state(card.get("params", {}), arrays, card.get("meta", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{p}: weights do not match the model card ({type(exc).__name__}: {exc})") from None
    return LoadedModel(name=name or p.name, estimator=est, card=card, path=p)


def list_models(models_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Cards of the saved models (and the bundled default), sorted by name."""
    out: dict[str, dict[str, Any]] = {}
    if (bundled_dir() / _CARD).is_file():
        out[BUNDLED] = {"name": BUNDLED, "path": str(bundled_dir()), **_read_card(bundled_dir())}
    root = Path(models_dir)
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and (d / _CARD).is_file():
                out[d.name] = {"name": d.name, "path": str(d), **_read_card(d)}
    return [out[k] for k in sorted(out)]


def _read_card(d: Path) -> dict[str, Any]:
    try:
        card = json.loads((d / _CARD).read_text(encoding="utf-8"))
        return card if isinstance(card, dict) else {"error": "corrupt card"}
    except (OSError, ValueError):
        return {"error": "corrupt card"}
