import numpy as np
import pytest

from digitlab.data import read_npz, write_npz
from digitlab.errors import DataError


def test_keras_round_trip(tmp_path, mnist_test):
    x, y = mnist_test
    write_npz(tmp_path / "mnist.npz", (x[:30], y[:30]), (x[30:40], y[30:40]))
    xt, yt = read_npz(tmp_path / "mnist.npz", split="test")
    assert np.array_equal(xt, x[30:40]) and np.array_equal(yt, y[30:40])
    xa, _ = read_npz(tmp_path / "mnist.npz", split="all")
    assert xa.shape == (40, 28, 28)


def test_object_arrays_are_refused_not_unpickled(tmp_path):
    np.savez(tmp_path / "evil.npz", x_train=np.array([object()], dtype=object), y_train=np.array([1]))
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        read_npz(tmp_path / "evil.npz")


def test_missing_arrays(tmp_path):
    np.savez(tmp_path / "o.npz", foo=np.zeros(3))
    with pytest.raises(DataError, match="expected arrays"):
        read_npz(tmp_path / "o.npz")


def test_label_out_of_range(tmp_path):
    np.savez(tmp_path / "b.npz", x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([1, 10]))
    with pytest.raises(DataError, match="record 1: label must be 0-9"):
        read_npz(tmp_path / "b.npz")


def test_string_labels_are_a_data_error(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.zeros((3, 28, 28), np.uint8), y=np.array(["1", "2", "3"]))
    with pytest.raises(DataError, match=r"s.npz:y: labels must be integers 0-9, got an array of <U1"):
        read_npz(tmp_path / "s.npz")


def test_a_header_claiming_a_billion_images_is_refused_before_loading(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (10**9, 28, 28)})
    with zipfile.ZipFile(tmp_path / "big.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", buf.getvalue() + b"\x00" * 784)
        z.writestr("y.npy", b"")
    with pytest.raises(DataError, match=r"array 'x' claims shape \(1000000000, 28, 28\)"):
        read_npz(tmp_path / "big.npz")
