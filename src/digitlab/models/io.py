"""Save and load models without pickle: ``weights.safetensors`` + ``card.json``, one folder per version.

Each model name has numbered versions, ``$DIGITLAB_HOME/models/NAME/v1``,
``v2``, ...: training under a name again adds a version (:func:`save_version`)
and never overwrites one, so a recorded run keeps the model it made. ``NAME``
means the latest version and ``NAME@vN`` (or ``NAME@N``) a given one
(:func:`model_path`, :func:`parse_model_ref`). A folder of the older flat
layout (``models/NAME/card.json``) is read as version 1 and moved into
``NAME/v1`` when the next version is saved. A model version folder holds

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
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitlab._io import atomic_dir, stale_copies
from digitlab.errors import ModelError, NotFoundError, ParameterError, UserError
from digitlab.models import MODELS, model_class, model_name_of
from digitlab.models.card import CARD_FILE, ModelCard, read_card, write_card

if TYPE_CHECKING:
    from digitlab.models.base import DigitClassifier  # imports scikit-learn: not needed to find a model

__all__ = ["BUNDLED", "LoadedModel", "ModelEntry", "bundled_dir", "check_model_name", "check_writable", "list_models",
           "load_model", "model_path", "model_versions", "parse_model_ref", "remove_model", "reserve_version",
           "save_model", "save_version"]

BUNDLED = "default"
WEIGHTS_FILE = "weights.safetensors"
#: A model name: what the CLI, the API and the models folder all accept.
MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
#: A version folder inside a model's folder.
VERSION_DIR = re.compile(r"^v([1-9][0-9]{0,8})$")


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

    def _repr_html_(self) -> str:
        from digitlab.notebook.display import loaded_model_html
        return loaded_model_html(self)


@dataclass(frozen=True)
class ModelEntry:
    """One model a models folder offers: its card, or why the card cannot be read.

    Attributes
    ----------
    name : str
    path : Path
        The latest version's folder.
    card : ModelCard or None
        None when the card is unreadable (``error`` says why).
    error : str or None
    version : int or None
        The latest version (None for the bundled model).
    versions : tuple of int
        Every saved version, oldest first.
    """

    name: str
    path: Path
    card: ModelCard | None
    error: str | None = None
    version: int | None = None
    versions: tuple[int, ...] = ()


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


def check_writable(folder: str | os.PathLike[str], what: str = "folder") -> Path:
    """Return ``folder`` if digitlab can create files in it (creating it if needed), else raise :class:`UserError`.

    Checked by creating and removing a temporary folder inside it, so a
    read-only mount, missing permissions or a file in the way are all found
    (``os.access`` is not enough: it says yes to root on a read-only mount).
    Called before training so that a model is never trained only to be
    refused when it is saved.
    """
    import tempfile

    p = Path(folder)
    try:
        p.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".digitlab-write-check.", dir=p))
    except OSError as exc:
        raise UserError(f"the {what} {p} is not writable ({exc.strerror or type(exc).__name__}); "
                        "choose another with --home or --out") from None
    return p


def bundled_dir() -> Path:
    """Folder of the default model shipped inside the package."""
    return Path(str(resources.files("digitlab") / "bundled" / BUNDLED))


def parse_model_ref(ref: str) -> tuple[str, int | None]:
    """Split ``NAME``, ``NAME@vN`` or ``NAME@N`` into the name and the version (None for the latest).

    Raises
    ------
    UserError
        A bad name (:func:`check_model_name`) or version.
    """
    name, at, version = str(ref).partition("@")
    check_model_name(name)
    if not at:
        return name, None
    m = re.fullmatch(r"v?([1-9][0-9]{0,8})", version)
    if m is None:
        raise UserError(f"a model version is written NAME@vN with N a positive integer (e.g. {name}@v2); "
                        f"got {ref!r}")
    return name, int(m.group(1))


def _is_flat(folder: Path) -> bool:
    """A model folder of the layout before versions: the card in ``models/NAME`` itself."""
    return (folder / CARD_FILE).is_file()


def model_versions(name: str, models_dir: str | os.PathLike[str]) -> dict[int, Path]:
    """The saved versions of model ``name`` and their folders, oldest first (a flat folder is version 1)."""
    folder = Path(models_dir) / check_model_name(name)
    found: dict[int, Path] = {}
    if _is_flat(folder):
        found[1] = folder
    if folder.is_dir():
        for d in folder.iterdir():
            m = VERSION_DIR.match(d.name)
            if m and (d / CARD_FILE).is_file():
                found.setdefault(int(m.group(1)), d)
    return dict(sorted(found.items()))


def model_path(name: str, models_dir: str | os.PathLike[str]) -> Path:
    """Folder of the model ``name``: its latest version, ``NAME@vN`` a given one; else the bundled default.

    Raises
    ------
    UserError
        ``name`` breaks the naming rule (:func:`check_model_name`).
    NotFoundError
        No model of that name or version; the message lists the known ones.
    """
    base, version = parse_model_ref(name)
    versions = model_versions(base, models_dir)
    if versions:
        if version is None:
            return versions[max(versions)]
        if version in versions:
            return versions[version]
        raise NotFoundError(f"model {base!r} has no version {version}; it has "
                            + ", ".join(f"v{v}" for v in versions))
    recovered = _recovered(Path(models_dir) / base) if version is None else None
    if recovered is not None:
        return recovered
    if base == BUNDLED and version in (None, 1) and (bundled_dir() / CARD_FILE).is_file():
        return bundled_dir()
    known = ", ".join(m.name for m in list_models(models_dir)) or "none"
    raise NotFoundError(f"no model named {base!r}; known: {known}")


def _migrate_flat(folder: Path) -> None:
    """Move a flat model folder's files into ``folder/v1``.

    Each file is renamed (never copied) into ``.v1.migrating``, the card last,
    and the folder then renamed to ``v1``: an interruption leaves every file
    in one of the two places, none lost.
    """
    if not _is_flat(folder):
        return
    staging = folder / ".v1.migrating"
    staging.mkdir(exist_ok=True)
    items = [p for p in folder.iterdir() if not p.name.startswith(".") and not VERSION_DIR.match(p.name)]
    for item in sorted(items, key=lambda p: p.name == CARD_FILE):
        os.replace(item, staging / item.name)
    os.replace(staging, folder / "v1")


def save_version(estimator: DigitClassifier, models_dir: str | os.PathLike[str], name: str,
                 card: ModelCard | None = None) -> tuple[Path, int]:
    """Save a fitted estimator as the next version of model ``name`` (``models/NAME/vN``).

    Earlier versions stay as they are; a flat folder of the older layout is
    moved into ``v1`` first.

    Returns
    -------
    (Path, int)
        The new version's folder and number.
    """
    target, version = reserve_version(models_dir, name)
    try:
        return save_model(estimator, target, card), version
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def reserve_version(models_dir: str | os.PathLike[str], name: str) -> tuple[Path, int]:
    """Claim the next version number of model ``name``: an empty ``models/NAME/vN`` folder, not yet listed.

    The folder counts as a version once :func:`save_model` has written its card
    into it; a concurrent save claims the number after. A flat folder of the
    older layout is moved into ``v1`` first.

    Returns
    -------
    (Path, int)
        The claimed folder and its number.
    """
    folder = Path(models_dir) / check_model_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    _migrate_flat(folder)
    version = max(model_versions(name, models_dir), default=0) + 1
    while True:
        target = folder / f"v{version}"
        try:
            target.mkdir()  # claims the number: a concurrent save takes the next one
        except FileExistsError:
            version += 1
            continue
        return target, version


def remove_model(ref: str, models_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete a saved model's version (``NAME@vN``) or all its versions (``NAME``); returns the folders removed.

    Raises
    ------
    NotFoundError
        No such saved model or version (the bundled default cannot be removed).
    """
    name, version = parse_model_ref(ref)
    versions = model_versions(name, models_dir)
    if not versions:
        extra = " (the bundled default is part of the package and cannot be removed)" if name == BUNDLED else ""
        raise NotFoundError(f"no saved model named {name!r}{extra}")
    if version is not None and version not in versions:
        raise NotFoundError(f"model {name!r} has no version {version}; it has "
                            + ", ".join(f"v{v}" for v in versions))
    folder = Path(models_dir) / name
    if version is None or (len(versions) == 1 and versions[version] == folder):
        shutil.rmtree(folder)
        return [folder]
    target = versions[version]
    if target == folder:  # a flat folder holding v1 beside newer versions: move it aside first
        _migrate_flat(folder)
        target = folder / "v1"
    shutil.rmtree(target)
    if not model_versions(name, models_dir):
        shutil.rmtree(folder, ignore_errors=True)
    return [target]


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
    """The saved models (latest version of each, and the bundled default), sorted by name.

    Unreadable cards carry their error.
    """
    found: dict[str, ModelEntry] = {}
    if (bundled_dir() / CARD_FILE).is_file():
        found[BUNDLED] = _entry(BUNDLED, bundled_dir())
    root = Path(models_dir)
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.is_dir() and d.name.startswith(".") and ".old" in d.name:
                name = d.name[1:].split(".old", 1)[0]
                copy = _recovered(root / name) if MODEL_NAME.match(name) and name not in found else None
                if copy is not None:
                    found[name] = _entry(name, copy)
                continue
            if not (d.is_dir() and MODEL_NAME.match(d.name)):
                continue
            versions = model_versions(d.name, root)
            if versions:
                latest = max(versions)
                found[d.name] = _entry(d.name, versions[latest], latest, tuple(versions))
    return [found[k] for k in sorted(found)]


def _recovered(folder: Path) -> Path | None:
    """The last whole copy of a model folder that an interrupted replace moved aside, when the folder is missing.

    Such a copy keeps the model usable under its name; the next save of the
    name replaces it and removes the leftovers (:func:`digitlab._io.atomic_dir`).
    """
    if folder.exists():
        return None
    for copy in stale_copies(folder):
        if (copy / CARD_FILE).is_file() and (copy / WEIGHTS_FILE).is_file():
            return copy
    return None


def _entry(name: str, folder: Path, version: int | None = None, versions: tuple[int, ...] = ()) -> ModelEntry:
    try:
        return ModelEntry(name, folder, read_card(folder), None, version, versions)
    except ModelError as exc:
        return ModelEntry(name, folder, None, str(exc), version, versions)
