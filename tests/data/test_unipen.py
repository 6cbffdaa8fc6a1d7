import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from digitlab.data import PenDigits, read_unipen
from digitlab.errors import DataError

_NAME = "pendigits-orig.tra.gz"
_PENS = [Path(os.environ["DIGITLAB_DATA"]).parent / "pendigits" / _NAME] if os.environ.get("DIGITLAB_DATA") else []
_PENS.append(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pendigits" / _NAME)
_PEN = next((p for p in _PENS if p.exists()), _PENS[-1])  # beside MNIST ($DIGITLAB_DATA), or ../shared/data

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
.DT 100
"""


def _write(tmp_path: Path, text: str, name: str = "digits.txt") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("ascii")))
    else:
        path.write_text(text, encoding="ascii")
    return path


@pytest.mark.skipif(not _PEN.exists(), reason="the shared pendigits file is not there")
def test_reads_the_shared_pendigits_file():
    d = read_unipen(_PEN)
    assert isinstance(d, PenDigits) and len(d) == 7494
    assert d.labels.dtype == np.int64 and d.writers.dtype == np.int64
    assert np.bincount(d.labels).tolist() == [780, 779, 780, 719, 780, 720, 720, 778, 719, 719]
    assert sorted(set(d.writers.tolist())) == list(range(1, 31))
    assert sum(len(s) for s in d.strokes) == 9433  # .PEN_DOWN lines in the file
    first = d.strokes[0]  # an 8 by writer 12, one stroke, starting at (267, 333)
    assert d.labels[0] == 8 and d.writers[0] == 12 and len(first) == 1
    assert first[0].dtype == np.float64 and first[0].shape[1] == 2 and first[0][0].tolist() == [267.0, 333.0]
    pts = np.concatenate([s for digit in d.strokes for s in digit])
    assert pts.min() >= 0 and pts.max() <= 500  # inside the 500x500 tablet boxes


@pytest.mark.parametrize("name", ["digits.txt", "digits.txt.gz"])
def test_small_file_plain_and_gzip(tmp_path, name):
    d = read_unipen(_write(tmp_path, _GOOD, name))
    assert d.labels.tolist() == [1, 4] and d.writers.tolist() == [3, 7]
    assert [len(s) for s in d.strokes] == [1, 2]
    assert d.strokes[1][1].tolist() == [[30.0, 80.0], [30.0, 0.0]]
    assert d.strokes[0][0].shape == (3, 2)


def _broken(old: str, new: str, count: int = 1) -> str:
    assert old in _GOOD
    return _GOOD.replace(old, new, count)


@pytest.mark.parametrize(("text", "line", "words"), [
    # a point before PEN_DOWN
    (_broken(".PEN_DOWN\n 10 100\n 10  50", " 9 9\n.PEN_DOWN\n 10 100\n 10  50"), 8, "outside a stroke"),
    # non-numeric coordinates
    (_broken(" 10  50", " 10  fifty"), 10, "non-numeric"),
    (_broken(" 10  50", " 10 50 3"), 10, "expected a point"),
    (_broken(" 10  50", " nan 50"), 10, "non-finite"),
    # missing or bad label
    (_broken('.SEGMENT DIGIT 0 ? "1"', ".SEGMENT DIGIT 0 ?"), 6, "SEGMENT DIGIT"),
    (_broken('.SEGMENT DIGIT 0 ? "1"', '.SEGMENT DIGIT 0 ? "x"'), 6, "label"),
    # writer: missing, malformed, unknown, disagreeing label
    (_broken(".COMMENT 1 3 0\n", ""), 6, "writer is unknown"),
    (_broken(".COMMENT 1 3 0", ".COMMENT 1 three 0"), 7, "three integers"),
    (_broken(".COMMENT 1 3 0", ".COMMENT 1 0 0"), 7, "unknown writer"),
    (_broken(".COMMENT 1 3 0", ".COMMENT 7 3 0"), 7, "differs"),
    (_broken(".COMMENT 1 3 0", ".COMMENT 1 3 0\n.COMMENT 1 4 0"), 8, "second .COMMENT"),
    # strokes: PEN_UP without PEN_DOWN, empty stroke, keyword inside a stroke, count disagreeing
    (_broken(".PEN_UP\n.DT 100\n\n.SEGMENT DIGIT 1-2", ".PEN_UP\n.PEN_UP\n\n.SEGMENT DIGIT 1-2"), 13, "without"),
    (_broken(".PEN_DOWN\n 30 80\n 30 0\n", ".PEN_DOWN\n"), 24, "no points"),
    (_broken(" 10  50", ".DT 100"), 10, "inside a stroke"),
    (_broken("DIGIT 1-2", "DIGIT 1-3"), 15, "announces 3 strokes"),
    (_broken(".PEN_DOWN\n 10 100\n 10  50\n  11 10\n.PEN_UP\n", ""), 6, "no strokes"),
    # keywords: unknown, or a header keyword among the digits, or a stroke before any digit
    (_broken(".DT 100\n", ".FOO bar\n"), 13, "unknown keyword"),
    (_broken(".DT 100\n", ".LEXICON x\n"), 13, "header keyword"),
    (_broken(".HIERARCHY DIGIT", ".HIERARCHY DIGIT\n.PEN_DOWN"), 5, "before the first .SEGMENT"),
])
def test_malformed_file_names_file_and_line(tmp_path, text, line, words):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_unipen(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: line {line}:"), msg
    assert words in msg, msg


def test_truncated_file(tmp_path):
    cut = _GOOD[:_GOOD.index(" 30 0")]
    path = _write(tmp_path, cut)
    with pytest.raises(DataError, match=r"line 24: the file ends inside a stroke.*truncated"):
        read_unipen(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "digits.gz"
    path.write_bytes(gzip.compress(_GOOD.encode())[:-20])
    with pytest.raises(DataError, match="gzip") as err:
        read_unipen(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("text", ["", ".INCLUDE x\n.LEXICON \"0\"\n"])
def test_no_digit(tmp_path, text):
    with pytest.raises(DataError, match="no digit"):
        read_unipen(_write(tmp_path, text))


def test_not_text(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b".SEGMENT DIGIT 0 ? \"1\"\n\xff\xfe\n")
    with pytest.raises(DataError, match="line 2: not a UNIPEN text file"):
        read_unipen(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_unipen(tmp_path / "nope.txt")


def test_write_unipen_round_trips(tmp_path):
    from digitlab.data import write_unipen

    d = read_unipen(_write(tmp_path, _GOOD))
    for name in ("back.tra", "back.tra.gz"):
        back = read_unipen(write_unipen(tmp_path / name, d))
        assert back.labels.tolist() == d.labels.tolist() and back.writers.tolist() == d.writers.tolist()
        for a, b in zip(back.strokes, d.strokes, strict=True):
            assert len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    one = read_unipen(write_unipen(tmp_path / "one.tes", d, np.array([1])))
    assert one.labels.tolist() == [4] and one.writers.tolist() == [7] and len(one.strokes[0]) == 2
