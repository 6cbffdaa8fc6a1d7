"""``digitlab.data.formats``: telling a dataset's format from its path, and reading any of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitlab.data import write_csv, write_idx_pair, write_image_folder, write_npz
from digitlab.data.formats import Format, detect_format, read_dataset
from digitlab.errors import DataError


@pytest.fixture
def digits() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8), np.arange(12) % 10


@pytest.mark.parametrize("name, fmt", [
    ("d.csv", Format.csv), ("D.CSV.gz", Format.csv), ("d.npz", Format.npz), ("train-images-idx3-ubyte", Format.idx),
    ("t10k-images-idx3-ubyte.gz", Format.idx), ("my.idx3", Format.idx), ("digits-ubyte", Format.idx),
])
def test_format_from_the_file_name(tmp_path: Path, name: str, fmt: Format) -> None:
    assert detect_format(tmp_path / name) is fmt


def test_a_folder_is_mnist_idx_or_images(tmp_path: Path) -> None:
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    (tmp_path / "pics").mkdir()
    assert detect_format(tmp_path / "idx") is Format.idx
    assert detect_format(tmp_path / "pics") is Format.images


def test_an_unknown_name_asks_for_the_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="pass --format"):
        detect_format(tmp_path / "digits.bin")


def test_every_format_reads_back_the_same_digits(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    x, y = digits
    write_csv(tmp_path / "d.csv", x, y)
    write_npz(tmp_path / "d.npz", (x, y), (x[:3], y[:3]))
    write_idx_pair(tmp_path / "d-images-idx3-ubyte", tmp_path / "d-labels-idx1-ubyte", x, y)
    write_image_folder(tmp_path / "pics", x, y)
    for path in ("d.csv", "d.npz", "d-images-idx3-ubyte"):
        xs, ys = read_dataset(tmp_path / path)
        np.testing.assert_array_equal(xs, x, err_msg=path)
        np.testing.assert_array_equal(ys, y, err_msg=path)
        assert xs.dtype == np.uint8 and ys.dtype == np.int64
    xs, ys = read_dataset(tmp_path / "pics")  # normalised like MNIST by preprocess, read label by label
    assert xs.shape == x.shape and ys.tolist() == sorted(y.tolist())
    xt, _yt = read_dataset(tmp_path / "d.npz", split="test")
    np.testing.assert_array_equal(xt, x[:3])


def test_a_forced_format_is_used_and_a_missing_path_refused(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    x, y = digits
    write_csv(tmp_path / "d.txt", x, y)
    _xs, ys = read_dataset(tmp_path / "d.txt", Format.csv)
    np.testing.assert_array_equal(ys, y)
    with pytest.raises(DataError, match="no such file"):
        read_dataset(tmp_path / "nothing.csv")


def test_an_idx_images_file_without_its_labels_file_is_named(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    from digitlab.data import write_idx

    write_idx(tmp_path / "mine.idx3", digits[0])
    with pytest.raises(DataError, match="labels"):
        read_dataset(tmp_path / "mine.idx3")
