"""Parquet: Hugging Face's MNIST layout, a pixels list column, 784 pixel columns; torchvision's MNIST/raw."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from digitlab.data import Format, detect_format, read_dataset, read_parquet, write_parquet
from digitlab.errors import DataError


@pytest.fixture
def sample(mnist_test):
    x, y = mnist_test
    return x[:40], y[:40]


def test_hugging_face_layout_round_trip(tmp_path, sample):
    write_parquet(tmp_path / "train-00000-of-00001.parquet", *sample)
    schema = pq.read_schema(tmp_path / "train-00000-of-00001.parquet")
    assert schema.field("image").type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    x, y = read_parquet(tmp_path / "train-00000-of-00001.parquet")
    assert np.array_equal(x, sample[0]) and np.array_equal(y, sample[1])
    assert detect_format(tmp_path / "train-00000-of-00001.parquet") is Format.parquet


def test_pixels_list_and_wide_layouts(tmp_path, sample):
    x, y = sample
    write_parquet(tmp_path / "p.parquet", x, y, layout="pixels")
    assert np.array_equal(read_parquet(tmp_path / "p.parquet")[0], x)
    wide = {f"pixel{i}": x.reshape(len(x), -1)[:, i].astype(np.int64) for i in range(784)}
    pq.write_table(pa.table({"label": y, **wide}), tmp_path / "w.parquet")
    x2, y2 = read_dataset(tmp_path / "w.parquet")
    assert np.array_equal(x2, x) and np.array_equal(y2, y)


def test_pictures_of_another_size_are_normalised_like_any_picture(tmp_path):
    big = np.zeros((100, 80), np.uint8)
    big[20:80, 35:45] = 255  # a "1"
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    pq.write_table(pa.table({"image": pa.array([buf.getvalue()], pa.binary()), "label": [1]}),
                   tmp_path / "one.parquet")
    x, y = read_parquet(tmp_path / "one.parquet")
    assert x.shape == (1, 28, 28) and x.max() > 200 and y.tolist() == [1]


def test_bad_labels_and_pictures_name_the_record(tmp_path, sample):
    x, y = sample
    write_parquet(tmp_path / "p.parquet", x, y)
    table = pq.read_table(tmp_path / "p.parquet")
    labels = table.column("label").to_numpy().copy()
    labels[7] = 10
    pq.write_table(table.set_column(1, "label", pa.array(labels)), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad.parquet, record 7: label must be 0-9, got 10"):
        read_parquet(tmp_path / "bad.parquet")
    images = table.column("image").combine_chunks().field("bytes").to_pylist()
    images[3] = b"not a png"
    pq.write_table(pa.table({"image": pa.array(images, pa.binary()), "label": y}), tmp_path / "pic.parquet")
    with pytest.raises(DataError, match=r"pic.parquet, record 3: picture: cannot decode image"):
        read_parquet(tmp_path / "pic.parquet")


def test_files_that_are_not_digits_are_refused(tmp_path):
    pq.write_table(pa.table({"a": [1]}), tmp_path / "nolabel.parquet")
    with pytest.raises(DataError, match="no label column"):
        read_parquet(tmp_path / "nolabel.parquet")
    pq.write_table(pa.table({"label": [1], "b": [2]}), tmp_path / "narrow.parquet")
    with pytest.raises(DataError, match="784 pixel columns"):
        read_parquet(tmp_path / "narrow.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 junk")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_parquet(tmp_path / "junk.parquet")


def test_torchvision_raw_layout_is_found(tmp_path, mnist_dir):
    from digitlab.data import find_mnist, load_mnist

    raw = tmp_path / "torch" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in mnist_dir.iterdir():
        if f.name.startswith(("train-", "t10k-")):
            (raw / f.name).symlink_to(f)
    for root in (tmp_path / "torch", tmp_path / "torch" / "MNIST", raw):
        assert set(find_mnist(root)) == {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
    assert load_mnist(tmp_path / "torch", "test")[0].shape == (10000, 28, 28)
    assert detect_format(tmp_path / "torch") is Format.idx
