"""Pen digits drawn as the page draws them (digitlab.pen), the stroke-style views of MNIST
(digitlab.models.cnn.views), the drawings' training set (digitlab.models.cnn.drawn), the CNN's views and
``digitlab train --pen``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitlab.pen import (
    CANVAS,
    KEPT_OUT_WRITERS,
    WRITER_FOLDS,
    Placement,
    fold_of,
    random_placement,
    render,
    to_canvas,
)

# A "7" on a tablet (y up): the bar at the top, then the stem down to the left.
SEVEN = [np.array([[100.0, 400.0], [300.0, 400.0], [150.0, 100.0]])]


def test_folds_partition_the_30_writers():
    assert sorted(w for f in WRITER_FOLDS for w in f) == list(range(1, 31))
    assert all(len(f) == 6 for f in WRITER_FOLDS)
    assert all(fold_of(w) == k for k, f in enumerate(WRITER_FOLDS) for w in f)
    assert len(set(KEPT_OUT_WRITERS)) == 3 and len({fold_of(w) for w in KEPT_OUT_WRITERS}) == 3


def test_to_canvas_flips_y_and_sizes_the_digit():
    (c,) = to_canvas(SEVEN, Placement(height=0.7))
    assert c[0, 1] == c[1, 1] < c[2, 1]                 # the bar is at the top of the canvas (y down)
    assert c[:, 1].max() - c[:, 1].min() == pytest.approx(0.7 * CANVAS, abs=0.2)
    assert (c[:, 1].max() + c[:, 1].min()) / 2 == pytest.approx(CANVAS / 2, abs=0.2)
    assert np.array_equal(c, np.round(c, 1)) and c.min() >= 0 and c.max() <= CANVAS


def test_random_placements_stay_on_the_canvas():
    rng = np.random.default_rng(0)
    for _ in range(50):
        pl = random_placement(rng)
        (c,) = to_canvas(SEVEN, pl)
        assert c.min() >= 0 and c.max() <= CANVAS and 6 <= pl.pen <= 40


def test_render_goes_through_the_servers_path():
    from digitlab.preprocess import render_strokes

    img = render(SEVEN)
    (c,) = to_canvas(SEVEN)
    assert img.shape == (28, 28) and img.dtype == np.uint8
    assert np.array_equal(img, render_strokes([c.tolist()], CANVAS, CANVAS, 20.0))


def test_stroke_and_lowres_views_are_mnist_style(small_train):
    from digitlab.models.cnn.views import lowres_variants, stroke_variants

    x = small_train[0][:20]
    for v in (stroke_variants(x, np.random.default_rng(0)), lowres_variants(x, np.random.default_rng(0))):
        assert v.shape == (20, 28, 28) and v.dtype == np.uint8
        assert v.max() == 255 and not np.array_equal(v, x)
        ys, xs = np.nonzero(v[0])
        assert abs(np.average(ys, weights=v[0][ys, xs]) - 14) < 1.5  # centred by mass


def test_drawn_training_set_keeps_writers_out(small_train, pen_digits):
    from digitlab.data import PenDigits
    from digitlab.models.cnn.drawn import calibration_set, drawn_training_set
    from digitlab.pen import CALIBRATION_WRITERS

    rows = np.concatenate([np.flatnonzero(pen_digits.writers == w)[:4] for w in (1, 2, 25, 28)])
    pen = PenDigits(strokes=tuple(pen_digits.strokes[i] for i in rows), labels=pen_digits.labels[rows],
                    writers=pen_digits.writers[rows])
    x, y = small_train[0][:30], small_train[1][:30]
    data = drawn_training_set(x, y, pen, renders=4, n_jobs=1)
    assert data.writers == (1, 2) and data.n_mnist == 30 and data.n_pen == 8
    assert data.X.shape == (38, 784) and data.views.shape == (3, 38, 784) and data.views.dtype == np.uint8
    assert np.array_equal(data.X[:30], x.reshape(-1, 784)) and np.array_equal(data.y[30:], pen.labels[:8])
    assert np.array_equal(data.views[2, :30], x.reshape(-1, 784))       # the third view of an MNIST row: itself
    assert not np.array_equal(data.views[0, :30], x.reshape(-1, 784))   # the first: its constant-pen redraw
    assert all(not np.array_equal(data.views[j, 30:], data.X[30:]) for j in range(3))  # other renders
    again = drawn_training_set(x, y, pen, renders=4, n_jobs=1)          # seeded: the same views
    assert np.array_equal(again.views, data.views)
    cx, cy = calibration_set(pen, CALIBRATION_WRITERS)
    assert cx.shape == (4, 784) and np.array_equal(cy, pen.labels[pen.writers == 25])


torch = pytest.importorskip("torch")
TINY = {"recipe": "fast", "width": 6, "batch_size": 64, "augment": "none", "bf16": False, "int8": False,
        "n_threads": 1, "seed": 3, "epochs": 1}


def test_views_are_used_and_checked(small_train):
    from digitlab.errors import ParameterError
    from digitlab.models.cnn import CNNClassifier

    x, y = small_train[0][:300].reshape(-1, 784), small_train[1][:300]
    plain = CNNClassifier(**TINY).fit(x, y)
    same = CNNClassifier(**TINY).fit(x, y, views=np.stack([x]))     # a view equal to X: other draws, same data
    other = CNNClassifier(**TINY).fit(x, y, views=np.stack([255 - x]))
    z = plain.decision_function(x[:50])
    assert np.allclose(same.decision_function(x[:50]), z, atol=1e-5)
    assert not np.allclose(other.decision_function(x[:50]), z, atol=1e-3)
    with pytest.raises(ParameterError, match="views must have shape"):
        CNNClassifier(**TINY).fit(x, y, views=x[:10][None])


def test_train_pen_dry_run_records_the_drawings(mnist_dir, pen_digits, tmp_path: Path):
    from digitlab.settings import get_settings
    from digitlab.workflows import TrainSpec, train

    pen_file = mnist_dir.parent / "pendigits" / "pendigits-orig.tra.gz"
    settings = get_settings(data_dir=mnist_dir, home=tmp_path)
    spec = TrainSpec(model="cnn", params={"width": 6, "n_threads": 1, "int8": False}, pen=pen_file, dry_run=True)
    result = train(spec, settings=settings)
    card = result.card
    assert card.train is not None and card.train.dataset == "mnist_train+pen"
    assert card.train.sources["pendigits-orig.tra.gz"] == card.notes["drawings"]["pen_sha256"]
    assert any(name.startswith("train-images") for name in card.train.sources)
    drawings = card.notes["drawings"]
    assert not set(drawings["writers_trained"]) & {25, 26, 27, 28, 29, 30}
    assert card.train.calibration["writers"] == [25, 26, 27] and card.train.calibration["n"] > 0
    assert "--pen" in card.command and result.train_seconds >= drawings["views_seconds"]
