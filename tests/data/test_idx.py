import gzip

import numpy as np
import pytest

from digitlab.data import read_idx, read_idx_pair, write_idx, write_idx_pair
from digitlab.errors import DataError


def test_reads_real_mnist_test_split(mnist_dir):
    images, labels = read_idx_pair(mnist_dir / "t10k-images-idx3-ubyte.gz", mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, mnist_test, suffix):
    x, y = mnist_test
    write_idx_pair(tmp_path / f"i{suffix}", tmp_path / f"l{suffix}", x[:100], y[:100])
    x2, y2 = read_idx_pair(tmp_path / f"i{suffix}", tmp_path / f"l{suffix}")
    assert np.array_equal(x2, x[:100]) and np.array_equal(y2, y[:100])


def test_bad_magic_number(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x03" + b"\x00" * 20)
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "bad")


def test_truncated_data_names_the_record(tmp_path):
    x = np.zeros((5, 28, 28), np.uint8)
    write_idx(tmp_path / "x", x)
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(data[: len(data) - 784 - 10])
    with pytest.raises(DataError, match=r"record 3.*truncated|truncated") as err:
        read_idx(tmp_path / "x")
    assert "record 3" in str(err.value) and str(tmp_path / "x") in str(err.value)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02")
    (tmp_path / "l.gz").write_bytes(good[:-6])
    with pytest.raises(DataError, match="gzip"):
        read_idx(tmp_path / "l.gz")


def test_label_outside_0_9(tmp_path):
    write_idx(tmp_path / "i", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "l", np.array([3, 12], np.uint8))
    with pytest.raises(DataError, match=r"record 1.*label must be 0-9, got 12"):
        read_idx_pair(tmp_path / "i", tmp_path / "l")


def test_count_mismatch(tmp_path):
    write_idx(tmp_path / "i", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "l", np.array([3], np.uint8))
    with pytest.raises(DataError, match="1 labels for 2 images"):
        read_idx_pair(tmp_path / "i", tmp_path / "l")


def test_header_sizes_overflowing_int64_are_a_data_error(tmp_path):
    import struct

    (tmp_path / "huge").write_bytes(b"\x00\x00\x08\x04" + struct.pack(">4I", *[0xFFFFFFFF] * 4) + b"\x00" * 64)
    with pytest.raises(DataError, match="truncated IDX data"):
        read_idx(tmp_path / "huge")
    (tmp_path / "huge.gz").write_bytes(gzip.compress((tmp_path / "huge").read_bytes()))
    with pytest.raises(DataError, match=r"more than a gzip file of .* bytes can hold"):
        read_idx(tmp_path / "huge.gz")


def test_a_gzip_expanding_past_its_header_is_capped(tmp_path):
    header = b"\x00\x00\x08\x01" + (2).to_bytes(4, "big") + b"\x03\x04"
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(header + b"\x00" * 20_000_000))  # 20 MB of zeros after
    with pytest.raises(DataError, match="more data than its IDX header declares"):
        read_idx(tmp_path / "bomb.gz")


def test_a_truncated_gzip_names_the_record(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((5, 28, 28), np.uint8))
    raw = gzip.decompress((tmp_path / "x.gz").read_bytes())
    (tmp_path / "x.gz").write_bytes(gzip.compress(raw[: len(raw) - 784 - 10]))
    with pytest.raises(DataError, match="record 3: truncated IDX data"):
        read_idx(tmp_path / "x.gz")
