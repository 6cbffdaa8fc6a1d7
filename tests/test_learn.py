"""Learning from corrections as a library and from the CLI (issue 15): the drawings table, profiles and their
adaptation, ``digitlab data export drawings`` and ``digitlab train cnn --table drawings --init default``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digitlab.corrections import Corrections
from digitlab.errors import NotFoundError, UserError
from digitlab.profiles import CNN_ADAPTATION, PIXEL_ADAPTATION, BlurredPixels, Profile, adapt, check_profile_name
from digitlab.store import Store


def _store(tmp_path: Path) -> Store:
    return Store(tmp_path / "digitlab.duckdb")


# ---------------------------------------------------------------- the adaptation


def test_adapt_without_examples_is_the_models_answer() -> None:
    proba = np.full((2, 10), 0.1)
    out = adapt(proba, np.ones((2, 4), np.float32) / 2, np.zeros((0, 4), np.float32), np.zeros(0, int),
                CNN_ADAPTATION)
    assert np.array_equal(out, proba)


def test_adapt_follows_the_very_drawing_and_leaves_unlike_ones_alone() -> None:
    rng = np.random.default_rng(0)
    examples = BlurredPixels()(rng.integers(0, 255, (3, 784)).astype(np.float32))
    labels = np.array([4, 4, 9])
    proba = np.zeros((2, 10))
    proba[:, 1] = 0.9
    proba[:, 7] = 0.1
    unlike = BlurredPixels()(rng.integers(0, 255, (1, 784)).astype(np.float32)) * 0
    unlike[0, 0] = 1.0  # a unit vector far (cosine ~0) from every example
    out = adapt(proba, np.vstack([examples[2:3], unlike]), examples, labels, PIXEL_ADAPTATION)
    assert out.shape == (2, 10) and np.allclose(out.sum(axis=1), 1)
    assert out[0].argmax() == 9  # the drawing itself was corrected as a 9
    assert out[1].argmax() == 1 and np.allclose(out[1], proba[1], atol=1e-6)  # nothing like it: unchanged


def test_profile_names_follow_the_rule() -> None:
    assert check_profile_name("ann_B-3") == "ann_B-3"
    for bad in ["", "a b", "x" * 65, "é", None, 3]:
        with pytest.raises(UserError, match="profile name"):
            check_profile_name(bad)


def test_a_profile_embeds_each_drawing_once(small_train) -> None:
    from digitlab.models import make_model

    x, y = small_train
    model = make_model("centroid").fit(x[:500], y[:500])
    p = Profile("me")
    for i in range(3):
        p = p.with_drawing(i, int(y[i]), x[i].reshape(-1))
    _, rows = p.embeddings(model)
    grown = p.with_drawing(3, int(y[3]), x[3].reshape(-1))
    _, more = grown.embeddings(model)
    assert rows.shape == (3, 784) and more.shape == (4, 784) and np.array_equal(more[:3], rows)
    assert grown.counts() == np.bincount(y[:4], minlength=10).tolist()


# ---------------------------------------------------------------- the drawings table


def test_corrections_are_rows_of_drawings_and_profiles_count_them(tmp_path: Path, mnist_test) -> None:
    x, y = mnist_test
    c = Corrections(_store(tmp_path))
    stored = [c.add(pixels=x[i], label=int(y[i]), profile=p, predicted=0, model="m")
              for i, p in enumerate(["ann", "ann", None, "bob"])]
    assert [s.count for s in stored] == [1, 2, 1, 1] and all(s.applied for s in stored)
    assert c.counts("ann") == np.bincount(y[:2], minlength=10).tolist()
    rows = _store(tmp_path).query("SELECT id, profile, label, predicted, model, pixels FROM drawings "
                                  "ORDER BY id").records()
    assert [r["profile"] for r in rows] == ["ann", "ann", None, "bob"]
    assert rows[0]["pixels"] == x[0].reshape(-1).tolist() and rows[0]["model"] == "m"
    assert c.forget("ann") == 2
    with pytest.raises(NotFoundError):
        c.counts("ann")
    assert len(_store(tmp_path).query("SELECT * FROM drawings").records()) == 2


def test_two_processes_sharing_a_store_agree_on_a_profile(tmp_path: Path, mnist_test) -> None:
    """Each server process notices another's correction or forgetting through the profile's journal."""
    x, y = mnist_test
    a, b = Corrections(_store(tmp_path)), Corrections(_store(tmp_path))
    a.add(pixels=x[0], label=int(y[0]), profile="shared", predicted=None, model=None)
    assert len(b.profile("shared")) == 1
    b.add(pixels=x[1], label=int(y[1]), profile="shared", predicted=None, model=None)
    assert a.cached("shared") is None and len(a.profile("shared")) == 2
    assert np.array_equal(a.profile("shared").pixels, b.profile("shared").pixels)
    b.forget("shared")
    assert len(a.profile("shared")) == 0


@pytest.mark.parametrize("kwargs, words", [
    ({"label": 10}, "label"), ({"label": True}, "label"), ({"profile": "a b"}, "profile name"),
    ({"pixels": np.zeros(10)}, "784"),
])
def test_bad_corrections_are_refused(tmp_path: Path, kwargs: dict, words: str) -> None:
    args = {"pixels": np.zeros(784), "label": 3, "profile": None, "predicted": None, "model": None, **kwargs}
    with pytest.raises(UserError, match=words):
        Corrections(_store(tmp_path)).add(**args)
    assert not (tmp_path / "digitlab.duckdb").exists() or not _store(tmp_path).query(
        "SELECT * FROM information_schema.tables WHERE table_name = 'drawings'").records()


# ---------------------------------------------------------------- the CLI: export and fine-tune


@pytest.fixture
def drawings_home(home: Path, mnist_test) -> Path:
    """A home whose store holds 30 corrections (3 per digit) by two profiles."""
    x, y = mnist_test
    c = Corrections(Store(home / "digitlab.duckdb"))
    for d in range(10):
        for k, i in enumerate(np.flatnonzero(y == d)[:3]):
            c.add(pixels=x[i], label=d, profile="ann" if k else "bob", predicted=(d + 1) % 10, model="default")
    return home


def test_data_export_drawings_writes_one_folder_per_label(cli, drawings_home: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "out"
    r = cli("data", "export", "drawings", "--out", out, "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["n"] == 30 and doc["per_label"] == {str(d): 3 for d in range(10)}
    assert sorted(p.name for p in out.iterdir()) == [str(d) for d in range(10)]
    pngs = sorted((out / "7").glob("*.png"))
    rows = Store(drawings_home / "digitlab.duckdb").query(
        "SELECT pixels FROM drawings WHERE label = 7 ORDER BY id").records()
    assert [np.asarray(Image.open(p)).reshape(-1).tolist() for p in pngs] == [r["pixels"] for r in rows]
    r = cli("data", "export", "drawings", "--where", "profile = 'bob'", "--out", tmp_path / "bob", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["n"] == 10


def test_data_export_of_nothing_fails_clearly(cli, drawings_home: Path, tmp_path: Path) -> None:
    r = cli("data", "export", "nosuchtable", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "file").write_text("")
    r = cli("data", "export", "drawings", "--out", tmp_path / "file")
    assert r.exit_code == 2 and "not a folder" in r.stderr


def test_train_init_fine_tunes_the_bundled_cnn_on_the_drawings_plus_mnist(drawings_home: Path) -> None:
    """A dry run: the whole path (load the init model, add MNIST train, fine-tune, test, save and reload)."""
    from digitlab.settings import get_settings
    from digitlab.workflows import TrainSpec, train

    result = train(TrainSpec(model="cnn", dataset="drawings", init="default", dry_run=True, train_size=300,
                             params={"epochs": 1}), settings=get_settings())
    card = result.card
    assert card.train is not None and card.train.dataset == "drawings+mnist_train"
    assert card.notes["init"]["model"] == "default" and "--init default" in card.command
    assert result.estimator.get_params()["recipe"] == "finetune"
    assert result.evaluation.metrics["accuracy"] > 0.95  # it starts from the bundled network, not from scratch


@pytest.mark.parametrize("args, words", [
    (["train", "logreg", "--init", "default"], "does not support --init"),
    (["train", "cnn", "--init", "nosuchmodel"], "nosuchmodel"),
    (["train", "cnn", "--init", "default", "--folds", "2"], "--init"),
])
def test_train_init_refusals(cli, drawings_home: Path, args: list[str], words: str) -> None:
    r = cli(*args, "--dry-run" if "--folds" not in args else "--seed", *([] if "--folds" not in args else ["0"]))
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert words in r.stderr and "Traceback" not in r.stderr
