"""digitlab.novelty: the bundled CNN's detector, fitting one for another model, saving, loading, staleness."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from digitlab import negatives as neg
from digitlab.models.io import bundled_dir, load_model
from digitlab.novelty import (
    DETECTOR_CARD,
    detector_info,
    fingerprint,
    fit_detector,
    load_detector,
    not_a_digit,
    save_detector,
)


@pytest.fixture(scope="module")
def bundled():
    return load_model(bundled_dir(), name="default")


def test_the_bundled_detector_flags_non_digits_and_few_digits(bundled, mnist_test) -> None:
    det = load_detector(bundled.path, "default")
    assert det is not None and det.kind == "cnn_features" and 0 < det.threshold < 1
    assert det.false_alarm_rate is not None and det.false_alarm_rate <= 0.02
    rng = np.random.default_rng(123)
    x, _ = mnist_test
    digits = x[:1000].reshape(1000, 784).astype(np.float32)
    assert det.flags(digits, bundled.estimator.scores(digits)).mean() <= 0.01  # floors; figures: BENCHMARKS.md
    for make in (lambda: neg.letters(60, rng, neg.HELD_OUT_FONTS), lambda: neg.shapes(60, rng),
                 lambda: neg.scribbles(60, rng), lambda: neg.image_pairs(x[1000:1500], 60, rng)):
        others = make().reshape(60, 784).astype(np.float32)
        assert det.flags(others, bundled.estimator.scores(others)).mean() >= 0.6
    info = detector_info(bundled.path, "default")
    assert info.can_tell and info.false_alarm_rate == det.false_alarm_rate
    # what `digitlab predict` asks: one call per batch of inputs
    both = np.concatenate([x[:5], neg.shapes(5, rng)])
    flags = not_a_digit(bundled, both)
    assert flags is not None and flags.shape == (10,) and flags[5:].sum() >= 3 and not flags[:5].any()


def test_negatives_are_normalised_pictures_of_each_kind(mnist_train) -> None:
    rng = np.random.default_rng(0)
    x, _ = mnist_train
    pics, kinds = neg.make_negatives({"letter": 3, "shape": 3, "scribble": 3, "pair": 4, "part": 2}, rng,
                                     images=x[:100])
    assert pics.shape == (15, 28, 28) and pics.dtype == np.uint8
    assert list(kinds) == ["letter"] * 3 + ["shape"] * 3 + ["scribble"] * 3 + ["pair"] * 4 + ["part"] * 2
    assert (pics.reshape(15, -1).max(axis=1) > 200).all()  # every one has ink
    assert not set(neg.LETTERS) & neg.DIGIT_LIKE
    with pytest.raises(ValueError, match="unknown kind"):
        neg.make_negatives({"emoji": 1}, rng)


def test_fit_save_load_and_staleness(tmp_path, small_train, mnist_test) -> None:
    from digitlab.models import make_model
    from digitlab.models.card import ModelCard
    from digitlab.models.io import save_model

    x, y = small_train
    est = make_model("logreg", max_iter=50).fit(x[:2000], y[:2000])
    folder = save_model(est, tmp_path / "lr", ModelCard(model="logreg"))
    rng = np.random.default_rng(0)
    negatives, _ = neg.make_negatives({"letter": 150, "shape": 150, "scribble": 100, "pair": 100}, rng,
                                      images=x[:2000])
    det = fit_detector(est, x[:2000], negatives, {"mnist": x[2000:]}, validation={"letters": neg.letters(40, rng)},
                       target_false_alarm={"mnist": 0.02}, max_iter=40, model_fingerprint=fingerprint(folder))
    assert det.kind == "scores_pixels" and det.graph is None
    op = det.card["operating_point"]
    assert op["false_alarm_by_set"]["mnist"] <= 0.02 and 0 <= op["flagged_by_set"]["letters"] <= 1
    save_detector(det, folder)
    back = load_detector(folder, "lr")
    assert back is not None and back.threshold == det.threshold
    xt = mnist_test[0][:50].reshape(50, -1).astype(np.float32)
    np.testing.assert_allclose(back.probability(xt, est.scores(xt)), det.probability(xt, est.scores(xt)), rtol=1e-5)
    assert detector_info(folder, "lr").can_tell
    # a detector fitted for other weights is not used, and says how to refit it
    card = json.loads((folder / DETECTOR_CARD).read_text())
    (folder / DETECTOR_CARD).write_text(json.dumps(card | {"model_fingerprint": "0" * 64}))
    assert load_detector(folder, "lr") is None
    info = detector_info(folder, "lr")
    assert not info.can_tell and "digitlab novelty fit lr" in (info.reason or "")
    # no detector at all
    shutil.rmtree(tmp_path / "lr2", ignore_errors=True)
    bare = save_model(est, tmp_path / "lr2", ModelCard(model="logreg"))
    assert load_detector(bare) is None and not detector_info(bare, "lr2").can_tell
    assert not_a_digit(load_model(bare, name="lr2"), xt) is None


def test_a_corrupt_detector_is_a_model_error(tmp_path, bundled) -> None:
    from digitlab.errors import ModelError

    folder = tmp_path / "m"
    shutil.copytree(bundled.path, folder)
    from safetensors.numpy import load_file, save_file

    arrays = load_file(str(folder / "novelty.safetensors"))
    junk_graph = np.frombuffer(b"not onnx", dtype=np.uint8)
    save_file(arrays | {"features.onnx": junk_graph}, str(folder / "novelty.safetensors"))
    with pytest.raises(ModelError, match="detector of 'm' is unusable"):  # a corrupt graph fails at load
        load_detector(folder, "m")
    (folder / "novelty.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError, match="detector of 'm' is unusable"):
        load_detector(folder, "m")
    (folder / DETECTOR_CARD).write_text("{")
    assert not detector_info(folder, "m").can_tell


def test_predict_s_light_path_flags_as_the_estimator_does(bundled, mnist_test, tmp_path) -> None:
    """``load_with_detector``: the bundled folder's ONNX export plus the detector on the CNN's int8 logits
    (what ``digitlab predict`` runs, without scikit-learn) answers as the estimator with its detector does."""
    from digitlab.export import EXPORT_FILE
    from digitlab.novelty import load_with_detector

    light = load_with_detector(bundled.path, "default")
    assert light is not None and type(light).__name__ == "_DetectingPredictor"
    rng = np.random.default_rng(7)
    x, _ = mnist_test
    both = np.concatenate([x[:200], neg.shapes(40, rng), neg.letters(40, rng, neg.HELD_OUT_FONTS)])
    flags = light.not_a_digit(both)
    assert flags.dtype == bool and flags.shape == (280,)
    np.testing.assert_array_equal(flags, not_a_digit(bundled, both))
    assert (light.predict(x[:200]) == bundled.estimator.predict(x[:200])).mean() >= 0.99
    # without its export the folder's model answers through the estimator, detector and all
    folder = tmp_path / "m"
    shutil.copytree(bundled.path, folder)
    (folder / EXPORT_FILE).unlink()
    heavy = load_with_detector(folder, "m")
    assert heavy is not None and type(heavy).__name__ == "_Detecting"
    np.testing.assert_array_equal(heavy.not_a_digit(both), flags)
    assert load_with_detector(tmp_path / "nothing-here") is None
