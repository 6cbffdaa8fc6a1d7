"""The model card: what a saved model is, how it was made and how well it does, in one shape.

Every saved model folder holds ``card.json``, the JSON form of one
:class:`ModelCard`. It is read and written only here (:func:`read_card`,
:func:`write_card`), whoever trained the model: ``digitlab train``, the
mixture's ``dpmm fit``, a notebook through :mod:`digitlab.workflows`, or the
bundled model's recipe. Readers ask the card, never the JSON:
``card.test_accuracy`` is the MNIST test accuracy whoever wrote it.

Cards written before this format (``format_version`` 1) came in four shapes:
the CNN's training program (``train_data``, ``trained_at``,
``metrics.test``), ``digitlab train`` (``train_sha256``, ``train_size``,
``test_metrics``, ...), ``digitlab dpmm fit`` (``test_accuracy``,
``n_train``, ``chains``, ...) and hand-written ones (``metrics.test_accuracy``).
:meth:`ModelCard.from_dict` reads all of them; what it cannot place goes to
``notes`` rather than being dropped.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digitlab._io import atomic_write_text
from digitlab._json import to_jsonable
from digitlab.errors import ModelError

__all__ = ["CARD_FILE", "CARD_VERSION", "ModelCard", "TrainingData", "read_card", "utc_now", "write_card"]

#: Version of the card format written by this digitlab.
CARD_VERSION = 2
#: File name of the card inside a model folder.
CARD_FILE = "card.json"
#: Nesting deeper than this in a card is refused (a crafted card must not exhaust the stack).
_MAX_DEPTH = 64


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string to the second, as cards record it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class TrainingData:
    """What a model was trained on.

    Attributes
    ----------
    dataset : str
        ``mnist_train``, a store table, a file or folder, or several joined by ``+``.
    n : int
        Training images.
    sha256 : str, optional
        Of the training pixels (uint8) followed by the labels (int64), as
        :func:`digitlab.workflows.data_checksum` computes it.
    where : str, optional
        SQL condition that selected the rows.
    sample : int, optional
        Size of the stratified sample asked for, when one was taken.
    class_counts : dict of str to int
        Training images per label.
    sources : dict of str to str
        Checksums of the source files or datasets behind ``dataset`` (for
        example the MNIST files and the pen data), by name.
    calibration : dict
        The images held out of the selection to calibrate the probabilities
        (:func:`digitlab.workflows.train`): ``n``, ``fraction``, ``seed``,
        ``sha256`` (as ``sha256``), ``method`` and the fitted ``temperature``
        with the Brier score, log-loss and ECE on those images before and after; or ``skipped`` saying why none
        were. ``n``, ``sha256`` and ``class_counts`` above are of the whole training
        selection: the model was fitted on all of it but these.
    """

    dataset: str
    n: int
    sha256: str | None = None
    where: str | None = None
    sample: int | None = None
    class_counts: Mapping[str, int] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    calibration: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelCard:
    """A saved model's description.

    Attributes
    ----------
    model : str
        The registered estimator name (``cnn``, ``logreg``, ...; see :data:`digitlab.models.MODELS`).
    params : dict
        The estimator's ``get_params()``.
    meta : dict
        The JSON half of the estimator's learned state (``get_state()``); the arrays are in the weights file.
    created : str, optional
        When the model was saved, ISO 8601 UTC.
    digitlab_version : str, optional
    command : str, optional
        A command line that reproduces the model.
    seed : int, optional
        The seed of the sample, folds and model.
    run : str, optional
        The run that trained it (``digitlab runs``).
    train : TrainingData, optional
    train_seconds : float, optional
        Wall time of ``fit``.
    machine : str, optional
        Where it was trained (cores, architecture, torch threads).
    metrics : dict of str to dict
        Measured results by evaluation set. ``metrics["test"]`` is the MNIST
        test set: at least ``accuracy`` and ``n``; ``dataset`` names the set.
    notes : dict
        Facts particular to a family (the mixture's chains, how an int8 graph
        was calibrated, ...) and anything an older card held that has no
        field here.
    format_version : int
    """

    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    created: str | None = None
    digitlab_version: str | None = None
    command: str | None = None
    seed: int | None = None
    run: str | None = None
    train: TrainingData | None = None
    train_seconds: float | None = None
    machine: str | None = None
    metrics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    notes: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = CARD_VERSION

    @property
    def test_metrics(self) -> Mapping[str, Any]:
        """Metrics on the MNIST test set (empty when never measured)."""
        return self.metrics.get("test", {})

    @property
    def test_accuracy(self) -> float | None:
        """Accuracy on the MNIST test set, or None when never measured."""
        value = self.test_metrics.get("accuracy")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def _repr_html_(self) -> str:
        from digitlab.notebook.display import card_html
        return card_html(self)

    def replace(self, **changes: Any) -> ModelCard:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-able values, every field present (None where unknown)."""
        doc = to_jsonable(dataclasses.asdict(self))
        assert isinstance(doc, dict)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ModelCard:
        """Read a card of any format version so far.

        Raises
        ------
        ModelError
            Not a card: not an object, no model name, a field of the wrong type,
            or a format version newer than this digitlab knows.
        """
        if not isinstance(doc, Mapping):
            raise ModelError(f"a model card must be a JSON object, got {type(doc).__name__}")
        version = doc.get("format_version")
        if version == 1:
            try:
                doc = _migrate_v1(doc)
            except (TypeError, ValueError) as exc:  # e.g. a training-set size that is not a number
                raise ModelError(f"the model card's training data are malformed ({exc})") from None
        elif version != CARD_VERSION:
            raise ModelError(f"model card format version {version!r} is not supported (this digitlab reads 1 and "
                             f"{CARD_VERSION}); retrain the model with this version of digitlab")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        unknown = {k: v for k, v in doc.items() if k not in known}
        if unknown:
            values["notes"] = {**_mapping(values.get("notes"), "notes"), **unknown}
        if not isinstance(values.get("model"), str) or not values["model"]:
            raise ModelError(f"the model card names no model type (model = {values.get('model')!r})")
        for name in ("params", "meta", "metrics", "notes"):
            values[name] = _mapping(values.get(name), name)
        for name, metrics in values["metrics"].items():
            _mapping(metrics, f"metrics.{name}")
        train = values.get("train")
        if train is not None:
            train = dict(_mapping(train, "train"))
            try:
                values["train"] = TrainingData(**train)
            except TypeError as exc:
                raise ModelError(f"the model card's 'train' entry is malformed: {exc}") from None
            _check_training_data(values["train"])
        for name, kind in (("created", str), ("digitlab_version", str), ("command", str), ("run", str),
                           ("machine", str), ("seed", int), ("train_seconds", (int, float))):
            value = values.get(name)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise ModelError(f"the model card's {name!r} must be {_kind_name(kind)}, got {value!r}")
        values["format_version"] = CARD_VERSION
        return cls(**values)


def _check_training_data(train: TrainingData) -> None:
    for name, kind, optional in (("dataset", str, False), ("n", int, False), ("sha256", str, True),
                                 ("where", str, True), ("sample", int, True)):
        value = getattr(train, name)
        if (value is None and not optional) or (value is not None and (not isinstance(value, kind)
                                                                       or isinstance(value, bool))):
            raise ModelError(f"the model card's 'train.{name}' must be {_kind_name(kind)}, got {value!r}")
    for name in ("class_counts", "sources", "calibration"):
        _mapping(getattr(train, name), f"train.{name}")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return "a number" if isinstance(kind, tuple) else {"str": "a string", "int": "an integer"}[kind.__name__]


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ModelError(f"the model card's {name!r} must be a JSON object, got {type(value).__name__}")
    return value


def _migrate_v1(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 card (any of its four shapes) in version-2 keys."""
    old = dict(doc)
    new: dict[str, Any] = {k: old.pop(k) for k in ("model", "params", "meta", "command", "seed", "run", "machine",
                                                   "train_seconds", "digitlab_version", "created") if k in old}
    old.pop("format_version", None)
    if "trained_at" in old:  # the CNN's training program
        new.setdefault("created", old.pop("trained_at"))
    metrics: dict[str, Any] = {}
    for name, value in dict(_mapping(old.pop("metrics", None), "metrics")).items():
        if name == "test_accuracy":  # hand-written: {"metrics": {"test_accuracy": 0.8}}
            metrics.setdefault("test", {})["accuracy"] = value
        else:
            metrics[name] = value
    if "test_metrics" in old:  # digitlab train
        metrics["test"] = {"dataset": "mnist_test", **_mapping(old.pop("test_metrics"), "test_metrics")}
    if "test_accuracy" in old:  # digitlab dpmm fit
        test = {"dataset": "mnist_test", "accuracy": old.pop("test_accuracy")}
        if "n_test" in old:
            test["n"] = old.pop("n_test")
        metrics["test"] = test
    if isinstance(metrics.get("test"), Mapping) and metrics["test"].get("dataset") == "mnist":
        test = dict(metrics["test"])
        test["dataset"] = f"mnist_{test.pop('split', 'test')}"
        metrics["test"] = test
    new["metrics"] = metrics
    if isinstance(old.get("train_data"), Mapping):  # the CNN's training program
        data = dict(old.pop("train_data"))
        dataset = data.get("dataset", "mnist")
        split = data.get("split")
        new["train"] = {"dataset": f"{dataset}_{split}" if dataset == "mnist" and split else str(dataset),
                        "n": int(data.get("n", 0)), "sha256": data.get("sha256")}
    elif "train_size" in old or "n_train" in old:  # digitlab train / dpmm fit
        sampled = bool(old.pop("train_sampled", False))
        n = int(old.pop("train_size", old.pop("n_train", 0)) or 0)
        new["train"] = {"dataset": str(old.pop("dataset", None) or "mnist_train"), "n": n,
                        "sha256": old.pop("train_sha256", None), "where": old.pop("where", None),
                        "sample": n if sampled else None,
                        "class_counts": dict(_mapping(old.pop("train_class_counts", None), "train_class_counts"))}
    new["notes"] = old  # int8 calibration, the mixture's chains and digits, ...
    new["format_version"] = CARD_VERSION
    return new


def _check_depth(value: Any, depth: int = 0) -> None:
    """Refuse JSON nested deeper than :data:`_MAX_DEPTH` (iteratively: no recursion to exhaust)."""
    stack = [(value, depth)]
    while stack:
        item, d = stack.pop()
        if d > _MAX_DEPTH:
            raise ModelError(f"the model card is nested deeper than {_MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)


def read_card(folder: str | os.PathLike[str]) -> ModelCard:
    """Read ``card.json`` of the model folder ``folder``.

    Raises
    ------
    ModelError
        No card, not JSON, nested absurdly deep, or not a card (see :meth:`ModelCard.from_dict`).
        The message names the folder.
    """
    path = Path(folder) / CARD_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"{Path(folder).name}: no {CARD_FILE}; not a digitlab model folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{Path(folder).name}: cannot read {CARD_FILE} ({exc})") from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ModelError(f"{Path(folder).name}: {CARD_FILE} is nested too deeply") from None
    except ValueError as exc:
        raise ModelError(f"{Path(folder).name}: {CARD_FILE} is not valid JSON ({exc})") from None
    try:
        _check_depth(doc)
        return ModelCard.from_dict(doc)
    except ModelError as exc:
        raise ModelError(f"{Path(folder).name}: {exc}") from None


def write_card(folder: str | os.PathLike[str], card: ModelCard) -> Path:
    """Write ``card`` as ``card.json`` into ``folder``, atomically; returns the file's path."""
    path = Path(folder) / CARD_FILE
    atomic_write_text(path, json.dumps(card.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return path
