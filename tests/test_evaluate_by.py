"""``digitlab evaluate --by COLUMN``: accuracy per group (a writer, a label), the worst first."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from digitlab.data import PenDigits, write_unipen
from digitlab.errors import UserError
from digitlab.evaluate import GroupAccuracy, accuracy_by, evaluate

WRITERS = (3, 11, 28, 30)


@pytest.fixture(scope="module")
def by_home(tmp_path_factory: pytest.TempPathFactory, pen_digits: PenDigits, small_train, mnist_dir: Path):
    """A home with a nearest-centroid model (MNIST) and a table ``few`` of 20 pen digits of each of 4 writers."""
    from digitlab.cli import app
    from digitlab.models import make_model
    from digitlab.models.card import ModelCard
    from digitlab.models.io import save_model

    home = tmp_path_factory.mktemp("by-home")
    save_model(make_model("centroid").fit(*small_train), home / "models" / "centroid", ModelCard(model="centroid"))
    rows = np.concatenate([np.flatnonzero(pen_digits.writers == w)[:20] for w in WRITERS])
    path = write_unipen(home / "few.tra", pen_digits, rows)
    env = {"DIGITLAB_HOME": str(home), "DIGITLAB_DATA": str(mnist_dir)}
    r = CliRunner().invoke(app, ["data", "import", str(path), "--name", "few", "-f", "json"], env=env)
    assert r.exit_code == 0, r.output
    return env


def _run(env, *args):
    from digitlab.cli import app
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def _settings(env):
    from digitlab.settings import get_settings
    return get_settings(home=Path(env["DIGITLAB_HOME"]), data_dir=Path(env["DIGITLAB_DATA"]))


def test_accuracy_by_puts_the_worst_group_first_and_breaks_ties_in_group_order():
    groups = [10, 2, 2, 10, 7, 7, None]
    actual = np.array([1, 1, 1, 1, 1, 1, 1])
    pred = np.array([0, 1, 0, 1, 1, 1, 0])
    got = accuracy_by(groups, actual, pred)
    assert got == [GroupAccuracy(None, 1, 0, 0.0), GroupAccuracy(2, 2, 1, 0.5), GroupAccuracy(10, 2, 1, 0.5),
                   GroupAccuracy(7, 2, 2, 1.0)]
    with pytest.raises(UserError, match="lists or arrays"):
        accuracy_by([[1], [2]], np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(UserError, match="3 group values for 2 rows"):
        accuracy_by([1, 2, 3], np.array([0, 1]), np.array([0, 1]))


def test_evaluate_keeps_groups_aligned_when_it_drops_unknown_labels(small_train, mnist_test):
    from digitlab.models import make_model

    x, y = small_train
    low = y < 5
    est = make_model("centroid").fit(x[low], y[low])
    images, labels = mnist_test[0][:300], mnist_test[1][:300]
    groups = [f"g{i % 3}" for i in range(300)]
    ev = evaluate(est, images, labels, groups=groups)
    keep = labels < 5
    assert ev.groups is not None and ev.groups.tolist() == [g for g, k in zip(groups, keep, strict=True) if k]
    pred = est.predict(images[keep].reshape(-1, 784))
    for g in ev.by_group():
        rows = np.array([x == g.group for x in ev.groups])
        assert g.n == rows.sum() and g.right == int((pred[rows] == labels[keep][rows]).sum())
    with pytest.raises(UserError, match="no groups"):
        evaluate(est, images, labels).by_group()


def test_evaluate_saved_groups_by_writer(by_home, pen_digits: PenDigits):
    from digitlab.models.io import load_model
    from digitlab.store import Store
    from digitlab.workflows import EvaluateSpec, evaluate_saved

    settings = _settings(by_home)
    result = evaluate_saved(EvaluateSpec(name="centroid", dataset="few", by="writer", record=False), settings=settings)
    assert result.by == "writer" and result.by_group is not None
    assert sorted(g.group for g in result.by_group) == list(WRITERS)
    accs = [g.accuracy for g in result.by_group]
    assert accs == sorted(accs)
    images, labels, _ = Store(settings.store_path).load("few")
    writers = np.array(Store(settings.store_path).load_column("few", "writer")[1])
    pred = load_model(settings.models_dir / "centroid").estimator.predict(images.reshape(-1, 784))
    for g in result.by_group:
        rows = writers == g.group
        assert g.n == 20 and g.right == int((pred[rows] == labels[rows]).sum())
    assert sum(g.right for g in result.by_group) == round(result.evaluation.metrics["accuracy"] * 80)

    where = evaluate_saved(EvaluateSpec(name="centroid", dataset="few", where="writer >= 28", by="label",
                                        record=False), settings=settings)
    assert where.by_group is not None and sum(g.n for g in where.by_group) == 40
    assert {g.group for g in where.by_group} <= set(range(10))
    with pytest.raises(UserError, match="no column 'writr'; its columns: id, label, pixels, writer, strokes"):
        evaluate_saved(EvaluateSpec(name="centroid", dataset="few", by="writr", record=False), settings=settings)


def test_cli_by_writer_in_json_csv_and_table(by_home):
    r = _run(by_home, "evaluate", "centroid", "--table", "few", "--by", "writer", "-f", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["group_by"] == "writer" and doc["metrics"]["n"] == 80
    by = doc["by"]
    assert [set(g) for g in by] == [{"group", "n", "right", "accuracy"}] * 4
    assert sorted(g["group"] for g in by) == list(WRITERS)
    assert [g["accuracy"] for g in by] == sorted(g["accuracy"] for g in by)
    assert all(g["accuracy"] == g["right"] / g["n"] for g in by)

    r = _run(by_home, "evaluate", "centroid", "--dataset", "few", "--by", "writer", "-f", "csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["writer", "n", "right", "accuracy"]
    assert [[int(w), int(n), int(k)] for w, n, k, _ in rows[1:]] == [[g["group"], g["n"], g["right"]] for g in by]

    r = _run(by_home, "evaluate", "centroid", "--table", "few", "--by", "label")
    assert r.exit_code == 0, r.output
    assert "accuracy by label, the worst first" in r.stdout


@pytest.mark.parametrize(("dataset", "column", "message"), [
    ("few", "writr", "the table 'few' has no column 'writr'; its columns: id, label, pixels, writer, strokes"),
    ("mnist_test", "writer", "the dataset 'mnist_test' has no column 'writer'; its columns: id, label, pixels"),
    ("few", "pixels", "cannot group rows by 'pixels'"),
])
def test_cli_by_a_column_that_does_not_exist_exits_2(by_home, dataset, column, message):
    r = _run(by_home, "evaluate", "centroid", "--table", dataset, "--by", column, "-f", "json")
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
