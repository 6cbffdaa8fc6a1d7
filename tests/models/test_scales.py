"""Input scales (issue 17): 0-255 and 0-1 pixels both fit, the other pixel scale is refused, features are features."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from digitlab.errors import ParameterError
from digitlab.models import MODELS, make_model
from digitlab.models._validation import detect_scale
from digitlab.models.card import ModelCard
from digitlab.models.io import load_model, save_model

QUICK = {"logreg": {"max_iter": 50}, "trees": {"n_bags": 1, "n_estimators": 10},
         "dpmm": {"digits": None, "chains": 1, "iters": 1},
         "cnn": {"recipe": "fast", "epochs": 1, "width": 4, "int8": False, "bf16": False, "n_threads": 1}}


def test_detect_scale() -> None:
    assert detect_scale(np.array([[0, 12, 255]], np.uint8)) == "0-255"
    assert detect_scale(np.array([[0.0, 0.3, 1.0]])) == "0-1"
    assert detect_scale(np.array([[-0.4, 0.3, 2.1]])) == "features"
    assert detect_scale(np.array([[0.0, 300.0]])) == "features"


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"cnn"}))
def test_every_family_fits_0_1_pixels_as_well_as_0_255(name: str, small_train, small_test) -> None:
    x, y = small_train
    xt = small_test[0]
    params = QUICK.get(name, {"digit": 3} if name == "sgd" else {})
    raw = make_model(name, **params).fit(x[:1000], y[:1000])
    unit = make_model(name, **params).fit(x[:1000] / 255.0, y[:1000])
    assert raw.input_scale_ == "0-255" and unit.input_scale_ == "0-1"
    # the same model whichever scale it was given (up to float rounding of the division)
    agree = (raw.predict(xt[:500]) == unit.predict(xt[:500] / 255.0)).mean()
    assert agree >= 0.99, f"{name}: {agree:.3f}"


@pytest.mark.parametrize("name", ["logreg", "svm-rbf", "centroid", "trees"])
def test_pixels_on_the_other_scale_are_refused(name: str, small_train, small_test) -> None:
    x, y = small_train
    xt = small_test[0][:5].reshape(5, -1)
    raw = make_model(name, **QUICK.get(name, {})).fit(x[:500], y[:500])
    with pytest.raises(ParameterError, match=r"fitted on pixels 0-255.*multiply 0-1 images by 255"):
        raw.predict(xt / 255.0)
    with pytest.raises(ParameterError, match=">= 0"):
        raw.predict((xt - 128.0) / 64.0)
    unit = make_model(name, **QUICK.get(name, {})).fit(x[:500] / 255.0, y[:500])
    with pytest.raises(ParameterError, match=r"fitted on pixels 0-1.*divide 0-255 images by 255"):
        unit.predict_proba(xt)
    raw.predict(np.zeros((1, 784)))  # an empty image is on every scale


def test_the_cnn_fits_0_1_pixels_and_refuses_non_pixels(small_train) -> None:
    pytest.importorskip("torch")
    x, y = small_train
    est = make_model("cnn", **QUICK["cnn"]).fit(x[:200] / 255.0, y[:200])
    assert est.input_scale_ == "0-1"
    with pytest.raises(ParameterError, match="0-1"):
        est.predict(x[:2].reshape(2, -1).astype(np.float32))
    with pytest.raises(ParameterError, match="pixel images"):
        make_model("cnn", **QUICK["cnn"]).fit((x[:200].reshape(200, -1) - 128.0) / 64.0, y[:200])


def test_a_standard_scaler_pipeline_scores_like_scikit_learns_logistic_regression(small_train, small_test) -> None:
    """A user's Pipeline([StandardScaler(), logreg]): the features are not pixels, so they are used as given."""
    from sklearn.linear_model import LogisticRegression

    x, y = small_train
    xt, yt = small_test
    X, Xt = x.reshape(len(x), -1).astype(np.float64), xt.reshape(len(xt), -1).astype(np.float64)
    ours = Pipeline([("scale", StandardScaler()), ("logreg", make_model("logreg"))]).fit(X, y)
    theirs = Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression(max_iter=100))]).fit(X, y)
    assert ours.named_steps["logreg"].input_scale_ == "features"
    ours_acc, theirs_acc = ours.score(Xt, yt), theirs.score(Xt, yt)
    assert ours_acc >= 0.85 and abs(ours_acc - theirs_acc) < 0.03


def test_sgd_scores_its_own_binary_target(small_train) -> None:
    x, y = small_train
    est = make_model("sgd", digit=0).fit(x, y)
    score = est.score(x, y)
    assert score == pytest.approx(float((est.predict(x) == (y == 0)).mean()))
    assert score > 0.95


def test_the_input_scale_is_saved_with_the_model(small_train, tmp_path) -> None:
    x, y = small_train
    est = make_model("logreg", max_iter=20).fit(x[:300] / 255.0, y[:300])
    save_model(est, tmp_path / "m", ModelCard(model="logreg"))
    loaded = load_model(tmp_path / "m").estimator
    assert loaded.input_scale_ == "0-1"
    with pytest.raises(ParameterError, match="fitted on pixels 0-1"):
        loaded.predict(x[:2])
