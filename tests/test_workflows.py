"""``digitlab.workflows`` used as a library, as a notebook would: small samples, centroid and logreg."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import NotFoundError, UserError
from digitlab.models.card import ModelCard, read_card
from digitlab.settings import Settings, get_settings
from digitlab.workflows import (
    CrossValidateSpec,
    EvaluateSpec,
    LearningCurveSpec,
    TrainSpec,
    cross_validate,
    data_checksum,
    evaluate_saved,
    learning_curve,
    resolve_model,
    train,
    train_command_line,
)


@pytest.fixture
def settings(home: Path, mnist_dir: Path) -> Settings:
    return get_settings(data_dir=mnist_dir, home=home)


@pytest.fixture
def trained(settings: Settings):  # type: ignore[no-untyped-def]
    return train(TrainSpec(model="centroid", train_size=500, seed=1, name="c"), settings=settings)


def test_train_a_centroid_on_a_small_sample(trained, settings: Settings, mnist_train) -> None:
    from digitlab.data.select import stratified_sample
    from digitlab.runs import list_runs
    from digitlab.store import Store

    assert trained.path == settings.models_dir / "c" / "v1" and trained.name == "c" and trained.version == 1
    assert trained.train_size == 500 and trained.sampled
    assert 0.7 < trained.evaluation.metrics["accuracy"] < 0.9 and trained.evaluation.metrics["n"] == 10000
    card = read_card(trained.path)
    assert card == trained.card and card.format_version == 2
    assert card.model == "centroid" and card.run == trained.run and card.seed == 1
    assert card.train is not None and card.train.n == 500 and card.train.sample == 500
    assert card.train.dataset == "mnist_train" and sum(card.train.class_counts.values()) == 500
    x, y = mnist_train
    keep = stratified_sample(y, 500, 1)
    assert card.train.sha256 == data_checksum(x[keep], y[keep])
    assert card.test_accuracy == pytest.approx(trained.evaluation.metrics["accuracy"])
    assert card.test_metrics["dataset"] == "mnist_test" and card.test_metrics["errors"] == round(
        (1 - card.test_accuracy) * 10000)
    assert card.command == "digitlab train centroid --train-size 500 --seed 1 --name c"
    assert card.digitlab_version and card.created and card.machine
    assert [r.run for r in list_runs(Store(settings.store_path))] == [trained.run]


def test_card_on_disk_has_the_one_shape(trained) -> None:
    doc = json.loads((trained.path / "card.json").read_text())
    assert set(doc) == set(ModelCard.__dataclass_fields__)
    assert set(doc["train"]) == {"dataset", "n", "sha256", "where", "sample", "class_counts", "sources", "calibration"}
    assert "test" in doc["metrics"] and doc["format_version"] == 2


def test_data_checksum_is_of_uint8_pixels_then_int64_labels() -> None:
    import hashlib

    x = np.arange(2 * 784, dtype=np.int64).reshape(2, 28, 28) % 256
    y = np.array([3, 4], dtype=np.int32)
    expected = hashlib.sha256(x.astype(np.uint8).tobytes() + y.astype("<i8").tobytes()).hexdigest()
    assert data_checksum(x, y) == expected == data_checksum(x.reshape(2, 784).astype(np.uint8), y.tolist())


def test_the_bundled_cards_checksums_are_of_its_training_files(mnist_dir: Path) -> None:
    import hashlib

    from digitlab.data.mnist import find_mnist
    from digitlab.models.io import bundled_dir

    card = read_card(bundled_dir())
    assert card.train is not None
    found = {path.name: path for path in find_mnist(mnist_dir).values()}
    mnist = {name: sha for name, sha in card.train.sources.items() if name.startswith("train-")}
    assert len(mnist) == 2
    for name, sha in mnist.items():
        if name in found:  # the same files, as stored (.gz or not)
            assert hashlib.sha256(found[name].read_bytes()).hexdigest() == sha
    pen = mnist_dir.parent / "pendigits" / "pendigits-orig.tra.gz"
    if pen.exists():
        assert hashlib.sha256(pen.read_bytes()).hexdigest() == card.train.sources[pen.name]


def test_evaluate_saved_records_a_run_and_writes_the_report(trained, settings: Settings, tmp_path: Path) -> None:
    result = evaluate_saved(EvaluateSpec(name="c", where="label < 5", report=tmp_path / "rep"), settings=settings)
    assert result.card.model == "centroid" and result.run is not None
    assert result.evaluation.metrics["n"] == sum(result.evaluation.metrics["per_class"][str(d)]["support"]
                                                 for d in range(5))
    assert result.report == tmp_path / "rep" / "index.html" and result.report.is_file()
    assert (tmp_path / "rep" / "train_distribution.png").is_file()  # from the card's class counts


def test_cross_validate_gives_mean_and_std_per_metric(settings: Settings) -> None:
    cv = cross_validate(CrossValidateSpec(model="centroid", folds=3, train_size=600, seed=0), settings=settings)
    assert cv.n == 600 and len(cv.folds) == 3 and cv.run is not None
    assert set(cv.mean) == set(cv.std) >= {"accuracy", "train_seconds"} and "n" not in cv.mean
    assert cv.mean["accuracy"] == pytest.approx(np.mean([f["accuracy"] for f in cv.folds]))
    with pytest.raises(UserError, match="at least 2"):
        cross_validate(CrossValidateSpec(model="centroid", folds=1), settings=settings)


def test_learning_curve_with_two_sizes_and_its_plot(settings: Settings, tmp_path: Path) -> None:
    calls: list[tuple] = []
    curve = learning_curve(LearningCurveSpec(model="centroid", sizes=(100, 300), plot=tmp_path / "lc.png"),
                           settings=settings, progress=lambda *a, **k: calls.append(a))
    assert [p.size for p in curve.points] == [100, 300]
    assert all(0.5 < p.accuracy < 0.9 and p.fit_seconds >= 0 for p in curve.points)
    assert curve.plot is not None and curve.plot.read_bytes()[:4] == b"\x89PNG"
    assert calls[-1] == ("sizes", 2, 2)
    with pytest.raises(UserError, match="positive"):
        learning_curve(LearningCurveSpec(model="centroid", sizes=(0,)), settings=settings)


def test_a_model_whose_fit_takes_progress_gets_it(settings: Settings) -> None:
    from digitlab.models import model_class

    assert model_class("logreg").fit_progress and not model_class("centroid").fit_progress
    calls: list[str] = []
    result = train(TrainSpec(model="logreg", train_size=300, params={"max_iter": 3}, save=False, record=False),
                   settings=settings, progress=lambda key, *a, **k: calls.append(key))
    assert "L-BFGS" in calls and "train" not in calls and "predict" in calls
    assert result.path is None and result.run is None
    calls.clear()
    train(TrainSpec(model="centroid", train_size=300, save=False, record=False), settings=settings,
          progress=lambda key, *a, **k: calls.append(key))
    assert calls[:2] == ["train", "train"]


def test_dry_run_keeps_nothing(settings: Settings) -> None:
    result = train(TrainSpec(model="centroid", dry_run=True), settings=settings)
    assert result.dry_run and result.path is None and result.run is None
    assert result.train_size == 1000 and result.evaluation.metrics["n"] == 1000
    assert result.card.model == "centroid" and result.card.params  # saved and loaded back from a temporary folder
    assert not settings.models_dir.exists() and not settings.store_path.exists()


def test_out_saves_into_a_folder(settings: Settings, tmp_path: Path) -> None:
    result = train(TrainSpec(model="centroid", train_size=300, out=tmp_path / "mine", record=False),
                   settings=settings)
    assert result.path == tmp_path / "mine" and result.name == "mine"
    assert read_card(tmp_path / "mine").command.endswith(f"--out {tmp_path / 'mine'}")
    assert resolve_model(tmp_path / "mine", settings) == (tmp_path / "mine", "mine")
    assert not settings.models_dir.exists()


def test_the_card_command_parses_back_to_the_same_training(cli, home: Path) -> None:
    """``card.command`` is a ``digitlab train`` line: run it and the model and data are the same."""
    spec = TrainSpec(model="logreg", train_size=300, seed=2, params={"C": 0.5, "max_iter": 5, "multi_class": "ovr"},
                     name="lr")
    line = train_command_line(spec)
    assert line == "digitlab train logreg --train-size 300 --seed 2 --C 0.5 --max-iter 5 --multi-class ovr --name lr"
    result = cli(*shlex.split(line)[1:], "--format", "json")
    assert result.exit_code == 0, result.stderr
    card = read_card(home / "models" / "lr" / "v1")
    assert card.command == line and card.params["C"] == 0.5 and card.params["multi_class"] == "ovr"
    assert train_command_line(TrainSpec(model="cnn", params={"seed": 1, "recipe": "fast", "int8": False,
                                                              "digits": (2, 3), "width": None})) == (
        "digitlab train cnn --set seed=1 --recipe fast --int8 false --digits 2,3")


def test_resume_needs_a_model_that_checkpoints(settings: Settings) -> None:
    with pytest.raises(UserError, match="does not support --resume"):
        train(TrainSpec(model="centroid", resume=True), settings=settings)
    with pytest.raises(UserError, match="does not support --checkpoint-dir"):
        train(TrainSpec(model="centroid", checkpoint_dir="x"), settings=settings)


def test_unknown_model_and_bad_name(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="unknown model"):
        train(TrainSpec(model="nope"), settings=settings)
    with pytest.raises(UserError, match="model name"):
        train(TrainSpec(model="centroid", name="../x", train_size=100), settings=settings)
    with pytest.raises(NotFoundError):
        resolve_model("nosuch", settings)


def test_requantize_rebuilds_the_int8_graph_and_keeps_the_card(settings: Settings, small_train,
                                                                 tmp_path: Path) -> None:
    """A 4-channel CNN fitted one epoch on 300 images: only the int8 plumbing is under test."""
    pytest.importorskip("torch")
    from digitlab.models.card import ModelCard
    from digitlab.models.cnn import CNNClassifier
    from digitlab.models.io import load_model, save_model
    from digitlab.workflows import RequantizeSpec, requantize

    x, y = small_train
    est = CNNClassifier(recipe="fast", width=4, epochs=1, int8=False, bf16=False, n_threads=1, seed=0).fit(
        x[:300], y[:300])
    folder = save_model(est, tmp_path / "tiny", ModelCard(model="cnn", command="train it", seed=0))
    result = requantize(RequantizeSpec(model=str(folder), n_calibration=64), settings=settings)
    loaded = load_model(folder)
    assert loaded.card == result.card and result.path == folder
    assert loaded.card.command == "train it" and loaded.card.seed == 0
    assert result.test["inference"] == "int8 (ONNX Runtime)" and loaded.card.test_metrics == result.test
    assert "pytorch_accuracy" in result.test and result.test["n"] == 10000
    assert loaded.card.notes["int8"]["command"] == f"digitlab models requantize {folder}"
    assert loaded.estimator.int8 and loaded.estimator.int8_graph_
