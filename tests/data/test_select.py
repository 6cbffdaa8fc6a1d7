"""``digitlab.data.select``: choosing rows by dataset name, SQL condition and stratified sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitlab.data import write_csv
from digitlab.data.select import filter_where, load_dataset, stratified_sample
from digitlab.errors import NotFoundError, UserError
from digitlab.settings import Settings
from digitlab.store import Store


@pytest.fixture
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    return x, np.arange(40) % 4, np.arange(100, 140)


def test_filter_where_keeps_matching_rows_in_order(digits) -> None:  # type: ignore[no-untyped-def]
    x, y, ids = digits
    xs, ys, kept = filter_where(x, y, ids, "label = 2 AND id >= 110")
    assert kept.tolist() == [110, 114, 118, 122, 126, 130, 134, 138] and (ys == 2).all()
    np.testing.assert_array_equal(xs, x[kept - 100])
    _, _, by_pixel = filter_where(x, y, ids, f"pixels[1] = {int(x[5, 0, 0])}")
    assert 105 in by_pixel.tolist()


def test_filter_where_reports_a_bad_condition(digits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError, match="bad --where condition"):
        filter_where(*digits, "nonsense ===")


def test_stratified_sample_keeps_the_label_proportions_and_is_seeded() -> None:
    labels = np.repeat(np.arange(10), [100, 200, 100, 100, 100, 100, 100, 100, 100, 100])
    a = stratified_sample(labels, 110, seed=3)
    assert len(a) == 110 and np.all(np.diff(a) > 0)
    assert np.bincount(labels[a]).tolist() == [10, 20, 10, 10, 10, 10, 10, 10, 10, 10]
    assert a.tolist() == stratified_sample(labels, 110, seed=3).tolist() != stratified_sample(labels, 110, 4).tolist()
    assert stratified_sample(labels, 5000, seed=0).tolist() == list(range(len(labels)))


@pytest.mark.parametrize("size, message", [(0, "must be positive"), (5, "smaller than the number of labels")])
def test_stratified_sample_refuses_impossible_sizes(size: int, message: str) -> None:
    with pytest.raises(UserError, match=message):
        stratified_sample(np.arange(100) % 10, size, seed=0)


def test_load_dataset_from_a_store_table_or_a_file(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    x, y, _ = digits
    settings = Settings(data_dir=tmp_path / "no-mnist", home=tmp_path / "home")
    Store(settings.store_path).import_arrays("mine", x, y)
    xs, ys, ids = load_dataset(settings, "mine", "label = 1")
    assert ids.tolist() == [1, 5, 9, 13, 17, 21, 25, 29, 33, 37] and (ys == 1).all()
    write_csv(tmp_path / "d.csv", x, y)
    xs, ys, ids = load_dataset(settings, str(tmp_path / "d.csv"), "id < 3")
    assert ids.tolist() == [0, 1, 2] and np.array_equal(xs, x[:3])


def test_load_dataset_names_what_it_knows(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "no-mnist", home=tmp_path / "home")
    Store(settings.store_path).import_arrays("mine", digits[0], digits[1])
    with pytest.raises(NotFoundError, match=r"no dataset 'other'.*\(mine\)"):
        load_dataset(settings, "other", None)
    with pytest.raises(UserError, match="is empty"):
        load_dataset(settings, "mine", "label > 9")


def test_mnist_comes_from_the_files_when_not_imported(tmp_path: Path, mnist_dir: Path) -> None:
    settings = Settings(data_dir=mnist_dir, home=tmp_path / "home")
    x, _y, ids = load_dataset(settings, "mnist_test", "id % 1000 = 0")
    assert ids.tolist() == list(range(0, 10000, 1000)) and x.shape == (10, 28, 28)
    assert not settings.store_path.exists()


def test_import_dataset_puts_a_file_in_the_store_under_its_name(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    from digitlab.data.select import import_dataset

    x, y, _ = digits
    settings = Settings(data_dir=tmp_path / "no-mnist", home=tmp_path / "home")
    write_csv(tmp_path / "d.csv", x, y)
    assert import_dataset(settings, tmp_path / "d.csv", "mine") == {"mine": 40}
    xs, _, ids = Store(settings.store_path).load("mine")
    assert np.array_equal(xs, x) and ids.tolist() == list(range(40))
    with pytest.raises(UserError, match="table name is required"):
        import_dataset(settings, tmp_path / "d.csv")
    with pytest.raises(UserError, match="table name must be"):
        import_dataset(settings, tmp_path / "d.csv", "1bad")
