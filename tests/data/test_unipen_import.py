"""``digitlab data import FILE --format unipen``: pen trajectories drawn as the page draws strokes, with writers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from digitlab import pen
from digitlab.data import Format, PenDigits, detect_format
from digitlab.data.select import import_dataset, load_dataset
from digitlab.settings import get_settings
from digitlab.store import Store

_GOOD = """.INCLUDE dene.doc
.LEXICON "0" "1" "2" "3" "4" "5" "6" "7" "8" "9"
.HIERARCHY DIGIT

.SEGMENT DIGIT 0 ? "1"
.COMMENT 1 3 0
.PEN_DOWN
 10 100
 10  50
  11 10
.PEN_UP
.DT 100

.SEGMENT DIGIT 1-2 ? "4"
.COMMENT 4 7 0
.PEN_DOWN
 10 100
 0 40
 40 40
.PEN_UP
.DT 100
.PEN_DOWN
 30 80
 30 0
.PEN_UP
"""

#: Malformed files and the line their error names.
_BAD = {
    "point_outside.tra": (_GOOD.replace(".PEN_UP\n.DT 100\n\n.SEGMENT DIGIT 1-2", ".PEN_UP\n 5 5\n.SEGMENT DIGIT 1-2"),
                          "line 12:"),
    "bad_label.tes": (_GOOD.replace('? "4"', '? "x"'), "line 14:"),
    "truncated.tra.gz": (_GOOD[:_GOOD.rindex(".PEN_UP")], "ends inside a stroke"),
    "no_writer.tra": (_GOOD.replace(".COMMENT 4 7 0\n", ""), "line 14:"),
}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_bytes(gzip.compress(text.encode("ascii")) if name.endswith(".gz") else text.encode("ascii"))
    return path


@pytest.fixture(scope="module")
def pen_file(mnist_dir: Path) -> Path:
    path = mnist_dir.parent / "pendigits" / "pendigits-orig.tra.gz"
    if not path.exists():
        pytest.skip(f"the pen digits are not at {path}")
    return path


@pytest.fixture(scope="module")
def pen_home(tmp_path_factory: pytest.TempPathFactory, pen_file: Path, mnist_dir: Path) -> dict[str, str]:
    """A home into which the CLI imported the shared pendigits file (format told by its name)."""
    from digitlab.cli import app

    env = {"DIGITLAB_HOME": str(tmp_path_factory.mktemp("pen-home")), "DIGITLAB_DATA": str(mnist_dir)}
    r = CliRunner().invoke(app, ["data", "import", str(pen_file), "--name", "pendigits", "-f", "json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tables"] == {"pendigits": 7494}
    return env


def _run(env: dict[str, str], *args: object):
    from digitlab.cli import app
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def _store(env: dict[str, str]) -> Store:
    return Store(Path(env["DIGITLAB_HOME"]) / "digitlab.duckdb")


def test_unipen_names_are_detected():
    for name in ("pendigits-orig.tra.gz", "pendigits-orig.tra", "pendigits-orig.tes", "X.TES.GZ"):
        assert detect_format(name) is Format.unipen, name


def test_the_shared_file_imports_with_writers_and_canvas_strokes(pen_home, pen_digits: PenDigits):
    store = _store(pen_home)
    assert store.columns("pendigits") == ["id", "label", "pixels", "writer", "strokes"]
    r = _run(pen_home, "sql", "SELECT writer, count(*) AS n FROM pendigits GROUP BY writer ORDER BY writer",
             "-f", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["rows"]
    assert len(rows) == 30
    counts = np.bincount(pen_digits.writers)
    assert {row["writer"]: row["n"] for row in rows} == {w: int(counts[w]) for w in np.unique(pen_digits.writers)}

    images, labels, ids = store.load("pendigits")
    assert images.shape == (7494, 28, 28) and ids.tolist() == list(range(7494))
    np.testing.assert_array_equal(labels, pen_digits.labels)
    rows_ = np.random.default_rng(0).choice(7494, 300, replace=False)
    for i in rows_:  # the pixels the page's path gives, and the canvas strokes it sends
        np.testing.assert_array_equal(images[i], pen.render(pen_digits.strokes[i]))
    got = store.query(f"SELECT id, writer, strokes FROM pendigits WHERE id IN ({','.join(map(str, rows_))})").rows
    for i, writer, strokes in got:
        assert writer == pen_digits.writers[i]
        canvas = pen.to_canvas(pen_digits.strokes[i])
        assert len(json.loads(strokes)) == len(canvas)
        for a, b in zip(json.loads(strokes), canvas, strict=True):
            np.testing.assert_array_equal(np.array(a), b)


def test_where_show_and_train_select_by_writer(pen_home, pen_digits: PenDigits):
    settings = get_settings(home=Path(pen_home["DIGITLAB_HOME"]), data_dir=Path(pen_home["DIGITLAB_DATA"]))
    _, labels, ids = load_dataset(settings, "pendigits", "writer <= 24 AND label = 7")
    want = np.flatnonzero((pen_digits.writers <= 24) & (pen_digits.labels == 7))
    assert ids.tolist() == want.tolist() and set(labels.tolist()) == {7}

    r = _run(pen_home, "show", "pendigits", 3, "-f", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["label"] == int(pen_digits.labels[3])

    r = _run(pen_home, "train", "centroid", "--table", "pendigits", "--where", "writer <= 24", "--name", "pc",
             "-f", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["train_size"] == int((pen_digits.writers <= 24).sum())


def test_a_small_file_needs_format_unipen_when_its_name_does_not_tell(cli, tmp_path):
    path = _write(tmp_path, "two.txt", _GOOD)
    r = cli("data", "import", path, "--name", "two")
    assert r.exit_code == 2 and "--format" in r.stderr
    r = cli("data", "import", path, "--name", "two", "--format", "unipen", "-f", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tables"] == {"two": 2}
    r = cli("sql", "SELECT id, label, writer FROM two ORDER BY id", "-f", "json")
    assert [(row["id"], row["label"], row["writer"]) for row in json.loads(r.stdout)["rows"]] == [(0, 1, 3), (1, 4, 7)]
    r = cli("data", "import", path, "--name", "two", "--format", "unipen")
    assert r.exit_code == 2 and "--replace" in r.stderr
    assert cli("data", "import", path, "--name", "two", "--format", "unipen", "--replace").exit_code == 0


def test_the_library_import_returns_rows_and_keeps_strokes(tmp_path, home):
    path = _write(tmp_path, "two.tra", _GOOD)
    settings = get_settings()
    seen: list[tuple[int, int]] = []
    assert import_dataset(settings, path, "two", progress=lambda k, d, t, **_: seen.append((d, t))) == {"two": 2}
    assert seen[-1] == (2, 2)
    (strokes,), = Store(settings.store_path).query("SELECT strokes FROM two WHERE id = 1").rows
    assert len(json.loads(strokes)) == 2  # the 4's two strokes


@pytest.mark.parametrize("name", sorted(_BAD))
def test_a_malformed_file_exits_2_naming_the_line_and_stores_nothing(cli, tmp_path, name):
    text, where = _BAD[name]
    good = _write(tmp_path, "good.tra", _GOOD)
    assert cli("data", "import", good, "--name", "kept").exit_code == 0
    bad = _write(tmp_path, name, text)
    for table, extra in (("fresh", ()), ("kept", ("--replace",))):
        r = cli("data", "import", bad, "--name", table, *extra)
        assert r.exit_code == 2, r.output
        assert where in r.stderr and str(bad) in r.stderr and "Traceback" not in r.output + r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = cli("sql", "SELECT count(*) AS n FROM kept", "-f", "json")
    assert json.loads(r.stdout)["rows"] == [{"n": 2}]  # the old table is untouched
    assert cli("sql", "SELECT count(*) FROM fresh").exit_code == 2  # and no new one was made


def test_read_dataset_draws_a_unipen_file_as_the_page_does(tmp_path):
    from digitlab.data import read_dataset, read_unipen

    path = _write(tmp_path, "two.tes.gz", _GOOD)
    images, labels = read_dataset(path)
    digits = read_unipen(path)
    assert images.shape == (2, 28, 28) and labels.tolist() == [1, 4]
    for image, strokes in zip(images, digits.strokes, strict=True):
        np.testing.assert_array_equal(image, pen.render(strokes))
