"""What the workbench does with models, as library calls: train, evaluate, cross-validate, learning curves.

Each workflow takes a frozen *spec* saying what to do and returns a frozen
*result*; ``digitlab train``, ``evaluate``, ``learning-curve``, ``dpmm fit``
and ``models requantize`` are each one of these calls between parsing their
options and printing the result, and a notebook makes the same calls::

    from digitlab.workflows import TrainSpec, train

    result = train(TrainSpec(model="logreg", train_size=1000))
    result.evaluation.metrics["accuracy"], result.path, result.card.command

Where things are (the MNIST folder, the store, the models folder) comes from
a :class:`~digitlab.settings.Settings` (by default :func:`~digitlab.settings.get_settings`:
``$DIGITLAB_DATA``, ``$DIGITLAB_HOME``, then the user's folders). Long work
reports through ``progress(key, completed, total, **info)``
(:data:`~digitlab.models.base.ProgressFn`); models that declare
``fit_progress`` report their own steps, the others one ``"train"`` step.

:func:`train` holds out a stratified, seeded part of the training selection
(``TrainSpec.calibration``, 5 % by default) and fits only the model's
temperature on it (:meth:`~digitlab.models.base.DigitClassifier.calibrate`),
so the probabilities mean what they say; ``card.train.calibration`` records
the split and the temperature, and the test metrics include ``ece``.

Every saved model gets the same :class:`~digitlab.models.card.ModelCard`,
whoever trained it: its ``train.sha256`` is :func:`data_checksum` of the
training images and labels, ``metrics["test"]`` the MNIST test metrics and
``command`` a ``digitlab`` command line that trains it again.

This module never imports :mod:`digitlab.cli` or :mod:`digitlab.serve`.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import platform
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from digitlab.data.select import load_dataset, load_groups, stratified_sample
from digitlab.errors import NotFoundError, ParameterError, UserError
from digitlab.evaluate import Evaluation, GroupAccuracy, evaluate, summary
from digitlab.models import make_model, model_class, model_name_of
from digitlab.models.base import CheckpointFit, DigitClassifier, ProgressFit, ProgressFn
from digitlab.models.base import softmax as _softmax
from digitlab.models.card import CARD_FILE, ModelCard, TrainingData, read_card, utc_now
from digitlab.models.cnn.drawn import DrawnTrainingSet
from digitlab.models.io import (
    BUNDLED,
    MODEL_NAME,
    LoadedModel,
    check_model_name,
    check_writable,
    load_model,
    model_path,
    model_versions,
    parse_model_ref,
    reserve_version,
    save_model,
)
from digitlab.settings import Settings, get_settings

__all__ = [
    "DRY_RUN_SIZE",
    "CrossValidateResult",
    "CrossValidateSpec",
    "CurvePoint",
    "EvaluateResult",
    "EvaluateSpec",
    "LearningCurveResult",
    "LearningCurveSpec",
    "RequantizeResult",
    "RequantizeSpec",
    "TrainResult",
    "TrainSpec",
    "cross_validate",
    "data_checksum",
    "evaluate_saved",
    "learning_curve",
    "requantize",
    "resolve_model",
    "train",
    "train_command_line",
]

#: Training and test images of a dry run (``TrainSpec(dry_run=True)``, ``digitlab train --dry-run``).
DRY_RUN_SIZE = 1000
#: The dataset every trained model is tested on.
TEST_DATASET = "mnist_test"
#: Options of ``digitlab train`` itself: a model parameter of the same name is written ``--set key=value``.
_TRAIN_OPTIONS = frozenset({"table", "where", "train_size", "seed", "name", "out", "folds", "resume", "checkpoint_dir",
                            "dry_run", "set", "format", "f", "data_dir", "home", "help", "calibration", "init"})
#: Fraction of the training selection :func:`train` holds out to calibrate probabilities (``TrainSpec.calibration``).
CALIBRATION_FRACTION = 0.05
#: What fine-tuning (``TrainSpec.init``) adds to the rows of another dataset, so that the model keeps MNIST.
REPLAY_DATASET = "mnist_train"


def _quiet(key: str, completed: float, total: float | None = None, **info: object) -> None:
    """A progress function that shows nothing."""


def data_checksum(images: np.ndarray, labels: np.ndarray) -> str:
    """The sha256 of a training set, as ``card.train.sha256`` records it.

    The digest is of the pixels as ``uint8`` in row-major order followed by
    the labels as little-endian ``int64``; the shape of ``images`` ((n, 28, 28)
    or (n, 784)) does not change it.

    Parameters
    ----------
    images : ndarray, shape (n, 28, 28) or (n, 784)
        Pixel intensities 0-255.
    labels : ndarray of int, shape (n,)

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class TrainSpec:
    """What :func:`train` trains, on which rows, and where it saves the model.

    Attributes
    ----------
    model : str
        A registered model name (``centroid``, ``logreg``, ``cnn``, ...; see :data:`digitlab.models.MODELS`).
    params : mapping of str to value
        Estimator parameters, already of their types (``{"C": 0.5}``).
    train_size : int, optional
        Train on a stratified sample of this many rows of the selection.
    dataset : str, default="mnist_train"
        ``mnist_train``, ``mnist_test``, a store table or a data file or folder.
    where : str, optional
        SQL condition over ``id``, ``label`` and ``pixels`` selecting the training rows.
    seed : int, optional
        Seed of the sample (0 when None). When given it is also the model's
        ``random_state`` or ``seed`` parameter, unless ``params`` sets that.
    name : str, optional
        Save as the next version of ``models/NAME`` (``models/NAME/vN``; default:
        the folder name of ``out``, else ``model``).
    out : path-like, optional
        Save into this folder instead of ``models/NAME``.
    save : bool, default=True
        Save the model (never for a dry run).
    record : bool, default=True
        Record a ``train`` run with its test predictions in the store (never for a dry run).
    dry_run : bool, default=False
        A quick check of the whole recipe: at most :data:`DRY_RUN_SIZE` training
        and test images, one epoch where the model has ``epochs``, the model
        saved to and loaded from a temporary folder, nothing kept.
    checkpoint_dir : path-like, optional
        For models that checkpoint (``fit_checkpoints``): where. Default
        ``models/.checkpoints/NAME`` (none for a dry run).
    resume : bool, default=False
        Continue from the last checkpoint.
    command : str, optional
        The command line recorded on the card; default :func:`train_command_line`.
    notes : mapping, optional
        Extra facts for ``card.notes``.
    calibration : float, default=CALIBRATION_FRACTION
        Fraction (in [0, 0.5)) of the training selection held out, stratified
        by label and seeded by ``seed``, to fit the model's temperature; the
        model is fitted on the rest and nothing else is refitted. 0 calibrates
        nothing; so does a selection with fewer than 2 images of some label
        (the card's ``train.calibration`` then says why).
    pen : path-like, optional
        A UNIPEN file of pen-drawn digits with writer ids (``pendigits-orig.tra.gz``):
        the CNN then trains for drawings (:mod:`digitlab.models.cnn.drawn`): the
        digits of every writer but :data:`~digitlab.pen.CALIBRATION_WRITERS` and
        :data:`~digitlab.pen.KEPT_OUT_WRITERS`, rendered as the page renders
        strokes, join the selection, every row gets stroke-style views, and the
        temperature is fitted on the calibration writers' digits instead of a
        hold-out of the selection. The time of the views counts in ``train_seconds``.
    pen_renders : int, default=4
        Renders of each pen digit (``--pen``).
    init : str, optional
        Fine-tune: start from this saved model's weights (a name, ``NAME@vN``, ``default`` for the
        bundled model, or a model folder) instead of from scratch, for models that declare
        ``fit_init`` (the CNN). The model must be of the type trained; its recipe is ``finetune``
        unless ``params`` sets one. The training rows are those of ``dataset`` plus all of MNIST
        train (unless ``dataset`` is MNIST train itself), so that the model learns the new rows
        without forgetting MNIST.
    """

    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    train_size: int | None = None
    dataset: str = "mnist_train"
    where: str | None = None
    seed: int | None = None
    name: str | None = None
    out: str | os.PathLike[str] | None = None
    save: bool = True
    record: bool = True
    dry_run: bool = False
    checkpoint_dir: str | os.PathLike[str] | None = None
    resume: bool = False
    command: str | None = None
    notes: Mapping[str, Any] = field(default_factory=dict)
    calibration: float = CALIBRATION_FRACTION
    pen: str | os.PathLike[str] | None = None
    pen_renders: int = 4
    init: str | None = None

    @property
    def model_name(self) -> str:
        """The name the model is saved and recorded under."""
        if self.name:
            return self.name
        if self.out is not None:
            return Path(self.out).resolve().name or self.model
        return self.model


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` made.

    Attributes
    ----------
    estimator : DigitClassifier
        The fitted model.
    card : ModelCard
        Its card (as saved, when saved).
    evaluation : Evaluation
        On the MNIST test set.
    name : str
    path : Path or None
        The model folder; None when not saved (``save=False`` or a dry run).
    run : str or None
        The recorded run; None when not recorded.
    version : int or None
        The version saved (``models/NAME/vN``); None with ``out`` or when not saved.
    train_seconds : float
        Wall time of ``fit``.
    train_size : int
        Training images (the selection, calibration hold-out included: see ``card.train.calibration``).
    sampled : bool
        Whether they are a stratified sample.
    dry_run : bool
    """

    estimator: DigitClassifier
    card: ModelCard
    evaluation: Evaluation
    name: str
    path: Path | None
    run: str | None
    train_seconds: float
    train_size: int
    sampled: bool
    dry_run: bool = False
    version: int | None = None

    @property
    def test_summary(self) -> dict[str, Any]:
        """The summary test metrics (:data:`digitlab.evaluate.SUMMARY_KEYS`)."""
        return summary(self.evaluation.metrics)


@dataclass(frozen=True)
class EvaluateSpec:
    """A saved model and the rows :func:`evaluate_saved` measures it on.

    Attributes
    ----------
    name : str
        A saved model's name, its latest version, or ``NAME@vN`` (``default`` is the bundled model).
    dataset : str, default="mnist_test"
        ``mnist_test``, ``mnist_train``, a store table or a data file or folder.
    where : str, optional
        SQL condition selecting the rows.
    report : path-like, optional
        Write the HTML report (:func:`digitlab.report.write_report`) into this folder.
    record : bool, default=True
        Record an ``evaluate`` run with the predictions in the store.
    by : str, optional
        A column of the dataset (``writer``, ``label``, ...): also measure the
        accuracy per value of it (:attr:`EvaluateResult.by_group`).
    """

    name: str
    dataset: str = TEST_DATASET
    where: str | None = None
    report: str | os.PathLike[str] | None = None
    record: bool = True
    by: str | None = None


@dataclass(frozen=True)
class EvaluateResult:
    """What :func:`evaluate_saved` measured.

    Attributes
    ----------
    name : str
    card : ModelCard
        The evaluated model's card.
    evaluation : Evaluation
    dataset : str
    where : str or None
    run : str or None
    report : Path or None
        ``index.html`` of the report, when written.
    version : int or None
        The version measured (None for the bundled model).
    by : str or None
        The column of :attr:`EvaluateSpec.by`.
    by_group : list of GroupAccuracy or None
        With ``by``: accuracy per value of that column, the worst first
        (:func:`digitlab.evaluate.accuracy_by`).
    """

    name: str
    card: ModelCard
    evaluation: Evaluation
    dataset: str
    where: str | None
    run: str | None
    report: Path | None
    version: int | None = None
    by: str | None = None
    by_group: list[GroupAccuracy] | None = None


@dataclass(frozen=True)
class CrossValidateSpec:
    """A K-fold experiment (:func:`cross_validate`); nothing is saved.

    Attributes
    ----------
    model : str
    folds : int, default=5
        At least 2; every label needs at least ``folds`` images.
    params, train_size, dataset, where, seed
        As in :class:`TrainSpec`; ``seed`` also shuffles the folds.
    record : bool, default=True
        Record a ``cv`` run (the per-fold, mean and std metrics) in the store.
    """

    model: str
    folds: int = 5
    params: Mapping[str, Any] = field(default_factory=dict)
    train_size: int | None = None
    dataset: str = "mnist_train"
    where: str | None = None
    seed: int | None = None
    record: bool = True


@dataclass(frozen=True)
class CrossValidateResult:
    """The metrics of each fold, and their mean and standard deviation.

    Attributes
    ----------
    model : str
    params : dict
        The estimator's parameters.
    n : int
        Images split into folds.
    folds : tuple of dict
        Per fold: the summary metrics of its held-out part and ``train_seconds``.
    mean, std : dict of str to float
        Over the folds, for every metric but ``n``.
    run : str or None
    """

    model: str
    params: dict[str, Any]
    n: int
    folds: tuple[dict[str, float], ...]
    mean: dict[str, float]
    std: dict[str, float]
    run: str | None


@dataclass(frozen=True)
class LearningCurveSpec:
    """Training sizes to measure (:func:`learning_curve`): stratified samples of MNIST train, tested on MNIST test.

    Attributes
    ----------
    model : str
    sizes : sequence of int
        Positive training sizes.
    params : mapping
    seed : int, default=0
        Seed of the samples, and the model's ``random_state``/``seed`` unless ``params`` sets it.
    plot : path-like, optional
        Write the PNG plot (:func:`digitlab.figures.learning_curve_figure`) here.
    record : bool, default=True
        Record a ``curve`` run (the points, the plot) in the store.
    """

    model: str
    sizes: Sequence[int] = (100, 500, 1000, 5000, 20000, 60000)
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    plot: str | os.PathLike[str] | None = None
    record: bool = True


@dataclass(frozen=True)
class CurvePoint:
    """One training size of a learning curve."""

    size: int
    accuracy: float
    fit_seconds: float
    predict_seconds: float


@dataclass(frozen=True)
class LearningCurveResult:
    """The measured points, smallest size first as asked.

    Attributes
    ----------
    model : str
    params : dict
        The parameters given to every fit.
    points : tuple of CurvePoint
    plot : Path or None
    run : str or None
        The recorded ``curve`` run.
    """

    model: str
    params: dict[str, Any]
    points: tuple[CurvePoint, ...]
    plot: Path | None
    run: str | None = None


@dataclass(frozen=True)
class RequantizeSpec:
    """A saved CNN whose int8 graph :func:`requantize` rebuilds.

    Attributes
    ----------
    model : str
        A saved model's name, or a model folder (see :func:`resolve_model`).
    n_calibration : int, default=1024
        MNIST training images, taken evenly, that calibrate the activations.
    """

    model: str
    n_calibration: int = 1024


@dataclass(frozen=True)
class RequantizeResult:
    """The re-saved model: its folder, new card and test metrics."""

    path: Path
    card: ModelCard
    test: Mapping[str, Any]


# ------------------------------------------------------------------------------------------- helpers


def _model_params(model: str, params: Mapping[str, Any], seed: int | None, *, dry_run: bool = False) -> dict[str, Any]:
    """``params`` with the seed as ``random_state``/``seed`` (unless set) and, for a dry run, one epoch."""
    defaults = model_class(model)().get_params()
    out = dict(params)
    if seed is not None:
        for key in ("random_state", "seed"):
            if key in defaults and key not in out:
                out[key] = seed
    if dry_run and "epochs" in defaults:
        out["epochs"] = 1
    return out


class _InitFit(Protocol):
    """``fit`` starts from another fitted model (``fit_init = True``, the CNN), and checkpoints."""

    def fit(self, X: np.ndarray, y: np.ndarray, *, progress: ProgressFn | None = None,
            checkpoint_dir: str | os.PathLike[str] | None = None, resume: bool = False,
            init: DigitClassifier | None = None) -> object:
        ...


def _fit(est: DigitClassifier, X: np.ndarray, y: np.ndarray, progress: ProgressFn, *,
         checkpoint_dir: Path | None = None, resume: bool = False, init: DigitClassifier | None = None,
         views: np.ndarray | None = None) -> float:
    """Fit ``est`` as its declared capabilities allow; returns the wall seconds.

    Raises
    ------
    ParameterError
        The estimator rejects a parameter or the data (a scikit-learn
        ``ValueError`` is the user's choice of input, so it is reported as one).
    """
    start = time.perf_counter()
    try:
        if views is not None:  # the CNN (train --pen checked it)
            cast(Any, est).fit(X, y, views=views, progress=progress, checkpoint_dir=checkpoint_dir, resume=resume,
                               init=init)
        elif init is not None:  # declared by fit_init; the CNN, which also checkpoints
            cast(_InitFit, est).fit(X, y, progress=progress, checkpoint_dir=checkpoint_dir, resume=resume, init=init)
        elif est.fit_checkpoints:
            cast(CheckpointFit, est).fit(X, y, progress=progress, checkpoint_dir=checkpoint_dir, resume=resume)
        elif est.fit_progress:
            cast(ProgressFit, est).fit(X, y, progress=progress)
        else:
            progress("train", 0, 1)
            est.fit(X, y)
            progress("train", 1, 1)
    except UserError:
        raise
    except ValueError as exc:
        raise ParameterError(f"cannot train {model_name_of(est)!r}: {exc}") from None
    return time.perf_counter() - start


@dataclass(frozen=True)
class _DrawnInputs:
    """What ``train --pen`` adds: the training set with its views, the calibration digits, what the card says."""

    training: DrawnTrainingSet
    cal_x: np.ndarray
    cal_y: np.ndarray
    calibration_writers: tuple[int, ...]
    sources: dict[str, str]
    notes: dict[str, Any]


def _drawn_inputs(spec: TrainSpec, est: DigitClassifier, images: np.ndarray, labels: np.ndarray,
                  progress: ProgressFn, data_dir: Path) -> _DrawnInputs:
    """Read the pen file and build the drawings' training set (``TrainSpec.pen``)."""
    from digitlab.data import read_unipen
    from digitlab.models.cnn.drawn import calibration_set, drawn_training_set, pen_sha256
    from digitlab.pen import CALIBRATION_WRITERS, KEPT_OUT_WRITERS

    if est.family != "cnn":
        raise UserError(f"--pen trains the CNN for drawings; {model_name_of(est)!r} takes no views")
    path = Path(spec.pen) if spec.pen is not None else Path()
    if not path.is_file():
        raise NotFoundError(f"no pen data file {str(path)!r} (a UNIPEN file such as pendigits-orig.tra.gz)")
    pen = read_unipen(path)
    if spec.dry_run:  # a few digits of every writer
        keep = np.sort(np.concatenate([np.flatnonzero(pen.writers == w)[:10] for w in np.unique(pen.writers)]))
        pen = type(pen)(strokes=tuple(pen.strokes[i] for i in keep), labels=pen.labels[keep],
                        writers=pen.writers[keep])
    n_jobs = max(1, min(2, int(getattr(est, "n_threads", None) or (os.cpu_count() or 1))))
    training = drawn_training_set(images, labels, pen, renders=int(spec.pen_renders), n_jobs=n_jobs,
                                  progress=lambda key, done, total: progress(key, done, total))
    cal_x, cal_y = calibration_set(pen, CALIBRATION_WRITERS)
    sha = pen_sha256(path)
    sources = {path.name: sha}
    if spec.dataset == "mnist_train":
        sources.update(_mnist_sources(data_dir))
    notes = {"pen": str(path), "pen_sha256": sha, "renders": int(spec.pen_renders),
             "writers_trained": list(training.writers), "calibration_writers": list(CALIBRATION_WRITERS),
             "kept_out_writers": list(KEPT_OUT_WRITERS), "mnist_rows": training.n_mnist, "pen_rows": training.n_pen,
             "views_seconds": round(training.seconds, 1),
             "views": "MNIST: constant-pen redraw, 8x8 view, itself; pen: other renders (digitlab.models.cnn.drawn)"}
    return _DrawnInputs(training, cal_x, cal_y, tuple(CALIBRATION_WRITERS), sources, notes)


def _mnist_sources(data_dir: Path) -> dict[str, str]:
    """sha256 of the MNIST training files that were read, as stored (``.gz`` or not)."""
    from digitlab.data.mnist import find_mnist

    found = find_mnist(data_dir)
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for name, path in sorted(found.items()) if name.startswith("train-")}


def calibration_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Rows to fit on and rows to calibrate on: a stratified, seeded hold-out of ``fraction`` of ``labels``.

    Returns
    -------
    fit_rows, calibration_rows : ndarray of int
        Sorted; no calibration rows when ``fraction`` is 0 or the split is impossible.
    reason : str or None
        Why nothing is held out, when nothing is.

    Raises
    ------
    UserError
        ``fraction`` is not in [0, 0.5).
    """
    if not 0 <= fraction < 0.5:
        raise UserError(f"calibration must be a fraction in [0, 0.5), got {fraction!r}")
    rows = np.arange(len(labels))
    if fraction == 0:
        return rows, rows[:0], "calibration fraction 0"
    _, counts = np.unique(labels, return_counts=True)
    size = round(fraction * len(labels))
    if counts.min() < 2 or size < len(counts):
        return rows, rows[:0], (f"too few images to hold out {fraction:g} of them with every label "
                                f"({len(labels)} images, the rarest label has {counts.min()})")
    from sklearn.model_selection import train_test_split

    fit_rows, cal_rows = train_test_split(rows, test_size=size, stratify=labels, random_state=seed)
    return np.sort(fit_rows), np.sort(cal_rows), None


def _class_counts(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {str(v): int(n) for v, n in zip(values, counts, strict=True)}


def _test_metrics(est: DigitClassifier, ev: Evaluation, seconds: float) -> dict[str, Any]:
    """``card.metrics["test"]``: the evaluation's metrics, its errors and seconds, and how the model predicted.

    A model with an ``int8`` parameter (the CNN) also records which engine
    predicted and, when it was the int8 graph, the accuracy of the float network.
    """
    test: dict[str, Any] = {"dataset": TEST_DATASET, **ev.metrics,
                            "errors": int((ev.actual != ev.predicted).sum()), "seconds": round(seconds, 2)}
    params = est.get_params()
    if "int8" in params:
        int8 = bool(params["int8"]) and getattr(est, "int8_graph_", None) is not None
        test["inference"] = "int8 (ONNX Runtime)" if int8 else "PyTorch"
        if int8:
            float_net = copy.copy(est).set_params(int8=False)
            flat = ev.images.reshape(len(ev.images), -1)
            test["pytorch_accuracy"] = float((float_net.predict(flat) == ev.actual).mean())
    return test


def _calibrate(est: DigitClassifier, images: np.ndarray, labels: np.ndarray, fraction: float, seed: int,
               reason: str | None) -> dict[str, Any]:
    """Fit ``est``'s temperature on the held-out ``images``; what ``card.train.calibration`` records."""
    if reason is not None:
        return {"n": 0, "fraction": fraction, "seed": seed, "skipped": reason}
    from digitlab.evaluate import expected_calibration_error
    from digitlab.models.calibration import brier, nll

    flat = images.reshape(len(images), -1)
    y_idx = est.calibration_target(labels)
    before = est.calibration_logits(flat)
    fitted_before = float(est.temperature_)
    est.calibrate(flat, labels)
    after = float(est.temperature_)
    return {"n": len(labels), "fraction": fraction, "seed": seed, "sha256": data_checksum(images, labels),
            "method": "temperature (Brier score)", "temperature": round(after, 6),
            "brier_before": round(brier(before, y_idx, fitted_before), 6),
            "brier_after": round(brier(before, y_idx, after), 6),
            "nll_before": round(nll(before, y_idx, fitted_before), 6), "nll_after": round(nll(before, y_idx, after), 6),
            "ece_before": round(expected_calibration_error(_softmax(before / fitted_before), y_idx), 6),
            "ece_after": round(expected_calibration_error(_softmax(before / after), y_idx), 6)}


def _machine(est: DigitClassifier) -> str:
    """Where the model was trained: cores, architecture, and the threads it used."""
    parts = [f"{os.cpu_count()} cores", platform.machine()]
    if est.family == "cnn":
        import torch

        parts.append(f"torch {torch.__version__}")
    params = est.get_params()
    if "n_threads" in params:
        parts.append(f"{params['n_threads'] or 'auto'} threads")
    elif "n_jobs" in params:
        parts.append(f"n_jobs {params['n_jobs'] or 'all cores'}")
    return ", ".join(parts)


def _epochs(est: DigitClassifier) -> list[dict[str, Any]]:
    """Per-epoch metrics of a model that trains in epochs (the CNN's ``history_``), else none."""
    history = getattr(est, "history_", None) if est.fit_checkpoints else None
    return [dict(h) for h in history] if history else []


def _model_version(ref: str, settings: Settings) -> tuple[str, int | None]:
    """The name and version a model reference means: ``NAME@vN`` as given, ``NAME`` its latest (None: bundled)."""
    name, version = parse_model_ref(ref)
    if version is None:
        versions = model_versions(name, settings.models_dir)
        version = max(versions) if versions else None
    return name, version


def _mixture_notes(est: DigitClassifier) -> dict[str, Any]:
    """The Dirichlet-process mixture's digits, images kept and chains."""
    chains = [{"chain": c, "clusters": st.n_clusters, "alpha": round(float(st.alpha), 4),
               "loglik": [round(float(v), 1) for v in st.loglik], "moves": [int(m) for m in st.moves]}
              for c, st in enumerate(est.chains_)]
    return {"digits": [int(d) for d in est.classes_], "n_train": int(est.n_train_),
            "clusters_per_chain": [c["clusters"] for c in chains], "chains": chains}


#: Facts a family adds to ``card.notes`` after fitting, by :attr:`DigitClassifier.family`.
_FAMILY_NOTES: dict[str, Callable[[DigitClassifier], dict[str, Any]]] = {"mixture": _mixture_notes}


def _option_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def train_command_line(spec: TrainSpec) -> str:
    """A ``digitlab train`` command line that trains what ``spec`` describes (no checkpoint options).

    Model parameters are written ``--key value`` (``--set key=value`` when
    ``key`` is also an option of ``digitlab train``); parameters set to None
    are left out, as None is every such parameter's default.
    """
    parts = ["digitlab", "train", spec.model]
    if spec.dataset != "mnist_train":
        parts += ["--table", spec.dataset]
    if spec.where:
        parts += ["--where", spec.where]
    if spec.train_size is not None:
        parts += ["--train-size", str(spec.train_size)]
    if spec.init is not None:
        parts += ["--init", str(spec.init)]
    if spec.seed is not None:
        parts += ["--seed", str(spec.seed)]
    if spec.calibration != CALIBRATION_FRACTION:
        parts += ["--calibration", f"{spec.calibration:g}"]
    if spec.pen is not None:
        parts += ["--pen", str(spec.pen)]
        if spec.pen_renders != 4:
            parts += ["--pen-renders", str(spec.pen_renders)]
    for key, value in spec.params.items():
        if value is None:
            continue
        if key in _TRAIN_OPTIONS:
            parts += ["--set", f"{key}={_option_value(value)}"]
        else:
            parts += [f"--{key.replace('_', '-')}", _option_value(value)]
    if spec.out is not None:
        parts += ["--out", str(spec.out)]
    elif spec.name and spec.name != spec.model:
        parts += ["--name", spec.name]
    return shlex.join(parts)


def _init_model(spec: TrainSpec, settings: Settings) -> LoadedModel:
    """The saved model ``spec.init`` that training starts from.

    Raises
    ------
    UserError
        The model type does not start from another model (no ``fit_init``), or ``init`` is of another type.
    NotFoundError
        No such model.
    """
    if not model_class(spec.model).fit_init:
        raise UserError(f"model {spec.model!r} does not support --init: it always trains from scratch (the cnn "
                        "can start from a saved cnn)")
    assert spec.init is not None
    folder, name = resolve_model(spec.init, settings)
    loaded = load_model(folder, name=name)
    if loaded.card.model != spec.model:
        raise UserError(f"--init {spec.init!r} is a {loaded.card.model!r} model; a {spec.model!r} can only start "
                        f"from a {spec.model!r}")
    return loaded


def resolve_model(name_or_folder: str | os.PathLike[str], settings: Settings | None = None) -> tuple[Path, str]:
    """The folder and name of a saved model given by name or by folder.

    A valid model name (:func:`~digitlab.models.io.check_model_name`) of a
    model in the models folder, or ``default``, is that model; otherwise an
    existing folder holding a ``card.json`` is taken as the model folder.

    Returns
    -------
    (Path, str)
        The folder and the model's name (the folder's name for a folder).

    Raises
    ------
    NotFoundError
        Neither a known model name nor a model folder.
    """
    settings = settings or get_settings()
    text = os.fspath(name_or_folder)
    base = text.partition("@")[0]
    if MODEL_NAME.match(base) and (model_versions(base, settings.models_dir) or base == BUNDLED):
        return model_path(text, settings.models_dir), text
    folder = Path(text).expanduser()
    if (folder / CARD_FILE).is_file():
        return folder, folder.resolve().name
    if MODEL_NAME.match(base):
        return model_path(text, settings.models_dir), text  # raises NotFoundError listing the known models
    raise NotFoundError(f"{text!r} is neither a saved model's name nor a model folder (a folder with {CARD_FILE})")


# ------------------------------------------------------------------------------------------ workflows


def train(spec: TrainSpec, *, settings: Settings | None = None, progress: ProgressFn | None = None) -> TrainResult:
    """Train a model, test it on MNIST test, save it with its card and record the run.

    Parameters
    ----------
    spec : TrainSpec
    settings : Settings, optional
        Default :func:`~digitlab.settings.get_settings`.
    progress : ProgressFn, optional
        Given to ``fit`` for models with ``fit_progress``, and to the test predictions.

    Returns
    -------
    TrainResult

    Raises
    ------
    NotFoundError
        Unknown model or dataset.
    UserError
        A bad name, parameter, selection or sample size; ``resume`` or
        ``checkpoint_dir`` for a model that does not checkpoint.
    """
    from digitlab import __version__
    from digitlab.runs import git_commit, new_run_id, stage_run
    from digitlab.store import Store

    began = time.perf_counter()
    settings = settings or get_settings()
    report = progress or _quiet
    cls = model_class(spec.model)
    if (spec.resume or spec.checkpoint_dir is not None) and not cls.fit_checkpoints:
        option = "--resume" if spec.resume else "--checkpoint-dir"
        raise UserError(f"model {spec.model!r} does not support {option}: its fit writes no checkpoints")
    init = _init_model(spec, settings) if spec.init is not None else None
    params = dict(spec.params)
    if init is not None and "recipe" in model_class(spec.model)().get_params():
        params.setdefault("recipe", "finetune")
    est = make_model(spec.model, **_model_params(spec.model, params, spec.seed, dry_run=spec.dry_run))
    name = spec.model_name
    saving = spec.save and not spec.dry_run
    recording = spec.record and not spec.dry_run
    store = Store(settings.store_path)
    # Everything that can be refused is refused before any work: the name, and folders that cannot be written.
    if spec.out is None and (saving or spec.name is not None):
        check_model_name(name)
    if saving:
        check_writable(Path(spec.out).parent if spec.out is not None else settings.models_dir, "models folder")
    if recording:
        check_writable(store.path.parent, "store's folder")
    images, labels, ids = load_dataset(settings, spec.dataset, spec.where)
    dataset = spec.dataset
    if init is not None and spec.dataset != REPLAY_DATASET:
        more_x, more_y, more_ids = load_dataset(settings, REPLAY_DATASET, None)
        images, labels = np.concatenate([images, more_x]), np.concatenate([labels, more_y])
        ids = np.concatenate([ids, more_ids])
        dataset = f"{spec.dataset}+{REPLAY_DATASET}"
    sample_seed = 0 if spec.seed is None else spec.seed
    size = min(spec.train_size or DRY_RUN_SIZE, DRY_RUN_SIZE) if spec.dry_run else spec.train_size
    if size is not None:
        keep = stratified_sample(labels, size, sample_seed)
        images, labels, ids = images[keep], labels[keep], ids[keep]
    drawn = None
    if spec.pen is not None:
        drawn = _drawn_inputs(spec, est, images, labels, report, settings.data_dir)
        images, labels = drawn.training.X, drawn.training.y
        cal_x, cal_y, no_calibration = drawn.cal_x, drawn.cal_y, None
        selection = TrainingData(dataset=f"{dataset}+pen", n=len(labels), sha256=data_checksum(images, labels),
                                 where=spec.where, sample=size, class_counts=_class_counts(labels),
                                 sources=drawn.sources)
    else:
        fit_rows, cal_rows, no_calibration = calibration_split(labels, float(spec.calibration), sample_seed)
        selection = TrainingData(dataset=dataset, n=len(labels), sha256=data_checksum(images, labels),
                                 where=spec.where, sample=size, class_counts=_class_counts(labels))
        cal_x, cal_y = images[cal_rows], labels[cal_rows]
        images, labels = images[fit_rows], labels[fit_rows]
    checkpoint_dir = None
    if cls.fit_checkpoints:
        if spec.checkpoint_dir is not None:
            checkpoint_dir = Path(spec.checkpoint_dir)
        elif not spec.dry_run:
            checkpoint_dir = settings.models_dir / ".checkpoints" / name

    # The test set is read before the fit: after it, nothing but the store's write can wait or fail.
    test_x, test_y, test_ids = load_dataset(settings, TEST_DATASET, None)
    if spec.dry_run:
        test_x, test_y, test_ids = test_x[:DRY_RUN_SIZE], test_y[:DRY_RUN_SIZE], test_ids[:DRY_RUN_SIZE]
    seconds = _fit(est, images.reshape(len(images), -1), labels, report, checkpoint_dir=checkpoint_dir,
                   resume=spec.resume, init=init.estimator if init is not None else None,
                   views=None if drawn is None else drawn.training.views)
    if drawn is not None:  # making the views is part of training
        seconds += drawn.training.seconds
    if spec.resume and est.fit_checkpoints:  # the epochs run before the interruption count too
        history = getattr(est, "history_", None) or []
        seconds = float(sum(h.get("seconds", 0.0) for h in history)) or seconds
    calibration = _calibrate(est, cal_x, cal_y, float(spec.calibration), sample_seed, no_calibration)
    if drawn is not None:
        calibration = {**calibration, "fraction": 0.0, "data": "pen digits of the calibration writers",
                       "writers": list(drawn.calibration_writers)}
    start = time.perf_counter()
    ev = evaluate(est, test_x, test_y, test_ids, progress=report)
    test = _test_metrics(est, ev, time.perf_counter() - start)

    run = new_run_id("train") if recording else None
    notes = {**_FAMILY_NOTES.get(est.family, lambda e: {})(est), **spec.notes}
    if drawn is not None:
        notes["drawings"] = drawn.notes
    if init is not None:
        notes["init"] = {"model": spec.init, "run": init.card.run, "train_sha256": init.card.train.sha256 if
                         init.card.train is not None else None}
    checksum = selection.sha256
    card = ModelCard(
        model=spec.model, created=utc_now(), digitlab_version=__version__,
        command=spec.command or train_command_line(spec), seed=sample_seed, run=run,
        train=dataclasses.replace(selection, calibration=calibration),
        train_seconds=round(seconds, 3), machine=_machine(est), metrics={"test": test}, notes=notes)
    path: Path | None = None
    # The run is staged beside the store before the model is saved and recorded after: a busy store (or a
    # failed save) never leaves a saved model without its run; a staged run is recorded by the next write.
    version: int | None = None
    target: Path | None = None
    if saving and spec.out is not None:
        target = Path(spec.out)
    elif saving:
        target, version = reserve_version(settings.models_dir, name)
    staged = None
    if run is not None:
        artifacts = {} if target is None else {"model": str(target), **({"version": version} if version else {})}
        staged = stage_run(store, run=run, kind="train", model_name=name if saving else None,
                           model_version=version, model_type=spec.model, params=est.get_params(),
                           dataset=spec.dataset, where=spec.where, train_seconds=seconds,
                           accuracy=ev.metrics["accuracy"], metrics=ev.metrics, ids=ev.ids, actual=ev.actual,
                           predicted=ev.predicted, probability=ev.probability, train_size=selection.n, sample=size,
                           seed=sample_seed, data_sha256=checksum, git=git_commit(),
                           duration_seconds=time.perf_counter() - began, epochs=_epochs(est), artifacts=artifacts)
    try:
        if spec.dry_run:  # the model must save and load back; nothing is kept
            with tempfile.TemporaryDirectory() as tmp:
                card = load_model(save_model(est, Path(tmp) / name, card), name=name).card
        elif target is not None:
            path = save_model(est, target, card)
            card = read_card(path)
    except BaseException:
        if staged is not None:
            shutil.rmtree(staged.path, ignore_errors=True)
        if version is not None and target is not None and not (target / "card.json").is_file():
            shutil.rmtree(target, ignore_errors=True)  # the claimed version number is given back
        raise
    if staged is not None:
        store.flush(staged)
    return TrainResult(estimator=est, card=card, evaluation=ev, name=name, path=path, run=run,
                       train_seconds=seconds, train_size=selection.n, sampled=size is not None,
                       dry_run=spec.dry_run, version=version)


def evaluate_saved(spec: EvaluateSpec, *, settings: Settings | None = None,
                   progress: ProgressFn | None = None) -> EvaluateResult:
    """Measure a saved model on a dataset, record the run and, if asked, write the HTML report.

    Raises
    ------
    NotFoundError
        No such model or dataset.
    ModelError
        The saved model is corrupt or of an unknown format.
    """
    from digitlab.runs import git_commit, new_run_id, record_run
    from digitlab.store import Store

    began = time.perf_counter()
    settings = settings or get_settings()
    name, version = _model_version(spec.name, settings)
    folder = model_path(spec.name, settings.models_dir)
    loaded = load_model(folder, name=spec.name)
    images, labels, ids = load_dataset(settings, spec.dataset, spec.where)
    groups = None if spec.by is None else load_groups(settings, spec.dataset, spec.where, spec.by, ids, labels)
    ev = evaluate(loaded.estimator, images, labels, ids, progress=progress, groups=groups)
    card = loaded.card
    run = new_run_id("evaluate") if spec.record else None
    index = None
    if spec.report is not None:
        from digitlab.report import write_report

        shown = f"{name}@v{version}" if version is not None else name
        index = write_report(spec.report, ev, title=f"{shown} on {spec.dataset}", est=loaded.estimator,
                             train_counts=card.train.class_counts if card.train is not None else None,
                             info={"model": shown, "type": card.model, "dataset": spec.dataset,
                                   "where": spec.where or "", "run": run or ""})
    if run is not None:
        artifacts: dict[str, Any] = {"model": str(folder), **({"version": version} if version else {})}
        if index is not None:
            artifacts["report"] = str(index)
        record_run(Store(settings.store_path), run=run, kind="evaluate", model_name=name, model_version=version,
                   model_type=card.model, params=dict(card.params), dataset=spec.dataset, where=spec.where,
                   train_seconds=card.train_seconds, accuracy=ev.metrics["accuracy"], metrics=ev.metrics,
                   ids=ev.ids, actual=ev.actual, predicted=ev.predicted, probability=ev.probability,
                   train_size=card.train.n if card.train is not None else None,
                   sample=card.train.sample if card.train is not None else None, seed=card.seed,
                   data_sha256=card.train.sha256 if card.train is not None else None, git=git_commit(),
                   duration_seconds=time.perf_counter() - began, artifacts=artifacts)
    return EvaluateResult(name=spec.name, card=card, evaluation=ev, dataset=spec.dataset, where=spec.where, run=run,
                          report=index, version=version, by=spec.by,
                          by_group=ev.by_group() if spec.by is not None else None)


def cross_validate(spec: CrossValidateSpec, *, settings: Settings | None = None,
                   progress: ProgressFn | None = None) -> CrossValidateResult:
    """Stratified K-fold experiment: fit on K-1 folds, measure on the last, for each fold.

    ``progress("folds", done, folds)`` after each fold.

    Raises
    ------
    UserError
        Fewer than 2 folds, or a label with fewer images than folds.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    from digitlab.runs import git_commit, new_run_id, record_run
    from digitlab.store import Store

    began = time.perf_counter()
    settings = settings or get_settings()
    report = progress or _quiet
    if spec.folds < 2:
        raise UserError(f"--folds must be at least 2, got {spec.folds}")
    est = make_model(spec.model, **_model_params(spec.model, spec.params, spec.seed))
    images, labels, _ = load_dataset(settings, spec.dataset, spec.where)
    seed = 0 if spec.seed is None else spec.seed
    if spec.train_size is not None:
        keep = stratified_sample(labels, spec.train_size, seed)
        images, labels = images[keep], labels[keep]
    X = images.reshape(len(images), -1)
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < spec.folds:
        raise UserError(f"--folds {spec.folds} needs at least {spec.folds} images of every label; the rarest has "
                        f"{counts.min()}")
    per_fold: list[dict[str, float]] = []
    splits = StratifiedKFold(spec.folds, shuffle=True, random_state=seed).split(X, labels)
    for f, (tr, te) in enumerate(splits):
        report("folds", f, spec.folds)
        m: DigitClassifier = clone(est)
        seconds = _fit(m, X[tr], labels[tr], _quiet)
        ev = evaluate(m, X[te].reshape(-1, 28, 28) if X.shape[1] == 784 else X[te], labels[te])
        per_fold.append({**summary(ev.metrics), "train_seconds": seconds})
        report("folds", f + 1, spec.folds)
    keys = [k for k in per_fold[0] if k != "n"]
    mean = {k: float(np.mean([p[k] for p in per_fold])) for k in keys}
    std = {k: float(np.std([p[k] for p in per_fold])) for k in keys}
    params = est.get_params()
    run = None
    if spec.record:
        run = record_run(Store(settings.store_path), run=new_run_id("cv"), kind="cv", model_name=None,
                         model_type=spec.model, params=params, dataset=spec.dataset, where=spec.where,
                         train_seconds=mean.get("train_seconds"), accuracy=mean["accuracy"],
                         metrics={"folds": per_fold, "mean": mean, "std": std}, train_size=len(labels),
                         sample=spec.train_size, seed=seed, data_sha256=data_checksum(images, labels),
                         git=git_commit(), duration_seconds=time.perf_counter() - began)
    return CrossValidateResult(model=spec.model, params=params, n=len(labels), folds=tuple(per_fold), mean=mean,
                               std=std, run=run)


def learning_curve(spec: LearningCurveSpec, *, settings: Settings | None = None,
                   progress: ProgressFn | None = None) -> LearningCurveResult:
    """Test accuracy and fit time against training-set size (stratified samples of MNIST train).

    ``progress("sizes", done, len(sizes), size=...)`` around each size.

    Raises
    ------
    UserError
        No size, or a size that is not positive.
    """
    from digitlab.runs import git_commit, new_run_id, record_run
    from digitlab.store import Store

    began = time.perf_counter()
    settings = settings or get_settings()
    report = progress or _quiet
    sizes = [int(s) for s in spec.sizes]
    if not sizes or min(sizes) <= 0:
        raise UserError(f"--sizes must be positive integers, got {','.join(map(str, sizes)) or 'none'}")
    params = _model_params(spec.model, spec.params, spec.seed)
    make_model(spec.model, **params)  # a bad parameter fails before any data is read
    images, labels, _ = load_dataset(settings, "mnist_train", None)
    test_x, test_y, test_ids = load_dataset(settings, TEST_DATASET, None)
    points = []
    for i, size in enumerate(sizes):
        report("sizes", i, len(sizes), size=size)
        keep = stratified_sample(labels, size, spec.seed)
        est = make_model(spec.model, **params)
        seconds = _fit(est, images[keep].reshape(len(keep), -1), labels[keep], _quiet)
        start = time.perf_counter()
        ev = evaluate(est, test_x, test_y, test_ids)
        points.append(CurvePoint(size=len(keep), accuracy=float(ev.metrics["accuracy"]), fit_seconds=seconds,
                                 predict_seconds=time.perf_counter() - start))
        report("sizes", i + 1, len(sizes), size=size)
    plot = None
    if spec.plot is not None:
        from digitlab import figures

        fig = figures.learning_curve_figure(spec.model, [p.size for p in points], [p.accuracy for p in points],
                                            [p.fit_seconds for p in points])
        plot = figures.save_figure(fig, spec.plot, dpi=90)
    run = None
    if spec.record:
        rows = [{"size": p.size, "accuracy": p.accuracy, "fit_seconds": p.fit_seconds,
                 "predict_seconds": p.predict_seconds} for p in points]
        run = record_run(Store(settings.store_path), run=new_run_id("curve"), kind="curve", model_name=None,
                         model_type=spec.model, params=make_model(spec.model, **params).get_params(),
                         dataset="mnist_train", where=None, train_seconds=sum(p.fit_seconds for p in points),
                         accuracy=points[-1].accuracy, metrics={"points": rows, "sizes": [p.size for p in points]},
                         train_size=points[-1].size, seed=spec.seed, git=git_commit(),
                         duration_seconds=time.perf_counter() - began,
                         artifacts={"plot": str(plot)} if plot is not None else {})
    return LearningCurveResult(model=spec.model, params=params, points=tuple(points), plot=plot, run=run)


def requantize(spec: RequantizeSpec, *, settings: Settings | None = None,
               progress: ProgressFn | None = None) -> RequantizeResult:
    """Add (or rebuild) the int8 graph of a saved CNN, measure it on MNIST test and save it in place.

    The card keeps everything else; ``metrics["test"]`` is re-measured and
    ``notes["int8"]`` says how the graph was made.

    Raises
    ------
    NotFoundError
        No such model or folder.
    UserError
        The model is not a CNN.
    """
    from digitlab.data import load_mnist

    settings = settings or get_settings()
    folder, name = resolve_model(spec.model, settings)
    loaded = load_model(folder, name=name)
    est = loaded.estimator
    if not isinstance(est, model_class("cnn")):
        raise UserError(f"{name}: requantize needs a cnn model, this one is {loaded.card.model!r}")
    x_train, _ = load_mnist(settings.data_dir, "train")
    est.set_params(int8=True).quantize(x_train, n_calibration=spec.n_calibration)
    test_x, test_y, test_ids = load_dataset(settings, TEST_DATASET, None)
    start = time.perf_counter()
    ev = evaluate(est, test_x, test_y, test_ids, progress=progress)
    test = _test_metrics(est, ev, time.perf_counter() - start)
    card = loaded.card.replace(
        metrics={**loaded.card.metrics, "test": test},
        notes={**loaded.card.notes, "int8": {"command": shlex.join(["digitlab", "models", "requantize", spec.model]),
                                             "calibration": f"{spec.n_calibration} training images taken evenly, "
                                                            "as fit does"}})
    save_model(est, folder, card)
    return RequantizeResult(path=folder, card=read_card(folder), test=test)
