"""Issue 17's CLI and runs, each test reproducing a failure the issue quotes: pipes, narrow terminals, CSV,
suggestions, completion, per-model help, examples, runs and versions, the MLflow export, the Kaggle flow,
stored digits, binary reports."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

_SRC = str(Path(__file__).resolve().parents[2] / "src")


def _json(result) -> dict:
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def _digitlab(*args: str, env: dict[str, str], columns: int = 80, **kw) -> subprocess.CompletedProcess:
    """Run ``python -m digitlab ARGS`` as a user would, in a terminal of ``columns`` columns."""
    full = {**os.environ, **env, "COLUMNS": str(columns), "PYTHONPATH": _SRC}
    return subprocess.run([sys.executable, "-m", "digitlab", *args], env=full, capture_output=True, text=True,
                          timeout=300, check=False, **kw)


@pytest.fixture
def bare() -> object:
    """Invoke the CLI without MNIST or a home (help, completion)."""
    from digitlab.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


# ------------------------------------------------------------------------------------------ pipes


def test_sql_csv_into_head_ends_quietly_with_exit_0(tmp_path: Path) -> None:
    # issue: `digitlab sql "..." -f csv | head -1` ended with "internal error: BrokenPipeError", exit 1
    env = {**os.environ, "DIGITLAB_HOME": str(tmp_path), "PYTHONPATH": _SRC}
    proc = subprocess.Popen([sys.executable, "-m", "digitlab", "sql", "SELECT * FROM range(300000)", "-f", "csv"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == "range\n"
    proc.stdout.close()  # what head does after its line
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == ""


# ---------------------------------------------------------------------------------- narrow tables


def test_data_info_at_80_columns_shows_every_count(mnist_dir: Path) -> None:
    # issue: `digitlab data info` at 80 columns showed `67…` in place of 6742
    for columns in (80, 50, 120):
        out = _digitlab("data", "info", env={"DIGITLAB_DATA": str(mnist_dir)}, columns=columns)
        assert out.returncode == 0, out.stderr
        assert "6742" in out.stdout and "60000" in out.stdout and "1135" in out.stdout
        assert "…" not in out.stdout
        assert max(len(line) for line in out.stdout.splitlines()) <= columns


def test_a_table_never_cuts_a_value_and_a_title_never_splits_a_word() -> None:
    from rich.console import Console

    from digitlab.cli._common import print_table

    columns = ["run", "model", "params", "accuracy", "created"]
    rows = [("train-20261201-225939-2a64ca27", "svm-rbf@v12", "C=10.0 gamma=0.05 n_components=50", 0.9865,
             "2026-12-01 22:59")]
    title = "centroid trained on 500 images (stratified sample) in 0.0 s, saved as centroid@v1"
    for width in (45, 60, 80, 200):  # from the width of "run: " and the longest id on
        buf = io.StringIO()
        print_table(columns, rows, title=title, out=Console(file=buf, width=width))
        text = buf.getvalue()
        assert "…" not in text
        words = text.split()
        for value in ("train-20261201-225939-2a64ca27", "svm-rbf@v12", "0.9865", "gamma=0.05"):
            assert value in words, (width, text)  # whole, never cut or folded
        assert all(w in words for w in title.split()), (width, text)


# ------------------------------------------------------------------------------------ -f csv


def test_csv_is_honoured_by_a_command_without_a_table(cli, home: Path, mnist_test, tmp_path: Path) -> None:
    # issue: `-f csv` was ignored by `evaluate` (and `data explore`): they printed their table
    assert cli("train", "centroid", "--train-size", "300", "--name", "c").exit_code == 0
    out = cli("evaluate", "c", "--where", "id < 500", "-f", "csv")
    assert out.exit_code == 0, out.stderr
    rows = {r[0]: r[1] for r in csv.reader(io.StringIO(out.stdout))}
    assert rows["key"] == "value" and rows["name"] == "c" and 0 < float(rows["metrics.accuracy"]) <= 1
    assert "metrics.per_class.3.f1" in rows and json.loads(rows["metrics.confusion"])[0][0] >= 0


def test_csv_rows_of_nested_results_and_lists_of_records() -> None:
    from digitlab.cli._common import csv_rows

    assert csv_rows({"a": 1, "b": {"c": [1, 2], "d": None}}) == (["key", "value"],
                                                                  [["a", 1], ["b.c", "[1, 2]"], ["b.d", None]])
    assert csv_rows([{"x": 1}, {"x": 2, "y": 3}]) == (["x", "y"], [[1, None], [2, 3]])


# ---------------------------------------------------------------------------------- suggestions


def test_a_misspelt_option_suggests_the_real_one(cli, bare) -> None:
    # issue: `--train-sise` was taken as a model parameter and `--train-size` not suggested
    out = cli("train", "logreg", "--train-sise", "100")
    assert out.exit_code == 2 and "did you mean --train-size?" in out.stderr and "Traceback" not in out.stderr
    out = cli("train", "cnn", "--epoch", "2", "--dry-run")
    assert out.exit_code == 2 and "did you mean --epochs" in out.stderr
    out = bare("runs", "--limt", "3")
    assert out.exit_code == 2 and "--limit" in out.stderr


# ------------------------------------------------------------------------------ help and completion


def test_shell_completion_is_offered(bare, tmp_path: Path) -> None:
    # issue: no shell completion
    assert "--install-completion" in bare("--help").stdout
    out = _digitlab("--show-completion", "bash", env={"HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "complete -o default -F" in out.stdout and "COMPLETE=complete_bash" in out.stdout


def test_train_model_help_lists_the_models_parameters(bare) -> None:
    # issue: `digitlab train cnn --help` said nothing of the CNN's parameters
    out = bare("train", "cnn", "--help")
    assert out.exit_code == 0
    text = " ".join(out.stdout.split())
    assert "Parameters of cnn" in text
    for option, default in (("--batch-size", "128"), ("--recipe", "'default'"), ("--int8", "True"),
                            ("--weight-decay", "0.02")):
        assert option in text and default in text
    assert "Peak learning rate" in text  # the estimator's own description
    logreg = " ".join(bare("train", "logreg", "--help").stdout.split())
    assert "--max-iter" in logreg and "100" in logreg and "Parameters of logreg" in logreg
    assert "Parameters of" not in bare("train", "--help").stdout


def test_every_command_has_examples_and_the_top_level_help_shows_the_workflow(bare) -> None:
    # issue: no examples in the help; the top level did not show the workflow
    from digitlab.cli import EXAMPLES

    for path, examples in EXAMPLES.items():
        out = bare(*path.split(), "--help")
        assert out.exit_code == 0, path
        text = " ".join(out.stdout.split())
        assert "Examples" in text and " ".join(examples[0].split()) in text, path
    top = " ".join(bare("--help").stdout.split())
    places = [top.index(panel) for panel in ("1. Data", "2. Train", "3. Evaluate", "4. Serve")]
    assert places == sorted(places)
    steps = [top.index(step) for step in ("1. data", "2. train", "3. evaluate", "4. serve")]
    assert steps == sorted(steps)


def test_explain_help_keeps_its_default(bare) -> None:
    # issue: `explain --help` lost "[default: the prediction]" to Rich markup
    text = " ".join(bare("explain", "--help").stdout.split())
    assert "default: (the predicted digit)" in text


# ----------------------------------------------------------------------------- runs and versions


def test_training_again_adds_a_version_and_old_runs_keep_their_model(cli, home: Path) -> None:
    # issue: a second `digitlab train logreg` overwrote models/logreg, so older runs pointed at a model gone
    first = _json(cli("train", "centroid", "--train-size", "300", "--name", "c", "-f", "json"))
    second = _json(cli("train", "centroid", "--train-size", "600", "--name", "c", "-f", "json"))
    assert (first["version"], second["version"]) == (1, 2)
    runs = {r["run"]: r for r in _json(cli("runs", "-f", "json"))}
    old = runs[first["run"]]
    assert old["model_version"] == 1 and Path(old["artifacts"]["model"]) == home / "models" / "c" / "v1"
    assert (Path(old["artifacts"]["model"]) / "card.json").is_file()
    ev1 = _json(cli("evaluate", "c@v1", "--where", "id < 200", "-f", "json"))
    ev2 = _json(cli("evaluate", "c", "--where", "id < 200", "-f", "json"))
    assert (ev1["version"], ev2["version"]) == (1, 2)
    listed = _json(cli("models", "list", "-f", "json"))
    assert next(m for m in listed if m["name"] == "c")["versions"] == [1, 2]
    shown = _json(cli("models", "show", "c@v1", "-f", "json"))
    assert shown["version"] == 1 and shown["train"]["n"] == 300 and shown["run"] == first["run"]
    assert cli("models", "rm", "c@v1").exit_code == 2  # not a terminal: --yes is needed
    assert _json(cli("models", "rm", "c@v1", "--yes", "-f", "json"))["removed"] == [str(home / "models" / "c" / "v1")]
    bad = cli("evaluate", "c@v1")
    assert bad.exit_code == 2 and "no version 1" in bad.stderr
    assert cli("models", "rm", "default", "--yes").exit_code == 2
    assert runs[first["run"]]["run"] in {r["run"] for r in _json(cli("runs", "-f", "json"))}


def test_a_flat_model_folder_is_version_1_and_moves_into_v1_on_the_next_save(cli, home: Path, small_train) -> None:
    from digitlab.models import make_model
    from digitlab.models.card import ModelCard
    from digitlab.models.io import model_path, save_model

    save_model(make_model("centroid").fit(*small_train), home / "models" / "old", ModelCard(model="centroid"))
    assert model_path("old", home / "models") == home / "models" / "old"
    assert _json(cli("evaluate", "old@v1", "--where", "id < 100", "-f", "json"))["version"] == 1
    out = _json(cli("train", "centroid", "--train-size", "300", "--name", "old", "-f", "json"))
    assert out["version"] == 2
    assert sorted(p.name for p in (home / "models" / "old").iterdir()) == ["v1", "v2"]
    assert (home / "models" / "old" / "v1" / "weights.safetensors").is_file()
    assert _json(cli("evaluate", "old@v1", "--where", "id < 100", "-f", "json"))["version"] == 1


def test_runs_records_everything_and_lists_short_ids_compare_accepts(cli, home: Path, mnist_dir: Path,
                                                                       tmp_path: Path) -> None:
    # issue: `digitlab runs` cut off the run ids compare needs; a run recorded no train size, sample, seed or
    # git commit and linked none of its artifacts; learning curves were not recorded; compare showed no params
    a = _json(cli("train", "centroid", "--train-size", "300", "--seed", "3", "-f", "json"))
    b = _json(cli("train", "logreg", "--train-size", "300", "--max-iter", "5", "-f", "json"))
    e = _json(cli("evaluate", "logreg", "--where", "id < 300", "--report", tmp_path / "rep", "-f", "json"))
    c = _json(cli("learning-curve", "centroid", "--sizes", "100,200", "--plot", tmp_path / "lc.png", "-f", "json"))
    runs = {r["run"]: r for r in _json(cli("runs", "-f", "json"))}
    ra = runs[a["run"]]
    assert (ra["train_size"], ra["sample"], ra["seed"]) == (300, 300, 3) and len(ra["data_sha256"]) == 64
    assert ra["environment"]["numpy"] == np.__version__ and ra["environment"]["cores"] >= 1
    assert ra["duration_seconds"] >= ra["train_seconds"] > 0
    assert "git_commit" in ra  # the working directory's commit when it is a repository, else empty
    assert Path(runs[e["run"]]["artifacts"]["report"]).name == "index.html"
    curve = runs[c["run"]]
    assert curve["kind"] == "curve" and curve["artifacts"]["plot"] == str(tmp_path / "lc.png")
    shorts = {r["run"]: r["id"] for r in runs.values()}
    assert all(4 <= len(s) < len(r) for r, s in shorts.items())
    listing = _digitlab("runs", env={"DIGITLAB_HOME": str(home)}, columns=80)
    assert listing.returncode == 0 and "…" not in listing.stdout
    assert all(s in listing.stdout.split() for s in shorts.values())
    out = _json(cli("compare", shorts[a["run"]], shorts[b["run"]], "--plot", tmp_path / "cmp.png", "-f", "json"))
    rows = {r["metric"]: r for r in out["table"]}
    assert rows["param C"][b["run"]] == 1.0 and rows["param temperature"][a["run"]] == pytest.approx(1000.0)
    assert rows["param max_iter"][b["run"]] == 5 and rows["seed"][a["run"]] == 3
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    latest = _json(cli("compare", "latest", "latest~1", "-f", "json"))
    assert [r["run"] for r in latest["runs"]] == [c["run"], e["run"]]


def test_runs_export_writes_an_mlflow_store_the_mlflow_client_reads(cli, home: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # issue: there was no way to see runs the way MLflow users do
    from mlflow.tracking import MlflowClient

    from digitlab.runs import record_run
    from digitlab.store import Store

    trained = _json(cli("train", "centroid", "--train-size", "300", "--seed", "2", "-f", "json"))
    record_run(Store(home / "digitlab.duckdb"), run="train-20260101-000000-cafe0001", kind="train",
               model_name="cnn", model_type="cnn", params={"epochs": 2, "lr": 0.01}, dataset="mnist_train",
               where=None, train_seconds=5.0, accuracy=0.99, metrics={"accuracy": 0.99},
               epochs=[{"epoch": 1, "loss": 0.5, "accuracy": 0.9}, {"epoch": 2, "loss": 0.2, "accuracy": 0.95}],
               git="abc123", model_version=1, artifacts={"model": "/m/cnn/v1", "version": 1})
    out = _json(cli("runs", "export", "--mlflow", tmp_path / "mlruns", "-f", "json"))
    assert len(out["exported"]) == 2
    assert _json(cli("runs", "export", "--mlflow", tmp_path / "mlruns", "-f", "json"))["skipped"] == out["exported"]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    exp = client.get_experiment_by_name("digitlab")
    found = {r.data.tags["digitlab.run"]: r for r in client.search_runs([exp.experiment_id])}
    assert set(found) == {trained["run"], "train-20260101-000000-cafe0001"}
    mine = found[trained["run"]]
    assert mine.info.status == "FINISHED" and mine.data.params["train_size"] == "300"
    assert mine.data.params["seed"] == "2" and mine.data.params["temperature"] == "1000.0"
    assert mine.data.metrics["accuracy"] == pytest.approx(trained["test"]["accuracy"])
    assert mine.data.tags["digitlab.model"] == "centroid@v1" and len(mine.data.tags["digitlab.data_sha256"]) == 64
    cnn = found["train-20260101-000000-cafe0001"]
    assert cnn.data.tags["mlflow.source.git.commit"] == "abc123" and cnn.info.run_name == "cafe"
    history = client.get_metric_history(cnn.info.run_id, "epoch_loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.2)]
    assert [a.path for a in client.list_artifacts(cnn.info.run_id)] == ["digitlab_run.json"]


# --------------------------------------------------------------------------------------- Kaggle


def _kaggle_csv(path: Path, x: np.ndarray, header: bool) -> None:
    lines = [",".join(f"pixel{i}" for i in range(784))] if header else []
    lines += [",".join(map(str, row)) for row in x.reshape(len(x), -1)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("header", [True, False])
def test_predict_input_csv_writes_a_kaggle_submission(cli, model_home: Path, mnist_test, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, header: bool) -> None:
    # issue: Kaggle's unlabelled test.csv was refused, and there was no way to write a submission.csv
    monkeypatch.setenv("DIGITLAB_HOME", str(model_home))
    x, y = mnist_test
    _kaggle_csv(tmp_path / "test.csv", x[:60], header)
    out = _json(cli("predict", "centroid", "--input", tmp_path / "test.csv", "--out", tmp_path / "sub.csv",
                    "-f", "json"))
    assert out["n"] == 60 and sum(out["counts"].values()) == 60
    rows = list(csv.reader((tmp_path / "sub.csv").open()))
    assert rows[0] == ["ImageId", "Label"] and [r[0] for r in rows[1:]] == [str(i) for i in range(1, 61)]
    labels = np.array([int(r[1]) for r in rows[1:]])
    assert (labels == y[:60]).mean() > 0.6


def test_predict_input_refuses_a_labelled_or_broken_csv(cli, model_home: Path, mnist_test, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from digitlab.data import write_csv

    monkeypatch.setenv("DIGITLAB_HOME", str(model_home))
    x, y = mnist_test
    write_csv(tmp_path / "labelled.csv", x[:5], y[:5])
    out = cli("predict", "centroid", "--input", tmp_path / "labelled.csv")
    assert out.exit_code == 2 and "785" in out.stderr and "digitlab evaluate" in out.stderr
    _kaggle_csv(tmp_path / "bad.csv", np.full((2, 784), 300), header=False)
    out = cli("predict", "centroid", "--input", tmp_path / "bad.csv")
    assert out.exit_code == 2 and "0-255" in out.stderr
    assert cli("predict", "centroid").exit_code == 2
    assert cli("predict", "centroid", tmp_path / "x.png", "--out", tmp_path / "s.csv").exit_code == 2


def test_predict_says_when_the_model_says_it_is_not_a_digit(cli, model_home: Path, mnist_test, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from digitlab.models.centroid import NearestCentroidClassifier

    monkeypatch.setenv("DIGITLAB_HOME", str(model_home))
    # the hook a model's detector plugs into (issue 14): here ink fewer than 8 rows high is "not a digit"
    monkeypatch.setattr(NearestCentroidClassifier, "not_a_digit", lambda self, X: (
        np.asarray(X).reshape(len(X), 28, 28) > 50).any(axis=2).sum(axis=1) < 8, raising=False)
    x, _ = mnist_test
    Image.fromarray(x[0]).save(tmp_path / "digit.png")
    scribble = np.zeros((28, 28), np.uint8)
    scribble[12:15, 4:24] = 255
    Image.fromarray(scribble).save(tmp_path / "dash.png")
    out = cli("predict", "centroid", tmp_path / "dash.png", tmp_path / "digit.png")
    assert out.exit_code == 0 and "that doesn't look like a digit" in out.stdout
    doc = _json(cli("predict", "centroid", tmp_path / "dash.png", tmp_path / "digit.png", "-f", "json"))
    dash, digit = doc["predictions"]
    assert dash["not_a_digit"] is True and dash["digit"] is not None and digit["not_a_digit"] is False


# ------------------------------------------------------------------------------- stored digits


def test_show_prints_a_stored_digit_and_writes_a_png(cli, mnist_test, tmp_path: Path) -> None:
    # issue: no command showed or explained a stored row by id
    x, y = mnist_test
    out = cli("show", "mnist_test", "0", "--out", tmp_path / "zero.png", "--scale", "4")
    assert out.exit_code == 0, out.stderr
    assert f"label {y[0]}" in out.stdout and "@" in out.stdout
    assert np.array_equal(np.asarray(Image.open(tmp_path / "zero.png"))[::4, ::4], x[0])
    doc = _json(cli("show", "mnist_test", "3", "-f", "json"))
    assert doc["label"] == int(y[3]) and np.array_equal(np.array(doc["pixels"]), x[3])
    bad = cli("show", "mnist_test", "99999")
    assert bad.exit_code == 2 and "id = 99999" in bad.stderr and "empty" in bad.stderr


def test_explain_a_stored_digit_by_table_and_id(cli, model_home: Path, mnist_test, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITLAB_HOME", str(model_home))
    doc = _json(cli("explain", "centroid", "--table", "mnist_test", "--id", "0", "--out", tmp_path / "why.png",
                    "-f", "json"))
    assert doc["label"] == int(mnist_test[1][0]) and doc["id"] == 0 and (tmp_path / "why.png").is_file()
    assert len(doc["contributions"]) == 28
    assert cli("explain", "centroid", "--table", "mnist_test", "--out", tmp_path / "w.png").exit_code == 2


# ------------------------------------------------------------------------------ reports and dpmm


def test_a_binary_report_names_its_classes(cli, tmp_path: Path) -> None:
    # issue: a binary (sgd, digit 0) report labelled its classes 0 and 1, which read as the digits 0 and 1
    assert cli("train", "sgd", "--digit", "0", "--train-size", "500", "--name", "s0").exit_code == 0
    assert cli("evaluate", "s0", "--where", "id < 2000", "--report", tmp_path / "rep").exit_code == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "<th>classes</th><td>0 vs not 0</td>" in page


def test_dpmm_complete_without_out_prints_json(cli) -> None:
    # issue: the docs' `dpmm complete ... --format json` example failed: --out was required
    assert cli("dpmm", "fit", "--chains", "1", "--iters", "0", "--name", "dp").exit_code == 0
    doc = _json(cli("dpmm", "complete", "dp", "--keep", "left", "--n", "2", "--format", "json"))
    assert doc["out"] is None and len(doc["images"]) == 2 and len(doc["images"][0]["probabilities"]) == 784
