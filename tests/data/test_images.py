import numpy as np
import pytest
from PIL import Image

from digitlab.data import read_image_folder, write_image_folder
from digitlab.errors import DataError


def test_round_trip(tmp_path, mnist_test):
    x, y = mnist_test
    write_image_folder(tmp_path / "imgs", x[:40], y[:40])
    x2, y2 = read_image_folder(tmp_path / "imgs")
    order = np.lexsort((np.arange(40), y[:40]))
    assert np.array_equal(x2, x[:40][order]) and np.array_equal(y2, y[:40][order])


@pytest.mark.parametrize(("suffix", "mode", "size"), [
    (".png", "RGB", (200, 200)), (".jpg", "L", (64, 80)), (".bmp", "RGB", (28, 28)),
    (".gif", "P", (100, 100)), (".png", "RGBA", (50, 50)),
])
def test_any_format_mode_and_size_becomes_28x28_grey(tmp_path, suffix, mode, size):
    (tmp_path / "d" / "3").mkdir(parents=True)
    img = Image.new("L", size, 255)  # dark digit on white paper
    w, h = size
    img.paste(0, (w // 3, h // 4, w // 2, 3 * h // 4))
    img.convert(mode).save(tmp_path / "d" / "3" / f"a{suffix}")
    x, y = read_image_folder(tmp_path / "d")
    assert x.shape == (1, 28, 28) and x.dtype == np.uint8 and y.tolist() == [3]
    assert x[0].max() > 200 and x[0][0, 0] < 50  # ink is light on dark, like MNIST


def test_undecodable_image(tmp_path):
    (tmp_path / "d" / "1").mkdir(parents=True)
    (tmp_path / "d" / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=r"broken.png.*record 0"):
        read_image_folder(tmp_path / "d")


def test_sub_folders_must_be_labels(tmp_path):
    (tmp_path / "d" / "cats").mkdir(parents=True)
    with pytest.raises(DataError, match="named 0-9"):
        read_image_folder(tmp_path / "d")


def test_a_lab_image_in_a_folder_is_read_by_its_lightness(tmp_path):
    """A CIELAB picture (exit 1 once) is read by its L band, as the server reads one."""
    from digitlab.preprocess import mnist_ready

    (tmp_path / "imgs" / "3").mkdir(parents=True)
    digit = np.zeros((40, 40), dtype=np.uint8)
    digit[4:30, 20:26] = 255                                       # a bar, off centre: white ink on black
    grey = Image.fromarray(digit)
    lab = Image.merge("LAB", (grey, Image.new("L", grey.size, 128), Image.new("L", grey.size, 128)))
    lab.save(tmp_path / "imgs" / "3" / "a.tif")
    x, y = read_image_folder(tmp_path / "imgs")
    assert y.tolist() == [3] and x.shape == (1, 28, 28) and x.max() == 255 and mnist_ready(x[0])
