"""Save and load models without pickle: ``weights.safetensors`` + ``card.json``.

A saved model is a folder ``$DIGITLAB_HOME/models/NAME/`` holding

* ``weights.safetensors``: the arrays of :meth:`DigitClassifier.get_state`;
* ``card.json``: the :class:`~digitlab.models.card.ModelCard`: registered
  model name, parameters, the JSON half of the learned state, and how the
  model was made and how well it does.

Loading only ever builds classes registered in :data:`digitlab.models.MODELS`,
so a model file cannot make digitlab run arbitrary code. The name ``default``
resolves to the model bundled inside the package when no user model has it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitlab._io import atomic_dir
from digitlab.errors import ModelError, NotFoundError, ParameterError, UserError
from digitlab.models import MODELS, model_class, model_name_of
from digitlab.models.card import CARD_FILE, ModelCard, read_card, write_card

if TYPE_CHECKING:
    from digitlab.models.base import DigitClassifier  # imports scikit-learn: not needed to find a model

__all__ = ["BUNDLED", "LoadedModel", "ModelEntry", "bundled_dir", "check_model_name", "list_models", "load_model",
           "model_path", "save_model"]

BUNDLED = "default"
WEIGHTS_FILE = "weights.safetensors"
#: A model name: what the CLI, the API and the models folder all accept.
MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class LoadedModel:
    """A fitted estimator with its card.

    Attributes
    ----------
    name : str
    estimator : DigitClassifier
    card : ModelCard
    path : Path
        The model folder.
    """

    name: str
    estimator: DigitClassifier
    card: ModelCard
    path: Path


@dataclass(frozen=True)
class ModelEntry:
    """One model a models folder offers: its card, or why the card cannot be read.

    Attributes
    ----------
    name : str
    path : Path
    card : ModelCard or None
        None when the card is unreadable (``error`` says why).
    error : str or None
    """

    name: str
    path: Path
    card: ModelCard | None
    error: str | None = None


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`UserError` stating the rule.

    A name is 1 to 64 letters, digits, ``_``, ``.`` and ``-``, not starting with
    ``.`` or ``-``: the same rule for ``digitlab train --name``, the API's
    ``model`` fields and the folders of ``models/``.
    """
    if not isinstance(name, str) or not MODEL_NAME.match(name):
        raise UserError("a model name must be 1-64 letters, digits, '_', '.' or '-', not starting with '.' or "
                        f"'-'; got {name!r}")
    return name


def bundled_dir() -> Path:
    """Folder of the default model shipped inside the package."""
    return Path(str(resources.files("digitlab") / "bundled" / BUNDLED))


def model_path(name: str, models_dir: str | os.PathLike[str]) -> Path:
    """Folder of the model ``name``: the user's, else the bundled default.

    Raises
    ------
    UserError
        ``name`` breaks the naming rule (:func:`check_model_name`).
    NotFoundError
        No model of that name; the message lists the known ones.
    """
    check_model_name(name)
    p = Path(models_dir) / name
    if (p / CARD_FILE).is_file():
        return p
    if name == BUNDLED and (bundled_dir() / CARD_FILE).is_file():
        return bundled_dir()
    known = ", ".join(m.name for m in list_models(models_dir)) or "none"
    raise NotFoundError(f"no model named {name!r}; known: {known}")


def save_model(estimator: DigitClassifier, path: str | os.PathLike[str], card: ModelCard | None = None) -> Path:
    """Save a fitted estimator and its card into folder ``path``, atomically.

    The card's ``model``, ``params`` and ``meta`` are always taken from the
    estimator; its other fields from ``card``. The folder is written beside the
    target and renamed into place; an existing model of the same name is
    replaced only once the new one is whole.

    Returns
    -------
    Path
        ``path``.
    """
    from safetensors.numpy import save

    arrays, meta = estimator.get_state()
    meta = {**meta, **estimator.shared_state()}  # input scale and calibration, the same for every family
    full = (card or ModelCard(model=model_name_of(estimator))).replace(
        model=model_name_of(estimator), params=estimator.get_params(deep=False), meta=meta)
    target = Path(path)
    with atomic_dir(target) as tmp:
        # as bytes through a plain write, so the file gets the user's umask (safetensors' save_file writes 0600)
        (tmp / WEIGHTS_FILE).write_bytes(save({k: np.ascontiguousarray(v) for k, v in arrays.items()}))
        write_card(tmp, full)
    return target


def load_model(path: str | os.PathLike[str], name: str | None = None) -> LoadedModel:
    """Load the model saved in folder ``path``.

    Raises
    ------
    ModelError
        The files are missing, corrupt, of another format version, name an
        unregistered model, or do not fit together (arrays of the wrong shape,
        parameters of the wrong type). The message names the model, not the path.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    p = Path(path)
    label = name or p.name
    card = read_card(p)
    if card.model not in MODELS:
        raise ModelError(f"{label}: unknown model type {card.model!r}")
    try:
        arrays = load_file(str(p / WEIGHTS_FILE))
    except FileNotFoundError:
        raise ModelError(f"{label}: {WEIGHTS_FILE} is missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{label}: corrupt weights ({exc})") from None
    try:
        est = model_class(card.model).from_state(dict(card.params), arrays, dict(card.meta))
        est.set_shared_state(dict(card.meta))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ParameterError, UserError) as exc:
        raise ModelError(f"{label}: the weights do not match the model card ({type(exc).__name__}: {exc})") from None
    return LoadedModel(name=label, estimator=est, card=card, path=p)


def list_models(models_dir: str | os.PathLike[str]) -> list[ModelEntry]:
    """The saved models (and the bundled default), sorted by name; unreadable cards carry their error."""
    found: dict[str, ModelEntry] = {}
    if (bundled_dir() / CARD_FILE).is_file():
        found[BUNDLED] = _entry(BUNDLED, bundled_dir())
    root = Path(models_dir)
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.is_dir() and MODEL_NAME.match(d.name) and (d / CARD_FILE).is_file():
                found[d.name] = _entry(d.name, d)
    return [found[k] for k in sorted(found)]


def _entry(name: str, folder: Path) -> ModelEntry:
    try:
        return ModelEntry(name, folder, read_card(folder))
    except ModelError as exc:
        return ModelEntry(name, folder, None, str(exc))
