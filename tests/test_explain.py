"""Per-pixel explanations: exact maps, integrated gradients for the CNN, rendering and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.errors import UserError
from digitlab.explain import Explanation, explain, render
from digitlab.models.centroid import NearestCentroidClassifier


@pytest.fixture(scope="module")
def centroid(small_train: tuple[np.ndarray, np.ndarray]) -> NearestCentroidClassifier:
    return NearestCentroidClassifier().fit(*small_train)


@pytest.fixture(scope="module")
def bundled_cnn():  # type: ignore[no-untyped-def]
    from digitlab.models.io import bundled_dir, load_model

    return load_model(bundled_dir()).estimator


def test_centroid_contributions_sum_to_score_margin(centroid: NearestCentroidClassifier,
                                                    mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = mnist_test
    for i in range(5):
        for digit in (int(y[i]), (int(y[i]) + 3) % 10):
            exp = explain(centroid, x[i], digit)
            scores = centroid.decision_function(x[i].reshape(1, -1))[0]
            margin = scores[digit] - np.delete(scores, digit).mean()
            assert exp.method == "exact" and exp.digit == digit and exp.contributions.shape == (28, 28)
            assert exp.contributions.sum() == pytest.approx(margin, rel=1e-9, abs=1e-6)


def test_default_digit_is_the_prediction(centroid: NearestCentroidClassifier,
                                         mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    x = mnist_test[0][7]
    assert explain(centroid, x).digit == int(centroid.predict(x.reshape(1, -1))[0])


def test_unknown_digit_and_wrong_shape_are_user_errors(centroid: NearestCentroidClassifier) -> None:
    with pytest.raises(UserError, match="digit must be one of"):
        explain(centroid, np.zeros((28, 28)), 11)
    with pytest.raises(UserError, match="784 pixels"):
        explain(centroid, np.zeros((20, 20)))


def test_cnn_uses_integrated_gradients_that_sum_to_the_logit_gap(bundled_cnn,  # type: ignore[no-untyped-def]
                                                                  mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    import copy

    x, y = mnist_test
    float_net = copy.copy(bundled_cnn).set_params(int8=False)  # what the gradients are taken of (predictions: int8)
    black = float_net.decision_function(np.zeros((1, 784)))[0]
    for i in range(5):
        exp = explain(bundled_cnn, x[i])
        assert exp.method == "integrated_gradients" and exp.digit == y[i]
        gap = float_net.decision_function(x[i].reshape(1, -1))[0, exp.digit] - black[exp.digit]
        assert exp.contributions.sum() == pytest.approx(gap, rel=0.1, abs=0.2)   # 32 steps, in bfloat16


def test_removing_most_positive_pixels_hurts_more_than_random_ink(bundled_cnn,  # type: ignore[no-untyped-def]
                                                                  mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = mnist_test
    rng = np.random.default_rng(0)
    k = 30
    drops_top, drops_random = [], []
    for i in range(40):
        img = x[i].reshape(784).astype(np.float32)
        digit = int(y[i])
        c = explain(bundled_cnn, img, digit).contributions.reshape(784)
        top = np.argsort(c)[::-1][:k]
        ink = np.flatnonzero(img > 0)
        rand = rng.choice(ink, size=min(k, len(ink)), replace=False)
        top_removed, rand_removed = img.copy(), img.copy()
        top_removed[top] = 0
        rand_removed[rand] = 0
        p = bundled_cnn.predict_proba(np.stack([img, top_removed, rand_removed]))[:, digit]
        drops_top.append(p[0] - p[1])
        drops_random.append(p[0] - p[2])
    assert np.mean(drops_top) > np.mean(drops_random) + 0.1, (np.mean(drops_top), np.mean(drops_random))
    # and for most images (78% with the bundled depth-2 CNN: removing random ink also hurts it, by 0.34 on average)
    assert np.mean(np.array(drops_top) > np.array(drops_random)) >= 0.7


def test_render_draws_green_for_positive_and_red_for_negative(tmp_path: Path) -> None:
    c = np.zeros((28, 28))
    c[5, 5], c[20, 20] = 2.0, -1.0
    image = np.zeros((28, 28), dtype=np.uint8)
    image[10, 10] = 255
    out = render(Explanation(3, c, "exact"), image, tmp_path / "sub" / "map.png", scale=4)
    png = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert png.shape == (112, 112, 3)
    green, red, ink, paper = png[5 * 4, 5 * 4], png[20 * 4, 20 * 4], png[10 * 4, 10 * 4], png[0, 0]
    assert green[1] > green[0] + 100 and green[1] > green[2] + 100
    assert red[0] > red[1] + 100 and red[0] > red[2] + 100
    assert (paper == 255).all() and 150 < ink[0] < 255 and ink[0] == ink[1] == ink[2]   # faint grey digit
    assert red[0] < 255 and 255 - red[1] < 2 * (255 - green[0])   # |-1| is half as strong as |2|
    assert not list(out.parent.glob(".*tmp"))


def test_cli_explains_with_bundled_model_and_no_data(cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     mnist_test: tuple[np.ndarray, np.ndarray]) -> None:
    import json

    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("DIGITLAB_DATA", str(empty))
    x, y = mnist_test
    png = tmp_path / "some.png"
    Image.fromarray(255 - x[0]).resize((140, 140)).save(png)          # dark on light, 5x larger
    out = tmp_path / "x.png"
    result = cli("explain", "default", png, "--out", out, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["predicted"] == y[0] and doc["digit"] == y[0] and doc["method"] == "integrated_gradients"
    assert np.asarray(doc["contributions"]).shape == (28, 28)
    assert Image.open(out).size == (280, 280)
    again = cli("explain", "default", png, "--digit", "3", "--out", tmp_path / "y.png")
    assert again.exit_code == 0, again.output
    assert "integrated_gradients" in again.stdout
    bad = cli("explain", "default", png, "--digit", "12", "--out", tmp_path / "z.png")
    assert bad.exit_code == 2 and "digit must be one of" in bad.stderr
    assert list(empty.iterdir()) == []
