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


# ------------------------------------------------------------------------ the label column is never guessed wrong


@pytest.mark.parametrize("side", ["first", "last"])
def test_one_bad_label_is_an_error_naming_the_record_not_a_silent_shift(tmp_path, sample, side):
    x, y = sample
    bad = y.copy()
    bad[17] = 10
    write_csv(tmp_path / "bad.csv", x, bad, label=side)
    with pytest.raises(DataError, match=r"bad.csv, record 17: label must be 0-9, got 10"):
        read_csv(tmp_path / "bad.csv")


def test_a_few_bad_labels_are_still_labels(tmp_path, sample):
    x, y = sample
    bad = y.copy()
    bad[[3, 30]] = [12, 255]
    write_csv(tmp_path / "bad.csv", x, bad)
    with pytest.raises(DataError, match=r"record 3: label must be 0-9, got 12"):
        read_csv(tmp_path / "bad.csv")


def test_an_ambiguous_file_is_refused_with_the_fix(tmp_path, sample):
    x, y = sample
    x = x.copy()
    x[:, 27, 27] = (y + 3) % 10  # the last pixel holds digits too: nothing tells which column is the label
    write_csv(tmp_path / "amb.csv", x, y, label="first")
    with pytest.raises(DataError, match=r"cannot tell which column is the label.*--label first or --label last"):
        read_csv(tmp_path / "amb.csv")
    x2, y2 = read_csv(tmp_path / "amb.csv", label="first")
    assert np.array_equal(y2, y) and np.array_equal(x2, x)


def test_a_file_without_digits_at_either_edge_is_refused(tmp_path):
    row = ",".join(["10"] + ["0"] * 784)
    (tmp_path / "one.csv").write_text(row + "\n")
    with pytest.raises(DataError, match=r"cannot tell which column.*first column has 1 value\(s\) outside 0-9 "
                                        r"\(record 0: 10\)"):
        read_csv(tmp_path / "one.csv")
    with pytest.raises(DataError, match=r"record 0: label must be 0-9, got 10"):
        read_csv(tmp_path / "one.csv", label="first")


def test_a_single_class_file_is_read(tmp_path, sample):
    x, y = sample
    twos = np.full(len(y), 2)
    write_csv(tmp_path / "twos.csv", x, twos)
    assert set(read_csv(tmp_path / "twos.csv")[1].tolist()) == {2}


def test_a_header_naming_the_label_is_checked_too(tmp_path, sample):
    x, y = sample
    bad = y.copy()
    bad[5] = 11
    write_csv(tmp_path / "h.csv", x, bad, label="last", header=True)
    with pytest.raises(DataError, match=r"record 5: label must be 0-9, got 11"):
        read_csv(tmp_path / "h.csv")


# ------------------------------------------------------------------------ gzipped CSV (MLDB's digits_data.csv.gz)


def test_gzipped_csv_is_read(tmp_path, sample):
    import gzip

    write_csv(tmp_path / "digits_data.csv", *sample, label="last", header=True)
    (tmp_path / "digits_data.csv.gz").write_bytes(gzip.compress((tmp_path / "digits_data.csv").read_bytes()))
    x, y = read_csv(tmp_path / "digits_data.csv.gz")
    assert np.array_equal(x, sample[0]) and np.array_equal(y, sample[1])


def test_a_gzipped_csv_expanding_past_its_declared_size_is_refused(tmp_path, sample):
    import gzip
    import struct

    write_csv(tmp_path / "d.csv", *sample)
    packed = bytearray(gzip.compress((tmp_path / "d.csv").read_bytes() + b"0" * 5_000_000))
    packed[-4:] = struct.pack("<I", 1000)  # the trailer declares 1000 bytes
    (tmp_path / "bomb.csv.gz").write_bytes(bytes(packed))
    with pytest.raises(DataError, match="more data than the gzip trailer declares"):
        read_csv(tmp_path / "bomb.csv.gz")
