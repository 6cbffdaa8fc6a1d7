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
    assert re.fullmatch(r"train-\d{8}-\d{6}-[0-9a-f]{8}", a) and a != b


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
    assert set(run.as_dict()) == {"run", "kind", "model_name", "model_version", "model_type", "params", "dataset",
                                  "where_clause", "train_size", "sample", "seed", "data_sha256", "git_commit",
                                  "environment", "train_seconds", "duration_seconds", "accuracy", "metrics", "epochs",
                                  "artifacts", "created"}


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


def test_a_run_records_sample_seed_checksum_git_environment_epochs_and_artifacts(store: Store) -> None:
    _record(store, "train-1", model_version=3, train_size=500, sample=500, seed=7, data_sha256="ab" * 32,
            git="0123abc", duration_seconds=2.5, epochs=[{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}],
            artifacts={"model": "/m/v3", "version": 3})
    run = get_run(store, "train-1")
    assert (run.model_version, run.train_size, run.sample, run.seed) == (3, 500, 500, 7)
    assert run.data_sha256 == "ab" * 32 and run.git_commit == "0123abc" and run.duration_seconds == 2.5
    assert [e["loss"] for e in run.epochs] == [0.5, 0.25] and run.artifacts["model"] == "/m/v3"
    assert run.model_ref == "m@v3"
    env = run.environment
    assert env["python"] and env["numpy"] == np.__version__ and env["cores"] >= 1 and "torch" in env


def test_an_older_store_gains_the_new_columns(store: Store) -> None:
    with store.connect() as con:  # the runs table as digitlab wrote it before issue 17
        con.execute("""CREATE TABLE runs (run VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, model_name VARCHAR,
            model_type VARCHAR, params JSON, dataset VARCHAR, where_clause VARCHAR, train_seconds DOUBLE,
            accuracy DOUBLE, metrics JSON, created TIMESTAMP)""")
        con.execute("INSERT INTO runs VALUES ('train-old-aaaa', 'train', 'm', 'centroid', '{}', 'mnist_train', "
                    "NULL, 1.0, 0.8, '{}', '2026-01-01 00:00:00')")
    old = get_run(store, "train-old-aaaa")
    assert old.model_version is None and old.epochs == [] and old.environment == {}
    _record(store, "train-new-bbbb", seed=3)
    assert list_runs(store)[0].run == "train-new-bbbb" and get_run(store, "bbbb").seed == 3


def test_git_commit_is_recorded_when_there_is_a_repository_and_none_otherwise(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from digitlab.runs import git_commit

    assert git_commit(tmp_path) is None  # not a repository: no error
    if shutil.which("git") is None:
        pytest.skip("no git program")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    assert git_commit(repo) is None  # no commit yet
    (repo / "f").write_text("1")
    subprocess.run([*git, "add", "f"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert git_commit(repo) == head
    (repo / "f").write_text("2")
    assert git_commit(repo) == head + "-dirty"


def test_short_ids_are_the_shortest_unique_prefix_of_the_random_part(store: Store) -> None:
    from digitlab.runs import short_ids

    ids = ["train-20260101-000000-3fa29c1d", "train-20260101-000001-3fa2aaaa", "cv-20260102-000000-77001122",
           "train-20260101-000002-aaaa"]
    shorts = short_ids(ids)
    assert shorts == {ids[0]: "3fa29", ids[1]: "3fa2a", ids[2]: "7700", ids[3]: "aaaa"}
    for run in ids:
        _record(store, run)
    for run, short in shorts.items():  # compare and every command accept them
        assert get_run(store, short).run == run
    with pytest.raises(NotFoundError, match="ambiguous: it matches 3fa29, 3fa2a"):
        get_run(store, "3fa2")


def test_latest_and_latest_tilde_n_name_runs_by_recency(store: Store) -> None:
    import time

    for run in ("train-1-aaaa", "train-2-bbbb", "train-3-cccc"):
        _record(store, run)
        time.sleep(0.01)
    assert [get_run(store, r).run for r in ("latest", "latest~1", "latest~2")] == [
        "train-3-cccc", "train-2-bbbb", "train-1-aaaa"]
    with pytest.raises(NotFoundError, match="3 run"):
        get_run(store, "latest~3")
