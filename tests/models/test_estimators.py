"""Each model family: accuracy floor on a small sample, save/load round trip, exact contributions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from digitlab.models import MODELS, make_model
from digitlab.models.card import ModelCard
from digitlab.models.io import load_model, save_model

# Test accuracy after training on 3000 images (300 per digit); full-data figures are in BENCHMARKS.md.
FLOORS = {
    "logreg": 0.85,
    "svm-linear": 0.85,
    "svm-rbf": 0.93,
    "svm-poly": 0.92,
    "svm-sigmoid": 0.85,
    "trees": 0.88,
}


def test_every_new_family_is_registered() -> None:
    assert set(FLOORS) | {"sgd", "centroid"} <= set(MODELS)


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_accuracy_floor_on_small_sample(name: str, fitted, small_test) -> None:
    x, y = small_test
    acc = float((fitted[name].predict(x) == y).mean())
    assert acc >= FLOORS[name], f"{name}: {acc:.4f} < {FLOORS[name]}"


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_proba_rows_sum_to_one_and_agree_with_predict(name: str, fitted, small_test) -> None:
    x, _ = small_test
    est = fitted[name]
    p = est.predict_proba(x[:300])
    assert p.shape == (300, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(est.classes_[p.argmax(axis=1)], est.predict(x[:300]))


def test_sgd_zero_vs_rest_reports_binary_labels(fitted, small_test) -> None:
    from sklearn.metrics import f1_score

    x, y = small_test
    est = fitted["sgd"]
    truth = est.binary_target(y)
    pred = est.predict(x)
    assert set(np.unique(pred)) <= {0, 1}
    assert (pred == truth).mean() >= 0.97
    assert f1_score(truth, pred) >= 0.85


@pytest.mark.parametrize("name", [*sorted(FLOORS), "sgd"])
def test_save_load_round_trip_predicts_identically(name: str, fitted, small_test, tmp_path) -> None:
    x, _ = small_test
    est = fitted[name]
    save_model(est, tmp_path / name, ModelCard(model=name, notes={"note": "test"}))
    loaded = load_model(tmp_path / name)
    assert loaded.card.model == name
    assert loaded.estimator.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.estimator.predict(x), est.predict(x))
    np.testing.assert_allclose(loaded.estimator.predict_proba(x[:200]), est.predict_proba(x[:200]), rtol=1e-6,
                               atol=1e-9)


def test_saved_weights_are_not_pickles(fitted, tmp_path) -> None:
    save_model(fitted["trees"], tmp_path / "t")
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["card.json", "weights.safetensors"]


@pytest.mark.parametrize("name", ["logreg", "svm-linear"])
def test_linear_contributions_sum_to_class_score(name: str, fitted, small_test) -> None:
    x, _ = small_test
    est = fitted[name]
    for digit in (0, 7):
        k = int(np.flatnonzero(est.classes_ == digit)[0])
        c = est.contributions(x[:50], digit)
        assert c.shape == (50, 784)
        np.testing.assert_allclose(c.sum(axis=1) + est.intercept_[k], est.scores(x[:50])[:, k], rtol=1e-9,
                                   atol=1e-9)


def test_sgd_contributions_sum_to_log_odds(fitted, small_test) -> None:
    x, _ = small_test
    est = fitted["sgd"]
    c = est.contributions(x[:50], 1)
    np.testing.assert_allclose(c.sum(axis=1) + est.intercept_, est.decision_function(x[:50]), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(est.contributions(x[:5], 0), -est.contributions(x[:5], 1))


def test_tree_contributions_sum_to_bag_averaged_score(fitted, small_test) -> None:
    x, _ = small_test
    est = fitted["trees"]
    for digit in (3, 8):
        k = int(np.flatnonzero(est.classes_ == digit)[0])
        c = est.contributions(x[:20], digit)
        assert c.shape == (20, 784)
        np.testing.assert_allclose(c.sum(axis=1) + est.contribution_bias(x[:20], digit), est.scores(x[:20])[:, k],
                                   rtol=1e-6, atol=1e-6)


def test_kernel_svm_probabilities_are_calibrated_on_held_out_images(fitted, small_test) -> None:
    x, y = small_test
    est = fitted["svm-rbf"]
    p = est.predict_proba(x)
    p_true = p[np.arange(len(y)), np.searchsorted(est.classes_, y)]
    # held-out temperature: not one-hot, yet the true class gets most of the mass on average
    assert 0.5 < p_true.mean() < 0.99
    assert est.temperature_ > 0.05


@pytest.mark.parametrize("name", ["svm-rbf", "svm-poly", "svm-sigmoid"])
def test_kernel_svms_have_no_exact_contributions(name: str) -> None:
    assert not hasattr(make_model(name), "contributions")


def test_kernel_svm_numpy_decisions_match_libsvm(fitted, small_train, small_test) -> None:
    from sklearn.svm import SVC

    from digitlab.models._svm import _calibration_split

    est = fitted["svm-rbf"]
    x, y = small_train
    rows, _ = _calibration_split(np.searchsorted(est.classes_, y), est.calibration_size, est.random_state)
    svc = SVC(kernel="rbf", C=est.C, gamma=est.gamma, decision_function_shape="ovo").fit(est._Z(x[rows]), y[rows])
    z = est._Z(small_test[0][:200])
    np.testing.assert_allclose(est._ovo(z), svc.decision_function(z), atol=2e-3)


def test_logreg_ovr_is_one_vs_rest(small_train, small_test) -> None:
    x, y = small_train
    est = make_model("logreg", multi_class="ovr", max_iter=50).fit(x[:1000], y[:1000])
    p = est.predict_proba(small_test[0][:100])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert (est.predict(small_test[0]) == small_test[1]).mean() >= 0.8


def test_grid_search_clones_and_sets_params(small_train) -> None:
    x, y = small_train
    gs = GridSearchCV(make_model("logreg", max_iter=30), {"C": [0.1, 1.0]}, cv=2).fit(x[:600], y[:600])
    assert gs.best_params_["C"] in (0.1, 1.0)
    assert clone(gs.best_estimator_).get_params()["C"] == gs.best_params_["C"]


def test_bad_parameter_value_raises_value_error(small_train) -> None:
    x, y = small_train
    with pytest.raises(ValueError, match="multi_class"):
        make_model("logreg", multi_class="both").fit(x[:100], y[:100])
    with pytest.raises(ValueError, match="feature_fraction"):
        make_model("trees", feature_fraction=1.5).fit(x[:100], y[:100])


def test_model_trained_on_two_digits_knows_only_them(small_train) -> None:
    x, y = small_train
    keep = np.isin(y, [2, 3])
    est = make_model("logreg", max_iter=50).fit(x[keep], y[keep])
    np.testing.assert_array_equal(est.classes_, [2, 3])
    assert est.decision_function(x[:5]).shape == (5,)
    assert est.scores(x[:5]).shape == (5, 2)
    assert (est.predict(x[keep]) == y[keep]).mean() > 0.95


@pytest.mark.parametrize("name, method", [("logreg", "exact"), ("trees", "exact"), ("svm-rbf", "occlusion")])
def test_explain_uses_exact_contributions_where_the_model_has_them(name: str, method: str, fitted,
                                                                  small_test) -> None:
    from digitlab.explain import explain

    x, _ = small_test
    e = explain(fitted[name], x[0])
    assert e.method == method
    assert e.contributions.shape == (28, 28)
    assert np.isfinite(e.contributions).all()
