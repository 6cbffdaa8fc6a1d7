"""The sketchpad's Python side: driven without a browser by setting its strokes, as a lesson would.

The front end's protocol (strokes and ``_asked`` sent together, ``_answered`` echoed) is exercised by
setting the traits as ipywidgets does for a message from the page: both values, then the notifications.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("anywidget", reason="the notebook extra is not installed: pip install 'digitlab[notebook]'")

import traitlets

from digitlab.errors import NotFoundError, UserError
from digitlab.notebook import Sketchpad
from digitlab.preprocess import render_strokes

ONE = [[(140, 40), (141, 140), (139, 240)]]
SEVEN = [[(70, 60), (210, 60), (170, 150), (130, 245)]]
ZERO = [[(140 + 60 * np.sin(t / 24 * 2 * np.pi), 140 - 90 * np.cos(t / 24 * 2 * np.pi)) for t in range(25)]]


@pytest.fixture(scope="module")
def centroid(small_train):
    """The NumPy exercise's model, fitted on 3000 MNIST images."""
    from digitlab.models import make_model

    x, y = small_train
    return make_model("centroid").fit(x, y)


@pytest.fixture(scope="module")
def cnn():
    """The bundled CNN (what ``Sketchpad(model="default")`` uses without a user model named default)."""
    from digitlab.models.io import bundled_dir, load_model

    return load_model(bundled_dir(), name="default")


def test_default_model_predicts_the_strokes_set_from_python(cnn, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DIGITLAB_HOME", str(tmp_path))  # no user model shadows the bundled default
    pad = Sketchpad(model="default")
    assert pad.model_name == "default" and pad.prediction is None and pad.pixels is None
    assert pad.status == "Draw a digit" and pad._classes == list(range(10))
    pad.strokes = ONE
    p = pad.prediction
    assert p["digit"] == 1 and p["classes"] == list(range(10)) and p["model"] == "default"
    assert len(p["probabilities"]) == 10 and abs(sum(p["probabilities"]) - 1) < 1e-6
    assert int(np.argmax(p["probabilities"])) == 1 and len(p["scores"]) == 10
    assert pad.status.startswith("It's a 1")
    pad.strokes = ZERO
    assert pad.prediction["digit"] == 0


def test_the_input_is_mlpaints_rendering_and_the_probabilities_the_models(cnn) -> None:
    pad = Sketchpad(model=cnn, pen_width=24)
    pad.strokes = SEVEN
    x = render_strokes(SEVEN, 280, 280, 24)
    np.testing.assert_array_equal(pad.pixels, x)
    assert pad.pixels.dtype == np.uint8 and pad.pixels.shape == (28, 28)
    scores, proba = cnn.estimator.scores_and_proba(x.reshape(1, 784).astype(np.float32))
    np.testing.assert_allclose(pad.prediction["probabilities"], proba[0])
    np.testing.assert_allclose(pad.prediction["scores"], scores[0])
    assert pad.prediction["digit"] == 7


def test_the_explanation_is_of_the_predicted_digit_or_the_one_asked_for(centroid) -> None:
    from digitlab.explain import explain

    pad = Sketchpad(model=centroid)
    pad.strokes = ONE
    e = pad.explanation
    digit = pad.prediction["digit"]
    assert e.digit == digit and e.method == "exact" and e.contributions.shape == (28, 28)
    np.testing.assert_allclose(e.contributions, explain(centroid, pad.pixels, digit).contributions)
    np.testing.assert_array_equal(e.image, pad.pixels)
    other = 7 if digit != 7 else 4
    pad.explain_digit = other
    assert pad.explanation.digit == other and pad.prediction["digit"] == digit
    with pytest.raises(traitlets.TraitError, match="explain_digit"):
        pad.explain_digit = 11
    quiet = Sketchpad(model=centroid, explain=False, strokes=ONE)
    assert quiet.prediction["digit"] == digit and quiet.explanation is None


def test_observe_fires_on_every_new_prediction(centroid) -> None:
    pad = Sketchpad(model=centroid)
    seen: list[object] = []
    pad.observe(lambda change: seen.append(change.new), names="prediction")
    pad.strokes = ONE
    pad.strokes = SEVEN
    assert len(seen) == 2 and seen[0] != seen[1] and seen[-1] == pad.prediction
    pad.strokes = SEVEN  # the same drawing: nothing new
    assert len(seen) == 2
    before = pad.pixels
    pad.strokes = [[(x + 3, y) for x, y in SEVEN[0]]]  # another drawing, moved: the same 28x28 input
    np.testing.assert_array_equal(pad.pixels, before)
    assert len(seen) == 3 and seen[-1] == seen[-2]
    pad.pen_width = 30  # a new pen redraws: a new prediction
    assert len(seen) == 4
    pad.clear()
    assert seen[-1] is None and pad.prediction is None and pad.pixels is None and pad.explanation is None
    assert pad.status == "Draw a digit"


def test_strokes_are_stored_as_plain_points_and_a_dot_predicts_nothing(centroid) -> None:
    pad = Sketchpad(model=centroid, strokes=[np.array([[10, 20], [30.123, 40]]), [], [(5, 5)]])
    assert pad.strokes == [[[10.0, 20.0], [30.12, 40.0]], [[5.0, 5.0]]]
    pad.strokes = [[(100, 100)]]
    assert pad.prediction is None and pad.status.startswith("no ink")


@pytest.mark.parametrize("strokes, match", [
    ([[(1, 2, 3)]], "stroke 0"),
    ([[(float("nan"), 2)]], "non-finite"),
    ("abc", "list"),
    ([[(0, 0)]] * 1001, "at most 1000 strokes"),
])
def test_malformed_strokes_are_refused_with_the_librarys_rule(centroid, strokes, match) -> None:
    pad = Sketchpad(model=centroid, strokes=ONE)
    before = pad.prediction
    with pytest.raises(traitlets.TraitError, match=match):
        pad.strokes = strokes
    assert pad.strokes and pad.prediction == before


def test_pen_width_is_checked(centroid) -> None:
    pad = Sketchpad(model=centroid)
    with pytest.raises(traitlets.TraitError, match="pen_width"):
        pad.pen_width = 0
    with pytest.raises(traitlets.TraitError, match="pen_width"):
        pad.pen_width = 500


def test_an_update_from_the_page_is_answered_once(centroid) -> None:
    pad = Sketchpad(model=centroid)
    seen: list[object] = []
    pad.observe(lambda change: seen.append(change.new), names="prediction")
    # what ipywidgets does with the page's message {strokes, _asked}: set both, then notify
    pad.set_state({"strokes": ONE, "_asked": 1})
    assert pad._answered == 1 and len(seen) == 1 and pad.prediction["digit"] == seen[0]["digit"]
    pad.set_state({"_asked": 2, "strokes": SEVEN})
    assert pad._answered == 2 and len(seen) == 2
    pad.set_state({"strokes": SEVEN, "_asked": 3})  # the same strokes again: answered, not predicted again
    assert pad._answered == 3 and len(seen) == 2


def test_models_fitted_in_the_notebook_of_any_classes(small_train) -> None:
    from digitlab.models import make_model

    x, y = small_train
    keep = np.isin(y, [2, 3])
    twos_threes = make_model("logreg", max_iter=30).fit(x[keep], y[keep])
    pad = Sketchpad(model=twos_threes)
    assert pad._classes == [2, 3] and pad.model_name == "LogisticRegressionClassifier"
    pad.strokes = [[(80, 70), (140, 40), (200, 70), (150, 140), (200, 200), (140, 250), (80, 220)]]
    p = pad.prediction
    assert p["classes"] == [2, 3] and len(p["probabilities"]) == 2 and p["digit"] == 3


def test_bad_models_are_refused(tmp_path, monkeypatch) -> None:
    from digitlab.models import make_model

    monkeypatch.setenv("DIGITLAB_HOME", str(tmp_path))
    with pytest.raises(UserError, match="not fitted"):
        Sketchpad(model=make_model("centroid"))
    with pytest.raises(NotFoundError, match="no-such-model"):
        Sketchpad(model="no-such-model")
    with pytest.raises(UserError, match="model must be"):
        Sketchpad(model=42)  # type: ignore[arg-type]


def test_a_saved_model_by_folder(centroid, tmp_path) -> None:
    from digitlab.models.io import save_model

    folder = save_model(centroid, tmp_path / "means")
    pad = Sketchpad(model=folder, strokes=ONE)
    assert pad.model_name == "means" and pad.prediction["model"] == "means"


def test_the_widget_ships_its_front_end(centroid) -> None:
    from digitlab.notebook import sketchpad

    js = (sketchpad._STATIC / "sketchpad.js").read_text()
    assert "export default { render }" in js
    assert "http://" not in js and "https://" not in js and "fetch(" not in js  # nothing from the network
    assert not any(line.lstrip().startswith("import ") for line in js.splitlines())  # one self-contained module
    assert (sketchpad._STATIC / "sketchpad.css").is_file()
    state = Sketchpad(model=centroid).get_state()  # the page gets the module's text itself, not a URL
    assert state["_esm"] == js and state["_css"] == (sketchpad._STATIC / "sketchpad.css").read_text()
