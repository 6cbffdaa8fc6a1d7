"""Metrics, subset evaluation and the HTML report."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.evaluate import binary_metrics, evaluate, multiclass_metrics
from digitlab.models import make_model
from digitlab.report import write_report


def test_multiclass_metrics_on_a_known_example() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    proba = np.eye(3)[pred] * 0.8 + 0.2 / 3
    m = multiclass_metrics(y, pred, proba, np.array([0, 1, 2]))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["per_class"]["1"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["1"]["recall"] == pytest.approx(1.0)
    assert m["per_class"]["2"]["accuracy"] == pytest.approx(5 / 6)  # one-vs-rest: 1 TP + 4 TN of 6
    p_true = proba[np.arange(6), y]
    assert m["mean_proba_true"] == pytest.approx(p_true.mean())
    assert m["mean_proba_rest"] == pytest.approx(((1 - p_true) / 2).mean())
    assert m["per_class"]["0"]["proba_pos"] == pytest.approx(proba[:2, 0].mean())


def test_binary_metrics_precision_recall_f1() -> None:
    y = np.array([1, 1, 0, 0, 0])
    pred = np.array([1, 0, 1, 0, 0])
    proba = np.column_stack([1 - pred * 0.9, pred * 0.9])
    m = binary_metrics(y, pred, proba)
    assert (m["accuracy"], m["precision"], m["recall"], m["f1"]) == pytest.approx((0.6, 0.5, 0.5, 0.5))
    assert m["confusion"] == [[2, 1], [1, 1]]


def test_model_of_two_digits_is_evaluated_on_those_rows_only(small_train, mnist_test) -> None:
    x, y = small_train
    keep = np.isin(y, [2, 3])
    est = make_model("centroid").fit(x[keep], y[keep])
    xt, yt = mnist_test
    ev = evaluate(est, xt[:1000], yt[:1000])
    assert ev.metrics["n"] == int(np.isin(yt[:1000], [2, 3]).sum())
    assert ev.metrics["classes"] == [2, 3]
    assert ev.metrics["accuracy"] > 0.9


def test_binary_model_is_evaluated_against_is_digit(small_train, mnist_test) -> None:
    x, y = small_train
    est = make_model("sgd", digit=1).fit(x, y)
    xt, yt = mnist_test
    ev = evaluate(est, xt[:500], yt[:500])
    assert ev.binary
    np.testing.assert_array_equal(ev.actual, (yt[:500] == 1).astype(int))
    assert ev.metrics["positives"] == int((yt[:500] == 1).sum())
    assert ev.metrics["f1"] > 0.8


def test_report_is_self_contained_html_with_figures(small_train, mnist_test, tmp_path) -> None:
    x, y = small_train
    est = make_model("centroid").fit(x, y)
    ev = evaluate(est, *mnist_test[0][:300][None], mnist_test[1][:300])
    index = write_report(tmp_path / "rep", ev, title="t", est=est, train_counts={str(d): 300 for d in range(10)})
    page = index.read_text()
    assert page.count("data:image/png;base64,") == 6
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"confusion.png", "confusion_log.png", "misclassified.png", "probabilities.png",
            "train_distribution.png", "weights.png", "index.html"} == names
    assert "Per-class metrics" in page
