import numpy as np
import pytest

from digitlab.errors import NotFoundError, UserError
from digitlab.store import Store


@pytest.fixture
def store(tmp_path, mnist_test):
    s = Store(tmp_path / "s.duckdb")
    x, y = mnist_test
    s.import_arrays("digits", x[:500], y[:500])
    return s


def test_load_round_trip(store, mnist_test):
    x, y, ids = store.load("digits")
    assert np.array_equal(x, mnist_test[0][:500]) and np.array_equal(y, mnist_test[1][:500])
    assert ids.tolist() == list(range(500))


def test_where_filters_rows(store):
    _, y, _ = store.load("digits", where="label = 7")
    assert len(y) > 0 and set(y.tolist()) == {7}


def test_hash_split_is_about_80_20_and_deterministic(store):
    held = store.query("SELECT count(*) FROM digits WHERE hash(id) % 5 = 0").rows[0][0]
    assert 60 <= held <= 140
    assert store.query("SELECT count(*) FROM digits WHERE hash(id) % 5 = 0").rows[0][0] == held


def test_pixel_indexing_matches_numpy(store, mnist_test):
    r, c = 14, 15
    value = store.query(f"SELECT pixels[{28 * r + c + 1}] FROM digits WHERE id = 0").rows[0][0]
    assert value == mnist_test[0][0, r, c]


def test_reimport_replaces_the_table(store, mnist_test):
    x, y = mnist_test
    store.import_arrays("digits", x[:10], y[:10])
    assert store.query("SELECT count(*) FROM digits").rows[0][0] == 10


def test_failed_import_keeps_the_old_table(store, mnist_test):
    x, y = mnist_test
    with pytest.raises(ValueError):
        store.import_arrays("digits", x[:10], y[:9])
    assert store.query("SELECT count(*) FROM digits").rows[0][0] == 500


def test_bad_sql_is_a_user_error(store):
    with pytest.raises(UserError, match="SQL error"):
        store.query("SELEC 1")


def test_unknown_table(store):
    with pytest.raises(NotFoundError, match="no dataset table 'nope'"):
        store.load("nope")


def test_bad_table_name(store, mnist_test):
    with pytest.raises(UserError, match="table name"):
        store.import_arrays("x; DROP TABLE digits", *mnist_test)


def test_where_on_mnist_files_matches_the_store(store, tmp_path, mnist_test):
    from digitlab.data.select import filter_where

    x, y = mnist_test
    _, sql_labels, sql_ids = store.load("digits", where="hash(id) % 5 = 0")
    _, labels, ids = filter_where(x[:500], y[:500], np.arange(500), "hash(id) % 5 = 0")
    assert ids.tolist() == sql_ids.tolist() and labels.tolist() == sql_labels.tolist()


def test_stratified_sample_keeps_class_proportions(mnist_test):
    from digitlab.data.select import stratified_sample

    _, y = mnist_test
    idx = stratified_sample(y, 1000, seed=0)
    assert len(idx) == 1000 and np.abs(np.bincount(y[idx], minlength=10) - np.bincount(y) / 10).max() <= 1
