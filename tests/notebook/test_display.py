"""Every rich display renders, through IPython's own formatter as a notebook does, and shows what it should."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from digitlab.notebook import display


class _Page(HTMLParser):
    """The parts of an HTML display the tests look at: images (decoded), table cells, all text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[Image.Image] = []
        self.cells: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "img":
            src = a["src"]
            assert src.startswith("data:image/png;base64,"), src[:40]  # inline: nothing to fetch
            self.images.append(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def _formatted(obj) -> dict[str, object]:
    """What Jupyter would get for ``obj`` as a cell's last value."""
    ipython = pytest.importorskip("IPython.core.formatters")
    data, _ = ipython.DisplayFormatter().format(obj)
    return data


def _html(obj) -> _Page:
    data = _formatted(obj)
    assert "text/html" in data, sorted(data)
    assert "<script" not in data["text/html"]
    return _Page(data["text/html"])


@pytest.fixture(scope="module")
def centroid(small_train):
    from digitlab.models import make_model

    x, y = small_train
    return make_model("centroid").fit(x, y)


@pytest.fixture(scope="module")
def evaluation(centroid, mnist_test):
    from digitlab.evaluate import evaluate

    x, y = mnist_test
    return evaluate(centroid, x[:300], y[:300])


def test_an_evaluation_shows_metrics_the_confusion_matrix_and_the_misclassified_digits(evaluation) -> None:
    page = _html(evaluation)
    m = evaluation.metrics
    text = page.all_text
    assert "Evaluation on 300 images" in text and f"{100 * m['accuracy']:.2f}%" in text
    for key in ("accuracy", "f1_weighted", "mean_proba_true", "confusion matrix", "per class"):
        assert key in text
    # the confusion matrix: after the corner and the ten predicted labels, each row is its label and ten counts
    start = page.cells.index("actual ↓ predicted →")
    grid = page.cells[start + 11:start + 11 + 110]
    rows = [grid[i * 11:(i + 1) * 11] for i in range(10)]
    assert [r[0] for r in rows] == [str(d) for d in range(10)]
    assert [[int(v) for v in r[1:]] for r in rows] == m["confusion"]
    wrong = int((evaluation.actual != evaluation.predicted).sum())
    assert wrong > 0 and f"misclassified: {wrong} of 300" in text
    digits = [im for im in page.images if im.size == (56, 56)]
    assert len(digits) == min(wrong, display.MAX_WRONG)
    first = int(np.flatnonzero(evaluation.actual != evaluation.predicted)[0])
    assert f"{evaluation.actual[first]}→{evaluation.predicted[first]}" in text
    # dark ink on white: the drawn digit is the image, inverted and enlarged twice
    expected = 255 - np.asarray(evaluation.images[first], dtype=np.uint8).repeat(2, 0).repeat(2, 1)
    np.testing.assert_array_equal(np.asarray(digits[0].convert("L")), expected)


def test_an_evaluation_of_a_binary_model(small_train, mnist_test) -> None:
    from digitlab.evaluate import evaluate
    from digitlab.models import make_model

    x, y = small_train
    zero = make_model("sgd", digit=0, max_iter=5).fit(x, y)
    xt, yt = mnist_test
    page = _html(evaluate(zero, xt[:200], yt[:200]))
    assert "one digit vs the rest" in page.all_text and "precision" in page.cells and "rest" in page.cells


def test_an_explanation_is_its_green_and_red_picture(centroid, mnist_test) -> None:
    from digitlab.explain import explain

    x, _ = mnist_test
    e = explain(centroid, x[0])
    np.testing.assert_array_equal(e.image, x[0])
    data = _formatted(e)
    png = Image.open(io.BytesIO(data["image/png"])).convert("RGB")
    assert png.size == (224, 224)
    rgb = np.asarray(png).reshape(28, 8, 28, 8, 3)[:, 0, :, 0].astype(int)  # one pixel per input pixel
    c = e.contributions
    strong = np.abs(c) >= np.percentile(np.abs(c[c != 0]), 90)
    green = rgb[..., 1] > rgb[..., 0] + 40
    red = rgb[..., 0] > rgb[..., 1] + 40
    assert green[strong & (c > 0)].mean() > 0.9 and red[strong & (c < 0)].mean() > 0.9
    page = _Page(data["text/html"])
    assert f"Why {e.digit}" in page.all_text and "exact" in page.all_text
    assert [im.size for im in page.images] == [(224, 224), (224, 224)]  # the digit and its explanation
    # an explanation without its image still draws (on nothing)
    from digitlab.explain import Explanation

    bare = Explanation(3, c, "exact")
    assert Image.open(io.BytesIO(bare._repr_png_())).size == (224, 224)
    assert len(_Page(bare._repr_html_()).images) == 1


def test_a_fitted_model_shows_its_card_and_an_unfitted_one_scikit_learns_diagram(centroid) -> None:
    from digitlab.models import make_model

    page = _html(centroid)
    assert "digitlab-card" in _formatted(centroid)["text/html"]
    text = page.all_text
    assert "centroid" in text and "family" in page.cells and "exact" in text
    assert "temperature" in page.cells and "0 1 2 3 4 5 6 7 8 9" in page.cells
    unfitted = _formatted(make_model("logreg", C=0.5))["text/html"]
    assert "LogisticRegressionClassifier" in unfitted and "sk-" in unfitted and "digitlab-card" not in unfitted


def test_a_saved_model_and_its_card_show_the_card(centroid, evaluation, tmp_path) -> None:
    from digitlab.models.card import ModelCard, TrainingData
    from digitlab.models.io import load_model, save_model

    card = ModelCard(model="centroid", metrics={"test": {"dataset": "mnist_test", "accuracy": 0.8203, "n": 10000}},
                     train=TrainingData(dataset="mnist_train", n=3000, sha256="ab" * 32, where="label < 5",
                                        class_counts={"0": 300, "1": 300}),
                     command="digitlab train centroid --train-size 3000", seed=0, notes={"why": "a test"})
    loaded = load_model(save_model(centroid, tmp_path / "means", card), name="means")
    page = _html(loaded)
    text = page.all_text
    assert "means" in text and "82.03%" in text and "mnist_test" in page.cells and "10000" in page.cells
    assert "label < 5" in text and "abababababab…" in text and "0: 300 1: 300" in text
    assert "digitlab train centroid --train-size 3000" in text and "a test" in text
    assert "explanation" in page.cells  # the estimator's declarations
    card_only = _html(loaded.card)
    assert "82.03%" in card_only.all_text and "explanation" not in card_only.cells


def test_the_bundled_models_card() -> None:
    from digitlab.models.io import bundled_dir, load_model

    loaded = load_model(bundled_dir(), name="default")
    text = _html(loaded).all_text
    assert f"{100 * loaded.card.test_accuracy:.2f}%" in text and "integrated gradients" in text


def _store_with_digits(tmp_path, mnist_train, n=500):
    from digitlab.store import Store

    x, y = mnist_train
    store = Store(tmp_path / "s.duckdb")
    store.import_arrays("digits", x[:n], y[:n])
    return store


def test_a_query_with_pixels_shows_the_digits(tmp_path, mnist_train) -> None:
    store = _store_with_digits(tmp_path, mnist_train)
    result = store.query("SELECT label, id, pixels FROM digits QUALIFY row_number() OVER "
                         "(PARTITION BY label ORDER BY id) = 1 ORDER BY label")  # a digit per label, in one line
    page = _html(result)
    assert "10 rows" in page.all_text
    assert [im.size for im in page.images] == [(56, 56)] * 10
    x, _ = mnist_train
    first_id = int(result.rows[0][1])
    np.testing.assert_array_equal(np.asarray(page.images[0].convert("L"))[::2, ::2], 255 - x[first_id])
    assert page.cells[:3] == ["label", "id", "pixels"] and page.cells[3] == "0"


def test_a_query_without_pixels_is_a_table_and_long_results_are_cut_with_a_count(tmp_path, mnist_train) -> None:
    store = _store_with_digits(tmp_path, mnist_train)
    counts = _html(store.query("SELECT label, count(*) AS n FROM digits GROUP BY label ORDER BY label"))
    assert counts.images == [] and counts.cells[:2] == ["label", "n"] and "10 rows" in counts.all_text
    long = _html(store.query("SELECT id, pixels AS picture FROM digits ORDER BY id"))  # any 784-number column
    assert "500 rows, the first 100 shown" in long.all_text and len(long.images) == display.MAX_QUERY_ROWS
    assert "1 row" in _html(store.query("SELECT 1 AS one")).all_text
    empty = _html(store.query("SELECT * FROM digits WHERE label > 9"))
    assert "0 rows" in empty.all_text and empty.cells == ["id", "label", "pixels"]


def test_query_results_of_another_shape_are_shown_alike(tmp_path, mnist_train) -> None:
    """The table is built from ``arrow()``, or from columns and rows: whichever a query result offers."""
    import pyarrow as pa

    store = _store_with_digits(tmp_path, mnist_train, n=20)
    result = store.query("SELECT id, label, pixels FROM digits ORDER BY id LIMIT 3")
    table = pa.table({c: [r[i] for r in result.rows] for i, c in enumerate(result.columns)})

    class ArrowResult:
        def arrow(self) -> pa.Table:
            return table

    class RowsResult:  # columns and rows, as QueryResult once was
        def __init__(self) -> None:
            self.columns, self.rows = list(result.columns), list(result.rows)

    shown = display.query_html(result)
    assert display.query_html(ArrowResult()) == shown
    assert display.query_html(table) == shown
    assert display.query_html(RowsResult()) == shown
    with pytest.raises(TypeError, match="neither columns and rows nor arrow"):
        display.query_html(42)


def test_runs_show_as_a_table_and_one_run_in_full(tmp_path, evaluation) -> None:
    from digitlab.runs import get_run, list_runs, record_run
    from digitlab.store import Store

    store = Store(tmp_path / "s.duckdb")
    assert "no runs recorded" in _html(list_runs(store)).all_text
    for i, name in enumerate(("means", "means-2")):
        record_run(store, run=f"train-2026010{i}-000000-abcd", kind="train", model_name=name, model_type="centroid",
                   params={"temperature": 1000.0}, dataset="mnist_train", where=None, train_seconds=0.25,
                   accuracy=evaluation.metrics["accuracy"], metrics=evaluation.metrics)
    runs = list_runs(store)
    page = _html(runs)
    assert "2 runs" in page.all_text and {"run", "kind", "model_name", "accuracy", "params"} <= set(page.cells)
    assert "metrics" not in page.cells  # the list is one line per run; a run shows its metrics
    assert "means-2" in page.cells and "temperature=1000" in page.cells
    assert f"{evaluation.metrics['accuracy']:.4g}" in page.cells
    # whatever fields a run has, the table shows them when none of the usual ones is there
    from dataclasses import dataclass

    @dataclass
    class Other:
        run: str
        score: float

    other = _Page(display.runs_html([Other("a", 0.5), Other("b", 0.25)]))
    assert other.cells == ["run", "score", "a", "0.5", "b", "0.25"]
    one = _html(get_run(store, "train-20260100"))
    assert "train-20260100-000000-abcd" in one.all_text and "confusion matrix" in one.all_text
    assert "actual ↓ predicted →" in one.cells


def test_beside_lays_the_seeds_figure_next_to_digitlabs(centroid, mnist_test) -> None:
    from digitlab.explain import explain
    from digitlab.figures import new_figure

    x, _ = mnist_test
    fig = new_figure((2, 2))
    fig.subplots().imshow(x[0])
    page = _html(display.beside(fig, explain(centroid, x[0])))
    assert "the seed" in page.all_text and "digitlab" in page.all_text
    assert len(page.images) == 3  # the seed's figure, then the digit and its explanation
    assert page.images[0].size[0] > 100
    picture = display.beside(x[0], np.zeros((10, 30, 3), np.uint8), "some text", titles=["a", "b", "c"])
    p = _Page(picture._repr_html_())
    assert [im.size for im in p.images] == [(112, 112), (30, 10)] and "some text" in p.all_text
    with pytest.raises(ValueError, match="one title per item"):
        display.beside(fig, fig, fig, titles=["only one"])


def test_a_pyplot_figure_is_shown_once() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    plt.plot([1, 2])
    display.beside(fig, "x")._repr_html_()
    assert not plt.fignum_exists(fig.number)


def test_digit_png_refuses_what_is_not_a_digit() -> None:
    with pytest.raises(ValueError, match="784"):
        display.digit_png(np.zeros(10))
    with pytest.raises(ValueError, match="scale"):
        display.digit_png(np.zeros(784), scale=0)
    assert re.match(rb"\x89PNG", display.digit_png(np.zeros((28, 28))))
