"""Batch scoring (digitlab.score, digitlab score): every source kind on each engine, resume, bad images."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from digitlab.errors import UserError
from digitlab.score import MANIFEST, ScoreSpec, score
from digitlab.settings import get_settings

N = 240  # images per source: small, so that a Ray run is a few seconds


@pytest.fixture(scope="session")
def sample(mnist_test: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x, y = mnist_test
    return x[:N], y[:N]


@pytest.fixture(scope="session")
def expected(sample: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """What the bundled CNN predicts for the sample, called directly."""
    from digitlab.models.io import bundled_dir, load_model

    return load_model(bundled_dir()).estimator.predict(sample[0].reshape(N, -1))


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _pixels_table(x: np.ndarray, ids: np.ndarray) -> pa.Table:
    return pa.table({"id": pa.array(ids), "pixels": pa.FixedSizeListArray.from_arrays(
        pa.array(x.reshape(-1).astype(np.uint8)), 784)})


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory,
            sample: tuple[np.ndarray, np.ndarray]) -> dict[str, tuple[str, str]]:
    """One source of every kind holding the sample: kind -> (SOURCE, id column of the output)."""
    from digitlab.data import write_csv, write_idx
    from digitlab.store import Store

    x, y = sample
    root = tmp_path_factory.mktemp("sources")
    ids = np.arange(N, dtype=np.int64) + 1000
    folder = root / "parquet"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(N), 3)):  # a folder of 3 files, 2 row groups each
        pq.write_table(_pixels_table(x[part], ids[part]), folder / f"scan-{i}.parquet", row_group_size=45)
    pq.write_table(pa.table({"form": pa.array([f"form-{i:04d}" for i in range(N)]),
                             "image": pa.array([_png(im) for im in x], pa.binary())}), root / "images.parquet")
    write_idx(root / "digits-idx3-ubyte", x)
    write_csv(root / "digits.csv", x, y)
    pics = root / "pictures"
    for i, im in enumerate(x):
        (pics / str(y[i])).mkdir(parents=True, exist_ok=True)
        (pics / str(y[i]) / f"{i:04d}.png").write_bytes(_png(im))
    home = root / "home"
    Store(home / "digitlab.duckdb").import_arrays("scans", x, y, ids=ids)
    return {"parquet-folder": (str(folder), "id"), "parquet-image-bytes": (str(root / "images.parquet"), "form"),
            "idx": (str(root / "digits-idx3-ubyte"), "id"), "csv": (str(root / "digits.csv"), "id"),
            "image-folder": (str(pics), "path"), "image-glob": (str(pics / "*" / "*.png"), "path"),
            "store-table": ("table:scans", "id"), "home": (str(home), "")}


def _order(kind: str, ids: list[object]) -> np.ndarray:
    """Position of each output row in the sample, from its id."""
    if kind in ("parquet-folder", "store-table"):
        return np.asarray(ids, dtype=np.int64) - 1000
    if kind == "parquet-image-bytes":
        return np.asarray([int(str(i).split("-")[1]) for i in ids])
    if kind.startswith("image"):
        return np.asarray([int(Path(str(i)).stem) for i in ids])
    return np.asarray(ids, dtype=np.int64)


KINDS = ["parquet-folder", "parquet-image-bytes", "idx", "csv", "image-folder", "image-glob", "store-table"]


def _score(sources, kind: str, out: Path, **kw) -> tuple[object, pa.Table]:
    src, id_name = sources[kind]
    settings = get_settings(home=sources["home"][0])
    if id_name == "form":
        kw["id_column"] = "form"  # not called id: named with --id-column
    result = score(ScoreSpec(model="default", source=src, out=out, partition_rows=100, batch_size=64, **kw),
                   settings=settings)
    table = pq.read_table(out)
    assert table.column_names[0] == id_name
    return result, table


@pytest.mark.parametrize("kind", KINDS)
def test_local_engine_scores_every_source_kind(sources, expected, tmp_path: Path, kind: str) -> None:
    result, table = _score(sources, kind, tmp_path / "out.parquet", workers=1)
    assert result.images == N and result.errors == 0 and result.skipped == 0
    pos = _order(kind, table.column(0).to_pylist())
    assert sorted(pos.tolist()) == list(range(N))  # every row once
    assert np.array_equal(np.asarray(table["digit"])[np.argsort(pos)], expected)
    probs = np.asarray(table["probabilities"].combine_chunks().flatten()).reshape(N, 10)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert table["error"].null_count == N


@pytest.mark.parametrize("kind", KINDS)
def test_ray_engine_gives_the_same_digits(ray_local, sources, expected, tmp_path: Path, kind: str) -> None:
    result, table = _score(sources, kind, tmp_path / "out.parquet", engine="ray", workers=1)
    assert result.engine == "ray" and result.images == N and result.errors == 0
    pos = _order(kind, table.column(0).to_pylist())
    assert sorted(pos.tolist()) == list(range(N))
    assert np.array_equal(np.asarray(table["digit"])[np.argsort(pos)], expected)


def test_local_worker_processes_write_one_file_per_partition(sources, expected, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    result, table = _score(sources, "parquet-folder", out, workers=2)
    assert result.workers == 2
    parts = sorted(p.name for p in out.glob("part-*.parquet"))
    assert parts == [f"part-{i:05d}.parquet" for i in range(result.partitions)] and result.partitions == 3
    for p in out.glob("part-*.parquet"):
        meta = pq.ParquetFile(p).metadata
        assert meta.num_row_groups >= 2  # batches of 64 rows, written as they came
    pos = _order("parquet-folder", table["id"].to_pylist())
    assert np.array_equal(np.asarray(table["digit"])[np.argsort(pos)], expected)
    import duckdb

    assert duckdb.sql(f"SELECT count(*), count(DISTINCT id) FROM '{out}/*.parquet'").fetchall() == [(N, N)]


def test_bad_images_are_counted_not_fatal(tmp_path: Path, sample, expected) -> None:
    x, _ = sample
    good = [_png(im) for im in x[:20]]
    blobs = [*good[:10], b"not a picture", None, _png(np.full((64, 64), 255, np.uint8)), *good[10:]]
    pq.write_table(pa.table({"image": pa.array(blobs, pa.binary())}), tmp_path / "forms.parquet")
    result = score(ScoreSpec(model="default", source=str(tmp_path / "forms.parquet"), out=tmp_path / "o1",
                             workers=1))
    assert (result.images, result.errors) == (23, 3) and result.errors_total == 3
    t = pq.read_table(tmp_path / "o1").sort_by("id")
    err = t["error"].to_pylist()
    assert "cannot decode" in err[10] and "no image bytes" in err[11] and err[12]  # no ink
    assert t["digit"].to_pylist()[10:13] == [None, None, None]
    assert np.array_equal(np.asarray(t["digit"].to_pylist()[:10] + t["digit"].to_pylist()[13:]), expected[:20])

    pixels = [list(map(int, x[0].reshape(-1))), [1, 2, 3], None, [300] * 784, list(map(int, x[1].reshape(-1)))]
    pq.write_table(pa.table({"pixels": pa.array(pixels, pa.list_(pa.int64()))}), tmp_path / "rows.parquet")
    result = score(ScoreSpec(model="default", source=str(tmp_path / "rows.parquet"), out=tmp_path / "o2",
                             workers=1))
    t = pq.read_table(tmp_path / "o2").sort_by("id")
    assert (result.images, result.errors) == (5, 3)
    assert t["digit"].to_pylist()[0] == expected[0] and t["digit"].to_pylist()[4] == expected[1]
    assert "784" in t["error"][1].as_py() and "null" in t["error"][2].as_py() and "0-255" in t["error"][3].as_py()


def test_resume_after_a_kill_writes_each_row_once(tmp_path: Path, mnist_test, mnist_dir: Path) -> None:
    x, _ = mnist_test
    src = tmp_path / "scans"
    src.mkdir()
    for i in range(4):
        pq.write_table(_pixels_table(x[i * 2500:(i + 1) * 2500], np.arange(i * 2500, (i + 1) * 2500)),
                       src / f"f{i}.parquet", row_group_size=250)
    out = tmp_path / "out.parquet"
    cmd = [sys.executable, "-m", "digitlab", "score", "default", str(src), "--out", str(out), "--workers", "1",
           "--batch-size", "50", "--partition-rows", "500", "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
           "DIGITLAB_DATA": str(mnist_dir), "DIGITLAB_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("part-*.parquet")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert 1 <= len(before) < 20
    for p in before:
        assert pq.ParquetFile(out / p).metadata.num_rows == 500  # committed files are whole

    result = score(ScoreSpec(model="default", source=str(src), out=out, workers=1, batch_size=50,
                             partition_rows=500))
    assert result.skipped == len(before) and result.images == 10_000 - 500 * len(before)
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before  # the finished partitions were left as they were
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    ids = pq.read_table(out)["id"].to_numpy()
    assert len(ids) == 10_000 and len(np.unique(ids)) == 10_000
    assert result.images_total == 10_000


def test_ray_resume_scores_only_the_missing_partitions(ray_local, sources, tmp_path: Path, expected) -> None:
    out = tmp_path / "out.parquet"
    first, _ = _score(sources, "parquet-folder", out, workers=1)
    (out / "part-00001.parquet").unlink()
    (out / ".part-00002.parquet.123.tmp").write_bytes(b"half a file")  # a killed run's partition in progress
    (out / "part-00002.parquet").unlink()
    result, table = _score(sources, "parquet-folder", out, engine="ray")
    assert result.skipped == first.partitions - 2 and result.images == 160
    assert not list(out.glob(".*.tmp"))
    pos = _order("parquet-folder", table["id"].to_pylist())
    assert sorted(pos.tolist()) == list(range(N))
    assert np.array_equal(np.asarray(table["digit"])[np.argsort(pos)], expected)


def test_out_of_another_model_or_source_is_refused(sources, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    _score(sources, "idx", out, workers=1)
    with pytest.raises(UserError, match="another source"):
        _score(sources, "csv", out, workers=1)
    result, _ = _score(sources, "csv", out, workers=1, overwrite=True)
    assert result.images == N and json.loads((out / MANIFEST).read_text())["kind"] == "csv"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="other files"):
        _score(sources, "idx", tmp_path / "mine", workers=1)


def test_cli_score_json(cli, sources, tmp_path: Path) -> None:
    out = tmp_path / "o.parquet"
    res = cli("score", "default", sources["idx"][0], "--out", out, "--format", "json", "--workers", "1")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert {"images", "errors", "seconds", "images_per_second", "out"} <= set(doc)
    assert doc["images"] == N and doc["errors"] == 0 and doc["images_per_second"] > 0
    again = json.loads(cli("score", "default", sources["idx"][0], "--out", out, "--format", "json").stdout)
    assert again["images"] == 0 and again["skipped"] == again["partitions"] and again["images_total"] == N
    bad = cli("score", "default", str(tmp_path / "missing.parquet"), "--out", tmp_path / "x")
    assert bad.exit_code == 2 and "no source" in bad.stderr


def test_engine_ray_without_ray_says_how_to_install(cli, sources, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    res = cli("score", "default", sources["idx"][0], "--out", tmp_path / "o", "--engine", "ray")
    assert res.exit_code == 2 and "pip install 'digitlab[ray]'" in res.stderr
    res = cli("score", "default", sources["idx"][0], "--out", tmp_path / "o", "--engine", "spark")
    assert res.exit_code == 2 and "--engine must be one of local, ray" in res.stderr


def test_a_model_with_a_not_a_digit_detector_gets_the_column(sample, expected) -> None:
    from digitlab.models.io import bundled_dir
    from digitlab.score import Scorer, output_schema
    from digitlab.sources import InputBatch

    class Detecting:  # the bundled CNN, with a detector as issue 14's models offer: one flag per image
        def __init__(self, est) -> None:
            self.est, self.classes_ = est, est.classes_

        def predict_proba(self, X):
            return self.est.predict_proba(X)

        def not_a_digit(self, X):
            return X.sum(axis=1) < 20_000

    scorer = Scorer(bundled_dir(), "default")
    assert "not_a_digit" in scorer.schema.names  # the bundled CNN ships a detector (digitlab novelty)
    scorer.estimator = Detecting(scorer.estimator)
    scorer._not_a_digit = scorer.estimator.not_a_digit
    scorer.schema = output_schema("int", 10, True)
    x = sample[0][:8].reshape(8, -1).astype(np.float32)
    errors: list[str | None] = [None] * 7 + ["blank picture"]
    rows = scorer.score(InputBatch(partition=0, offset=0, ids=pa.array(np.arange(8)), pixels=x, errors=errors))
    flags = rows.column(rows.schema.get_field_index("not_a_digit")).to_pylist()
    assert flags[:7] == (x[:7].sum(axis=1) < 20_000).tolist() and flags[7] is None
    assert rows.column(rows.schema.get_field_index("digit")).to_pylist()[:7] == expected[:7].tolist()


def test_the_bundled_detector_flags_what_predict_flags(sources, tmp_path: Path) -> None:
    from digitlab.data.idx import read_idx
    from digitlab.models.io import bundled_dir, load_model
    from digitlab.novelty import not_a_digit

    _, table = _score(sources, "idx", tmp_path / "out.parquet", workers=1)
    x = read_idx(sources["idx"][0]).reshape(N, -1).astype(np.float32)
    want = not_a_digit(load_model(bundled_dir(), name="default"), x)
    assert want is not None and table["not_a_digit"].to_pylist() == want.tolist()
