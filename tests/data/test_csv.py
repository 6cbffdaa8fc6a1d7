import numpy as np
import pytest

from digitlab.data import read_csv, write_csv
from digitlab.errors import DataError


@pytest.fixture
def sample(mnist_test):
    x, y = mnist_test
    return x[:50], y[:50]


@pytest.mark.parametrize(("label", "header"), [("first", False), ("last", False), ("last", True), ("first", True)])
def test_round_trip(tmp_path, sample, label, header):
    write_csv(tmp_path / "d.csv", *sample, label=label, header=header)
    x, y = read_csv(tmp_path / "d.csv")
    assert np.array_equal(x, sample[0]) and np.array_equal(y, sample[1])


def test_mldb_layout_with_numbered_header(tmp_path, sample):
    write_csv(tmp_path / "d.csv", *sample, label="last", header=True)
    assert (tmp_path / "d.csv").read_text().split("\n", 1)[0].endswith(",784,785")
    _, y = read_csv(tmp_path / "d.csv")
    assert np.array_equal(y, sample[1])


def _rows(n=3):
    return [",".join(["7"] + ["0"] * 784) for _ in range(n)]


def test_ragged_row(tmp_path):
    rows = _rows()
    rows[1] = rows[1] + ",0"
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"record 1: ragged row: expected 785 fields, got 786"):
        read_csv(tmp_path / "r.csv")


def test_non_numeric_field(tmp_path):
    rows = _rows()
    rows[2] = rows[2].replace(",0,", ",x,", 1)
    (tmp_path / "n.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"record 2: field 1 is not a number"):
        read_csv(tmp_path / "n.csv")


def test_pixel_out_of_range(tmp_path):
    rows = _rows()
    rows[1] = rows[1].replace(",0,", ",300,", 1)
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"record 1: pixel \d+ must be 0-255, got 300"):
        read_csv(tmp_path / "p.csv", label="first")


def test_label_out_of_range(tmp_path):
    rows = _rows()
    rows[0] = "11" + rows[0][1:]
    (tmp_path / "l.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"record 0: label must be 0-9, got 11"):
        read_csv(tmp_path / "l.csv", label="first")


def test_wrong_width(tmp_path):
    (tmp_path / "w.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="expected 785 columns"):
        read_csv(tmp_path / "w.csv")
