"""The model card: every card written so far reads into one ModelCard; bad cards give one ModelError; file modes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from digitlab.errors import ModelError
from digitlab.models.card import CARD_VERSION, ModelCard, TrainingData, read_card, write_card

SHA = "d18cfd466eb143ac1097fde604dba9eec4116885869d04cc648b510949f9e88c"

#: ``python -m digitlab.models.cnn`` (the CNN's own training program, which wrote the bundled card).
CNN_PROGRAM_V1 = {
    "format_version": 1, "model": "cnn", "params": {"recipe": "default", "seed": 0}, "meta": {"width": 32},
    "trained_at": "2026-11-22T03:03:20+00:00",
    "command": "python -m digitlab.models.cnn --recipe default --seed 0 --threads 2 --out src/digitlab/bundled/default",
    "train_data": {"dataset": "mnist", "split": "train", "n": 60000, "sha256": SHA},
    "train_seconds": 886.8, "machine": "2 cores, x86_64, torch 2.13.0+cpu, 2 threads",
    "metrics": {"test": {"dataset": "mnist", "split": "test", "n": 10000, "accuracy": 0.9967, "errors": 33,
                         "inference": "int8 (ONNX Runtime)", "pytorch_accuracy": 0.9966}},
    "int8": {"command": "python -m digitlab.models.cnn --requantize src/digitlab/bundled/default",
             "calibration": "1024 training images taken evenly, as fit does"},
}
#: ``digitlab train`` (cli/models.py).
TRAIN_V1 = {
    "format_version": 1, "model": "logreg", "params": {"C": 1.0}, "meta": {"n_features_in": 784},
    "train_sha256": "ab" * 32, "train_size": 1000, "train_sampled": True,
    "train_class_counts": {str(d): 100 for d in range(10)}, "dataset": "mnist_train", "where": "label < 5",
    "seed": 3, "train_seconds": 1.25, "test_metrics": {"accuracy": 0.8912, "n": 10000, "f1_weighted": 0.89},
    "run": "train-20261122-0036", "created": "2026-11-22T00:36:00+00:00", "digitlab_version": "0.1.0",
}
#: ``digitlab dpmm fit`` (cli/dpmm.py).
DPMM_V1 = {
    "format_version": 1, "model": "dpmm", "params": {"chains": 2}, "meta": {"n_chains": 2},
    "train_seconds": 12.5, "test_accuracy": 0.9521, "n_train": 12089, "n_test": 2042, "digits": [2, 3], "seed": 0,
    "clusters_per_chain": [31, 29], "chains": [{"chain": 0, "clusters": 31}, {"chain": 1, "clusters": 29}],
}
#: A card written by hand (the tests' fixtures did so): only a test accuracy.
HAND_V1 = {"format_version": 1, "model": "centroid", "params": {}, "meta": {}, "metrics": {"test_accuracy": 0.8}}


def _folder(tmp_path: Path, doc: Any, name: str = "m") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "card.json").write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return folder


def test_the_cnn_programs_card(tmp_path: Path) -> None:
    card = read_card(_folder(tmp_path, CNN_PROGRAM_V1))
    assert card.format_version == CARD_VERSION and card.model == "cnn"
    assert card.test_accuracy == 0.9967
    assert card.test_metrics["n"] == 10000 and card.test_metrics["dataset"] == "mnist_test"
    assert card.train == TrainingData(dataset="mnist_train", n=60000, sha256=SHA)
    assert card.created == "2026-11-22T03:03:20+00:00" and card.train_seconds == 886.8
    assert card.command is not None and card.command.startswith("python -m digitlab.models.cnn")
    assert card.notes["int8"]["calibration"].startswith("1024 training images")


def test_digitlab_trains_card(tmp_path: Path) -> None:
    card = read_card(_folder(tmp_path, TRAIN_V1))
    assert card.model == "logreg" and card.params == {"C": 1.0}
    assert card.test_accuracy == 0.8912 and card.test_metrics["dataset"] == "mnist_test"
    assert card.train == TrainingData(dataset="mnist_train", n=1000, sha256="ab" * 32, where="label < 5",
                                      sample=1000, class_counts={str(d): 100 for d in range(10)})
    assert (card.seed, card.run, card.digitlab_version) == (3, "train-20261122-0036", "0.1.0")


def test_an_unsampled_training_set_records_no_sample(tmp_path: Path) -> None:
    card = read_card(_folder(tmp_path, {**TRAIN_V1, "train_sampled": False, "where": None}))
    assert card.train is not None and card.train.sample is None and card.train.where is None


def test_dpmm_fits_card(tmp_path: Path) -> None:
    card = read_card(_folder(tmp_path, DPMM_V1))
    assert card.test_accuracy == 0.9521 and card.test_metrics["n"] == 2042
    assert card.train is not None and (card.train.dataset, card.train.n) == ("mnist_train", 12089)
    assert card.notes["digits"] == [2, 3] and card.notes["clusters_per_chain"] == [31, 29]


def test_a_hand_written_card(tmp_path: Path) -> None:
    card = read_card(_folder(tmp_path, HAND_V1))
    assert card.model == "centroid" and card.test_accuracy == 0.8 and card.train is None


def test_the_bundled_card() -> None:
    from digitlab.models.io import bundled_dir

    card = read_card(bundled_dir())
    assert card.format_version == CARD_VERSION and card.model == "cnn"
    assert card.test_accuracy is not None and card.test_accuracy >= 0.995 and card.test_metrics["n"] == 10000
    assert card.train is not None and card.train.dataset == "mnist_train+pen" and card.train.n == 65996
    assert card.command == ("digitlab train cnn --seed 0 --pen ../shared/data/pendigits/pendigits-orig.tra.gz "
                            "--epochs 19 --n-threads 2 --out src/digitlab/bundled/default")


def test_the_bundled_card_is_written_in_the_current_format() -> None:
    from digitlab.models.io import bundled_dir

    doc = json.loads((bundled_dir() / "card.json").read_text(encoding="utf-8"))
    assert doc["format_version"] == CARD_VERSION
    assert ModelCard.from_dict(doc).to_dict() == doc


@pytest.mark.parametrize("doc", [CNN_PROGRAM_V1, TRAIN_V1, DPMM_V1, HAND_V1])
def test_every_old_card_round_trips_in_the_new_format(tmp_path: Path, doc: dict[str, Any]) -> None:
    card = read_card(_folder(tmp_path, doc))
    write_card(tmp_path / "again", card)
    assert read_card(tmp_path / "again") == card


def test_a_new_card_round_trips(tmp_path: Path) -> None:
    card = ModelCard(model="trees", params={"n_bags": 2}, meta={"n_features_in": 784},
                     created="2026-12-01T00:00:00+00:00", digitlab_version="0.1.0",
                     command="digitlab train trees", seed=0, run="train-1",
                     train=TrainingData(dataset="mnist_train", n=3000, sha256="0" * 64, sample=3000,
                                        class_counts={"0": 300}, sources={"mnist": "1" * 64}),
                     train_seconds=12.5, machine="2 cores", metrics={"test": {"accuracy": 0.97, "n": 10000}},
                     notes={"why": "a test"})
    path = write_card(tmp_path / "m", card)
    assert path == tmp_path / "m" / "card.json"
    assert read_card(tmp_path / "m") == card


@pytest.mark.parametrize(("text", "why"), [
    ('{"a": ' * 10_000 + "1" + "}" * 10_000, "nested"),
    ('{"format_version": 2, "model": "cnn", "notes": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}", "nested"),
    ("[1, 2, 3]", "JSON object"),
    ("42", "JSON object"),
    ("{not json", "not valid JSON"),
    ('{"format_version": 2, "model": "cnn", "seed": "zero"}', "'seed' must be an integer"),
    ('{"format_version": 2, "model": "cnn", "params": [1]}', "'params' must be a JSON object"),
    ('{"format_version": 2, "model": "cnn", "train": {"dataset": "mnist_train", "n": "many"}}', "train"),
    ('{"format_version": 2, "model": "cnn", "train": {"dataset": "x", "n": 1, "bogus": 2}}', "train"),
    ('{"format_version": 1, "model": "cnn", "train_data": {"dataset": "mnist", "n": "many"}}', "train"),
    ('{"format_version": 1, "model": "cnn", "train_size": [1]}', "train"),
    ('{"format_version": 2, "model": 7}', "names no model"),
    ('{"format_version": 3, "model": "cnn"}', "version 3 is not supported"),
    ('{"model": "cnn"}', "version None is not supported"),
])
def test_a_bad_card_gives_one_model_error(tmp_path: Path, text: str, why: str) -> None:
    with pytest.raises(ModelError, match=why) as info:
        read_card(_folder(tmp_path, text))
    assert str(info.value).startswith("m: ")            # the folder, then the reason
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_missing_card_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no card\.json"):
        read_card(tmp_path)


def test_save_model_writes_with_the_users_umask(tmp_path: Path) -> None:
    from digitlab.models.centroid import NearestCentroidClassifier
    from digitlab.models.io import save_model

    rng = np.random.default_rng(0)
    est = NearestCentroidClassifier().fit(rng.integers(0, 256, (20, 784)), np.arange(20) % 2)
    before = os.umask(0o027)
    try:
        folder = save_model(est, tmp_path / "models" / "m", ModelCard(model="centroid"))
    finally:
        os.umask(before)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~0o027
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == ["card.json", "weights.safetensors"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o666 & ~0o027 for f in files)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]   # no temporary left behind
