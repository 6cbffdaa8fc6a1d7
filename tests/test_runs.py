"""``digitlab.runs``: recording runs and their predictions in the store, listing and finding them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from digitlab.errors import NotFoundError
from digitlab.runs import get_run, list_runs, new_run_id, record_run
from digitlab.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "s.duckdb")


def _record(store: Store, run: str, **kw) -> str:  # type: ignore[no-untyped-def]
    args = {"kind": "train", "model_name": "m", "model_type": "centroid", "params": {"temperature": 2.0},
            "dataset": "mnist_train", "where": None, "train_seconds": 1.5, "accuracy": 0.8,
            "metrics": {"accuracy": 0.8, "per_class": {"3": {"f1": 0.7}}}}
    return record_run(store, run=run, **{**args, **kw})


def test_new_run_id_is_kind_date_time_and_a_random_suffix() -> None:
    a, b = new_run_id("train"), new_run_id("train")
    assert re.fullmatch(r"train-\d{8}-\d{6}-[0-9a-f]{4}", a) and a != b


def test_an_empty_or_missing_store_has_no_runs(store: Store) -> None:
    assert list_runs(store) == []
    with pytest.raises(NotFoundError, match="no run 'x'"):
        get_run(store, "x")
    assert not store.path.exists()


def test_record_then_get_round_trips_params_and_metrics(store: Store) -> None:
    _record(store, "train-1", where="id < 5", metrics={"accuracy": 0.8, "mean": {"f1": np.float32(0.5)}})
    run = get_run(store, "train-1")
    assert run.kind == "train" and run.model_name == "m" and run.model_type == "centroid"
    assert run.params == {"temperature": 2.0} and run.metrics == {"accuracy": 0.8, "mean": {"f1": 0.5}}
    assert run.where_clause == "id < 5" and run.train_seconds == 1.5 and run.accuracy == 0.8
    assert set(run.as_dict()) == {"run", "kind", "model_name", "model_type", "params", "dataset", "where_clause",
                                  "train_seconds", "accuracy", "metrics", "created"}


def test_predictions_are_stored_with_the_run(store: Store) -> None:
    ids = np.array([10, 11, 12])
    _record(store, "evaluate-1", kind="evaluate", ids=ids, actual=np.array([1, 2, 3]),
            predicted=np.array([1, 2, 4]), probability=np.array([0.9, 0.8, 0.4]))
    rows = store.query("SELECT id, actual, predicted, probability FROM predictions WHERE run = 'evaluate-1' "
                       "ORDER BY id").rows
    assert rows == [(10, 1, 1, 0.9), (11, 2, 2, 0.8), (12, 3, 4, 0.4)]


def test_list_is_newest_first_filtered_and_limited(store: Store) -> None:
    _record(store, "train-a", model_type="centroid", model_name="c1")
    _record(store, "train-b", model_type="logreg", model_name="lr")
    _record(store, "cv-c", kind="cv", model_type="centroid", model_name=None)
    assert [r.run for r in list_runs(store)] == ["cv-c", "train-b", "train-a"]
    assert {r.run for r in list_runs(store, model="centroid")} == {"train-a", "cv-c"}
    assert [r.run for r in list_runs(store, model="lr")] == ["train-b"]
    assert len(list_runs(store, limit=2)) == 2


def test_a_unique_prefix_finds_a_run_and_an_ambiguous_one_is_refused(store: Store) -> None:
    _record(store, "train-20260101-aaaa")
    _record(store, "train-20260101-aaab")
    _record(store, "train-20260102-bbbb")
    assert get_run(store, "train-20260102").run == "train-20260102-bbbb"
    assert get_run(store, "train-20260101-aaaa").run == "train-20260101-aaaa"
    with pytest.raises(NotFoundError, match="ambiguous"):
        get_run(store, "train-20260101")


def test_a_failed_record_leaves_no_run(store: Store) -> None:
    _record(store, "train-1")
    with pytest.raises(Exception):  # noqa: B017 - duckdb's constraint error: the primary key is taken
        _record(store, "train-1", ids=np.array([1]), actual=np.array([1]), predicted=np.array([1]))
    assert [r.run for r in list_runs(store)] == ["train-1"]
    assert store.query("SELECT count(*) FROM predictions").rows == [(0,)]
