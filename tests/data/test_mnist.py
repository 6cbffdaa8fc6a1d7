import gzip
import shutil
import time

import pytest

from digitlab.data import fetch_mnist, find_mnist, load_mnist
from digitlab.errors import DataError, DataNotFoundError, DigitlabError


def test_load_counts(mnist_dir):
    _, y = load_mnist(mnist_dir, "train")
    assert y.shape == (60000,)


def test_missing_mnist_says_where_to_put_files(tmp_path):
    with pytest.raises(DataNotFoundError,
                       match=r"MNIST not found in .*digitlab data fetch.*train-images-idx3-ubyte.gz"):
        find_mnist(tmp_path)


def test_accepts_raw_files(tmp_path, mnist_dir):
    for f in mnist_dir.glob("*.gz"):
        (tmp_path / f.name[:-3]).write_bytes(gzip.decompress(f.read_bytes()))
    x, _ = load_mnist(tmp_path, "test")
    assert x.shape == (10000, 28, 28)


def test_fetch_from_local_folder_verifies_checksums(tmp_path, mnist_dir):
    paths = fetch_mnist(tmp_path / "dest", source=mnist_dir)
    assert sorted(p.name for p in paths.values()) == sorted(f.name for f in mnist_dir.glob("*.gz"))


def test_fetch_rejects_a_corrupt_source(tmp_path, mnist_dir):
    src = tmp_path / "src"
    shutil.copytree(mnist_dir, src)
    labels = src / "t10k-labels-idx1-ubyte.gz"
    labels.chmod(0o644)
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch_mnist(tmp_path / "dest", source=src)
    assert not (tmp_path / "dest" / "t10k-labels-idx1-ubyte.gz").exists()


def test_fetch_offline_fails_fast_with_instructions(tmp_path):
    start = time.monotonic()
    with pytest.raises(DigitlabError, match=r"could not download MNIST.*put the four files"):
        fetch_mnist(tmp_path, mirrors=("http://127.0.0.1:9/", "https://mnist.invalid/"), timeout=5)
    assert time.monotonic() - start < 30  # a hang would be a bug, not a slow machine
    assert not list(tmp_path.glob("*.gz"))
