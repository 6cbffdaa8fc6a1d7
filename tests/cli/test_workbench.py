"""``digitlab train / evaluate / learning-curve / runs / compare / predict``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.cli.train import parse_param
from digitlab.errors import UserError


def _json(result) -> dict:
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


@pytest.fixture
def trained(cli, home: Path) -> dict:
    """A centroid model trained on 500 images, saved as 'c'."""
    return _json(cli("train", "centroid", "--train-size", "500", "--name", "c", "--format", "json"))


def test_train_saves_model_card_and_records_run(trained, cli, home: Path) -> None:
    card = json.loads((home / "models" / "c" / "v1" / "card.json").read_text())
    assert card["model"] == "centroid"
    assert card["train"]["n"] == 500 and card["train"]["sample"] == 500
    assert len(card["train"]["sha256"]) == 64
    assert card["metrics"]["test"]["accuracy"] == pytest.approx(trained["test"]["accuracy"])
    runs = _json(cli("runs", "--format", "json"))
    assert [r["run"] for r in runs] == [trained["run"]]


def test_predictions_table_gives_the_confusion_matrix(trained, cli) -> None:
    sql = f"SELECT actual, predicted, count(*) AS n FROM predictions WHERE run = '{trained['run']}' GROUP BY ALL"
    rows = _json(cli("sql", sql, "--format", "json"))["rows"]
    assert sum(r["n"] for r in rows) == 10000
    correct = sum(r["n"] for r in rows if r["actual"] == r["predicted"])
    assert correct / 10000 == pytest.approx(trained["test"]["accuracy"])


def test_set_and_option_sugar_parse_to_param_types(cli) -> None:
    out = _json(cli("train", "logreg", "--train-size", "300", "--set", "C=0.5", "--max-iter", "5",
                    "--multi-class", "ovr", "--format", "json"))
    assert out["params"]["C"] == 0.5 and out["params"]["max_iter"] == 5 and out["params"]["multi_class"] == "ovr"


def test_seed_sets_random_state(cli) -> None:
    out = _json(cli("train", "sgd", "--train-size", "300", "--seed", "7", "--digit", "3", "--format", "json"))
    assert out["params"]["random_state"] == 7 and out["params"]["digit"] == 3
    assert set(out["test"]) >= {"accuracy", "precision", "recall", "f1"}


def test_where_and_folds_run_a_cross_validation(cli) -> None:
    out = _json(cli("train", "centroid", "--where", "id % 10 = 0", "--folds", "3", "--format", "json"))
    assert out["train_size"] == 6000 and len(out["folds"]) == 3
    assert 0.7 < out["mean"]["accuracy"] < 0.9
    runs = _json(cli("runs", "--format", "json"))
    assert runs[0]["kind"] == "cv"


@pytest.mark.parametrize("args, message", [
    (["train", "nope"], "unknown model"),
    (["train", "logreg", "--set", "bogus=1"], "valid: C, max_iter"),
    (["train", "logreg", "--bogus", "1"], "unknown parameter 'bogus'"),
    (["train", "logreg", "--set", "C=abc"], "expected float"),
    (["train", "logreg", "--set", "C"], "key=value"),
    (["train", "centroid", "--resume", "--train-size", "100"], "does not support --resume"),
    (["train", "logreg", "--train-size", "100", "--set", "multi_class=both"], "multi_class"),
    (["train", "centroid", "--where", "nonsense ==="], "bad --where"),
    (["evaluate", "missing"], "no model named"),
    (["compare", "run-a", "run-b"], "no run"),
    (["learning-curve", "centroid", "--sizes", "10,x"], "--sizes"),
])
def test_bad_input_exits_2_with_one_line(cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_with_where_and_report(trained, cli, tmp_path: Path) -> None:
    out = _json(cli("evaluate", "c", "--where", "label < 5", "--report", tmp_path / "rep", "--format", "json"))
    assert out["metrics"]["classes"] == list(range(10))
    assert sum(row["support"] for row in out["metrics"]["per_class"].values()) == out["metrics"]["n"]
    assert out["metrics"]["per_class"]["7"]["support"] == 0
    assert (tmp_path / "rep" / "index.html").exists()


def test_corrupt_or_other_version_model_exits_1(trained, cli, home: Path) -> None:
    # a broken model file is digitlab's problem, not a bad request: exit 1 (ModelError is no UserError)
    card_path = home / "models" / "c" / "v1" / "card.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "format_version": 99}))
    assert cli("evaluate", "c").exit_code == 1
    card_path.write_text(json.dumps(card))
    (home / "models" / "c" / "v1" / "weights.safetensors").write_bytes(b"garbage")
    result = cli("evaluate", "c")
    assert result.exit_code == 1 and "corrupt" in result.stderr


def test_compare_puts_runs_side_by_side(trained, cli) -> None:
    second = _json(cli("train", "logreg", "--train-size", "500", "--max-iter", "20", "--format", "json"))
    out = _json(cli("compare", trained["run"], second["run"], "--format", "json"))
    rows = {r["metric"]: r for r in out["table"]}
    assert rows["accuracy"][trained["run"]] == pytest.approx(trained["test"]["accuracy"])
    assert "f1 [9]" in rows and "recall [0]" in rows


def test_predict_reads_image_files(trained, cli, mnist_test, tmp_path: Path) -> None:
    x, y = mnist_test
    i = int(np.flatnonzero(y == 1)[0])
    Image.fromarray(255 - x[i]).resize((140, 140)).save(tmp_path / "one.png")  # dark ink on white, any size
    out = _json(cli("predict", "c", tmp_path / "one.png", "--format", "json"))
    pred = out["predictions"][0]
    assert pred["digit"] == 1 and sum(pred["probabilities"].values()) == pytest.approx(1.0)


def test_predict_undecodable_image_exits_2(trained, cli, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image")
    result = cli("predict", "c", tmp_path / "bad.png")
    assert result.exit_code == 2 and "cannot decode" in result.stderr


def test_learning_curve_table_and_plot(cli, tmp_path: Path) -> None:
    out = _json(cli("learning-curve", "centroid", "--sizes", "100,400", "--plot", tmp_path / "lc.png",
                    "--format", "json"))
    assert [p["size"] for p in out["points"]] == [100, 400]
    assert (tmp_path / "lc.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("raw, default, expected", [
    ("3", 1, 3), ("0.5", 1.0, 0.5), ("yes", False, True), ("0", True, False), ("2,3", (0,), (2, 3)),
    ("fast", "full", "fast"), ("7", None, 7),
])
def test_parse_param_follows_the_default_type(raw: str, default, expected) -> None:
    assert parse_param("m", "k", raw, default) == expected


def test_parse_param_rejects_bad_bool() -> None:
    with pytest.raises(UserError, match="expected bool"):
        parse_param("m", "k", "maybe", True)


def test_predict_reports_no_ink_instead_of_a_guess(trained, cli, mnist_test, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import digitlab.preprocess as pre

    class NoInkError(UserError):
        """Stand-in for the preprocess engineer's error (used if preprocess does not define one yet)."""

    no_ink = getattr(pre, "NoInkError", NoInkError)
    monkeypatch.setattr(pre, "NoInkError", no_ink, raising=False)
    real = pre.load_image

    def load(path):
        if Path(path).name == "blank.png":
            raise no_ink(f"{path}: no ink")
        return real(path)

    monkeypatch.setattr(pre, "load_image", load)
    Image.fromarray(mnist_test[0][0]).save(tmp_path / "digit.png")
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    out = _json(cli("predict", "c", tmp_path / "blank.png", tmp_path / "digit.png", "--format", "json"))
    blank, digit = out["predictions"]
    assert blank["note"] == "no ink" and blank["digit"] is None
    assert digit["digit"] == int(mnist_test[1][0])


def test_evaluate_on_a_csv_file_and_on_a_store_table(trained, cli, home: Path, mnist_test, tmp_path: Path) -> None:
    from digitlab.data import write_csv
    from digitlab.store import Store

    x, y = mnist_test
    write_csv(tmp_path / "few.csv", x[:200], y[:200])
    out = _json(cli("evaluate", "c", "--dataset", tmp_path / "few.csv", "--where", "label = 1", "--format", "json"))
    assert out["metrics"]["n"] == int((y[:200] == 1).sum())
    Store(home / "digitlab.duckdb").import_arrays("few", x[:200], y[:200])
    out = _json(cli("evaluate", "c", "--dataset", "few", "--format", "json"))
    assert out["metrics"]["n"] == 200


def test_train_on_a_store_table(cli, home: Path, mnist_test) -> None:
    from digitlab.store import Store

    x, y = mnist_test
    Store(home / "digitlab.duckdb").import_arrays("mine", x[:400], y[:400])
    out = _json(cli("train", "centroid", "--table", "mine", "--where", "id < 300", "--format", "json"))
    assert out["train_size"] == 300


def test_unknown_dataset_exits_2(trained, cli) -> None:
    result = cli("evaluate", "c", "--dataset", "no_such_table")
    assert result.exit_code == 2 and "no dataset" in result.stderr


def test_dry_run_saves_and_records_nothing(cli, home: Path) -> None:
    out = _json(cli("train", "centroid", "--dry-run", "--format", "json"))
    assert out["dry_run"] is True and out["path"] is None and out["run"] is None
    assert out["train_size"] == 1000 and out["test"]["n"] == 1000
    assert not (home / "models").exists() and _json(cli("runs", "--format", "json")) == []


def test_out_saves_into_a_folder_with_the_reproducing_command(cli, home: Path, tmp_path: Path) -> None:
    from digitlab.models.card import read_card

    out = _json(cli("train", "logreg", "--train-size", "300", "--max-iter", "5", "--seed", "4", "--out",
                    tmp_path / "lr", "--format", "json"))
    assert out["path"] == str(tmp_path / "lr") and out["name"] == "lr"
    card = read_card(tmp_path / "lr")
    assert card.command == f"digitlab train logreg --train-size 300 --seed 4 --max-iter 5 --out {tmp_path / 'lr'}"
    assert card.seed == 4 and card.train is not None and card.train.n == 300


@pytest.mark.parametrize("args, message", [
    (["models", "requantize", "c"], "needs a cnn model"),
    (["models", "requantize", "nosuch"], "no model named"),
    (["train", "centroid", "--folds", "3", "--dry-run"], "does not take --dry-run"),
    (["train", "centroid", "--checkpoint-dir", "x"], "does not support --checkpoint-dir"),
])
def test_models_and_train_options_refused_with_exit_2(trained, cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_dpmm_fit_writes_the_one_card_shape(cli, home: Path) -> None:
    from digitlab.models.card import read_card

    out = _json(cli("dpmm", "fit", "--chains", "1", "--iters", "0", "--name", "dp", "--format", "json"))
    card = read_card(home / "models" / "dp" / "v1")
    assert card.model == "dpmm" and card.test_accuracy == pytest.approx(out["test_accuracy"])
    assert out["test_accuracy"] > 0.9
    assert card.test_metrics["n"] == out["n_test"] == 2042
    assert card.train is not None and card.train.where == "label IN (2, 3)"
    assert card.train.n == out["n_train"] + card.train.calibration["n"] == 12089
    assert card.notes["digits"] == [2, 3] and len(card.notes["chains"]) == 1
    assert card.notes["clusters_per_chain"] == out["clusters_per_chain"]
    assert card.command == "digitlab dpmm fit --digits 2,3 --chains 1 --iters 0 --threshold 128 --seed 0 --name dp"
    bad = cli("dpmm", "fit", "--digits", "2,x")
    assert bad.exit_code == 2 and "digits must be" in bad.stderr


def test_report_model_and_plot_files_get_the_users_umask(trained, cli, home: Path, tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o027)
    try:
        assert cli("evaluate", "c", "--report", tmp_path / "rep").exit_code == 0
        assert cli("train", "centroid", "--train-size", "200", "--name", "c2").exit_code == 0
    finally:
        os.umask(old)
    written = [*(tmp_path / "rep").iterdir(), *(home / "models" / "c2" / "v1").iterdir()]
    assert {p.name for p in written} >= {"index.html", "confusion.png", "card.json", "weights.safetensors"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {oct(0o640)}
    assert stat.S_IMODE((home / "models" / "c2" / "v1").stat().st_mode) == 0o750
