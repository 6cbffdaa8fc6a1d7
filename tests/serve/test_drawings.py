"""The bundled model on digits drawn by people it never saw (issue 12): floors, not targets.

The pen digits of the 3 kept-out writers (``digitlab.pen.KEPT_OUT_WRITERS``, never trained on) are drawn on
the page's 280x280 canvas with its default 20 px pen and sent to ``POST /v1/predict`` as strokes, exactly as
the page sends them. BENCHMARKS.md ("Digits as people draw them") has the measured figures; these floors sit
a little under them so that a retrained model that regresses fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.pen import CANVAS, KEPT_OUT_WRITERS, PAGE_PEN, Placement, to_canvas

#: Floors (the shipped model measures more: BENCHMARKS.md).
KEPT_OUT_FLOOR = 0.96
ECE_PEN_BOUND, ECE_MNIST_BOUND = 0.04, 0.02


@pytest.fixture(scope="module")
def kept_out(pen_digits):
    rows = np.flatnonzero(np.isin(pen_digits.writers, KEPT_OUT_WRITERS))
    strokes = [[c.tolist() for c in to_canvas(pen_digits.strokes[i], Placement())] for i in rows]
    return strokes, pen_digits.labels[rows]


def test_kept_out_writers_digits_sent_as_strokes_are_read(client, kept_out) -> None:
    strokes, labels = kept_out
    assert len(labels) > 700
    probabilities, digits = [], []
    for s in strokes:
        r = client.post("/v1/predict", json={"strokes": s, "width": CANVAS, "height": CANVAS,
                                             "pen_width": PAGE_PEN, "model": "default"})
        assert r.status_code == 200, r.text
        body = r.json()
        digits.append(body["digit"])
        probabilities.append(body["probabilities"])
    digits_a, proba = np.array(digits), np.array(probabilities)
    accuracy = float((digits_a == labels).mean())
    assert accuracy >= KEPT_OUT_FLOOR, f"{accuracy:.4f} of the kept-out writers' digits read right"
    from digitlab.evaluate import expected_calibration_error

    assert expected_calibration_error(proba, labels) <= ECE_PEN_BOUND


def test_bundled_probabilities_are_calibrated_on_mnist_test(mnist_test) -> None:
    from digitlab.evaluate import expected_calibration_error
    from digitlab.models.io import bundled_dir, load_model

    est = load_model(bundled_dir()).estimator
    x, y = mnist_test
    proba = est.predict_proba(x[:3000].reshape(-1, 784))
    assert expected_calibration_error(proba, y[:3000]) <= ECE_MNIST_BOUND
    assert float(proba[np.arange(3000), y[:3000]].mean()) > 0.97    # sure when right, unlike label smoothing's 0.90
