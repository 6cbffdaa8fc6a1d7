"""``digitlab.figures``: every figure is a PNG written atomically with the user's umask, without pyplot."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab import figures
from digitlab.explain import Explanation


@pytest.fixture
def umask_027():  # type: ignore[no-untyped-def]
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_charts_and_pictures_get_the_users_umask(tmp_path: Path, umask_027: int) -> None:
    chart = figures.save_figure(figures.bar_figure({"0": 3, "1": 5}, "t"), tmp_path / "a" / "bar.png")
    picture = figures.save_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "pic.png")
    for path in (chart, picture):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and _mode(path) == 0o640
    assert not list(tmp_path.rglob(".*tmp"))


def test_the_explanation_picture_is_green_for_and_red_against(tmp_path: Path, umask_027: int) -> None:
    c = np.zeros((28, 28))
    c[5, 5], c[20, 20] = 2.0, -1.0
    image = np.zeros((28, 28), dtype=np.uint8)
    image[10, 10] = 255
    out = figures.render_explanation(Explanation(3, c, "exact"), image, tmp_path / "sub" / "map.png", scale=4)
    png = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert png.shape == (112, 112, 3) and _mode(out) == 0o640
    assert np.array_equal(png, figures.explanation_image(c, image, scale=4))
    green, red, paper = png[20, 20], png[80, 80], png[0, 0]
    assert green[1] > green[0] + 100 and red[0] > red[1] + 100 and (paper == 255).all()


def test_explain_render_is_the_same_function() -> None:
    from digitlab.explain import render

    assert render is figures.render_explanation


def test_mixture_pictures_have_the_grid_shape() -> None:
    means = np.random.default_rng(0).random((5, 784))
    grid = figures.clusters_image(means, np.array([50, 40, 30, 2, 1]), scale_by_size=True, per_row=3, zoom=2, gap=1)
    assert grid.shape == (2 * 56 + 3, 3 * 56 + 4, 3) and grid.dtype == np.uint8
    visible = np.zeros(784, bool)
    visible[:392] = True
    done = figures.completions_image(means[:2], (means[:2] > 0.5).astype(float), visible, zoom=1, gap=0)
    assert done.shape == (56, 56, 3)


def test_report_and_dataset_figures_draw(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28)).astype(np.uint8)
    labels = np.arange(30) % 3
    for fig in (figures.samples_figure(images, labels, per_label=4), figures.mean_digits_figure(images, labels),
                figures.class_distribution_figure({"0": 10, "1": 10}),
                figures.kept_pixels_figure(rng.random(784) * 200, rng.random(784) > 0.5, 100.0),
                figures.learning_curve_figure("m", [10, 100], [0.5, 0.8], [0.1, 0.3]),
                figures.confusion_figure(np.eye(3, dtype=int) * 5, [0, 1, 2], log=True),
                figures.weights_figure("w", ["a", "b"], rng.normal(size=(2, 28, 28)), signed=True)):
        assert figures.png_bytes(fig)[:4] == b"\x89PNG"


def test_drawing_never_loads_pyplot() -> None:
    code = ("import sys, numpy as np; from digitlab import figures; "
            "figures.png_bytes(figures.confusion_figure(np.eye(2, dtype=int), [0, 1])); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
