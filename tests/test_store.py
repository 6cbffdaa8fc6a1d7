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


# ----------------------------------------------------------------------------------- SQL power, read-only by default


def test_query_is_read_only_by_default(store):
    with pytest.raises(UserError, match=r"read-only.*--write"):
        store.query("SELECT 1; DROP TABLE digits")
    assert store.query("SELECT count(*) FROM digits").rows == [(500,)]
    with pytest.raises(UserError, match="read-only"):
        store.query("CREATE TABLE t AS SELECT 1 AS x")


def test_query_with_write_changes_the_store_and_returns_the_last_result(store):
    result = store.query("CREATE TABLE t AS SELECT 1 AS x; INSERT INTO t VALUES (2); SELECT sum(x) AS s FROM t",
                         write=True)
    assert result.columns == ["s"] and result.rows == [(3,)]
    assert store.query("SELECT count(*) FROM t").rows == [(2,)]


def test_extensions_are_off_unless_asked_for(store):
    for sql in ("INSTALL httpfs", "LOAD httpfs", "SELECT 1; LOAD json"):
        with pytest.raises(UserError, match=r"INSTALL and LOAD .* --allow-extensions"):
            store.query(sql)
    with pytest.raises(UserError, match="locked"):
        store.query("SET autoload_known_extensions = true")
    assert store.query("SELECT current_setting('autoinstall_known_extensions') AS v").rows == [(False,)]


def test_query_result_as_arrow_and_pandas(store):
    result = store.query("SELECT label, count(*) AS n FROM digits GROUP BY label ORDER BY label")
    table = result.arrow()
    assert table.column_names == ["label", "n"] and table.num_rows == 10 and len(result) == 10
    df = result.df()
    assert list(df.columns) == ["label", "n"] and int(df["n"].sum()) == 500
    assert result.records()[0] == {"label": 0, "n": int(df["n"].iloc[0])}


def test_query_parameters(store):
    assert store.query("SELECT count(*) FROM digits WHERE label = ?", [7]).rows[0][0] > 0


def test_duckdb_hints_are_kept(store):
    with pytest.raises(UserError, match="Did you mean"):
        store.query("SELECT * FROM digitz")


# ----------------------------------------------------------------------------------- --where is one sealed condition


@pytest.mark.parametrize("where", [
    "label = 1; DROP TABLE digits",
    "id IN (SELECT * FROM read_csv('/etc/passwd'))",
    "EXISTS (SELECT * FROM glob('/*'))",
    "id IN (SELECT 1 FROM read_parquet('x.parquet'))",
    "1=1) UNION SELECT 1 FROM digits WHERE (1=1",
    "1=1) ORDER BY (id",
    "   ",
])
def test_where_refuses_anything_but_one_condition(store, where):
    from digitlab.store import check_where

    with pytest.raises(UserError, match="bad --where condition"):
        check_where(where)
    with pytest.raises(UserError, match="bad --where condition"):
        store.load("digits", where=where)
    assert store.query("SELECT count(*) FROM digits").rows == [(500,)]


def test_where_may_use_subqueries_over_the_stores_tables(store):
    store.query("CREATE TABLE keep AS SELECT id FROM digits WHERE id < 5", write=True)
    _, _, ids = store.load("digits", where="id IN (SELECT id FROM keep) AND label >= 0")
    assert ids.tolist() == [0, 1, 2, 3, 4]


def test_where_has_no_file_access_even_in_an_expression(store, tmp_path):
    (tmp_path / "f.csv").write_text("a\n1\n")
    with pytest.raises(UserError, match="bad --where condition"):
        store.load("digits", where=f"id < (SELECT count(*) FROM '{tmp_path / 'f.csv'}')")


# ----------------------------------------------------------------------------------- import never replaces silently


def test_import_without_replace_refuses_an_existing_table(store, mnist_test):
    x, y = mnist_test
    with pytest.raises(UserError, match="already has a table 'digits'; pass --replace"):
        store.import_arrays("digits", x[:10], y[:10], replace=False)
    assert store.query("SELECT count(*) FROM digits").rows == [(500,)]


def test_import_many_is_all_or_nothing(store, mnist_test):
    x, y = mnist_test
    with pytest.raises(UserError, match="already has a table 'digits'"):
        store.import_many({"fresh": (x[:5], y[:5], None), "digits": (x[:5], y[:5], None)}, replace=False)
    assert "fresh" not in store.tables()


# ----------------------------------------------------------------------------------- sharing between processes

_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@pytest.fixture
def hold(tmp_path):
    """Start a process that holds ``store`` read-write for ``seconds``; it is waited for at the end."""
    import subprocess
    import sys

    procs = []

    def start(store: Store, seconds: float) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(store.path), str(seconds)], stdout=subprocess.PIPE,
                             text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "held"
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.wait(timeout=60)


def test_a_reader_waits_for_a_writer_and_announces_it(store, hold, caplog):
    import time

    hold(store, 1.5)
    start = time.monotonic()
    with caplog.at_level("WARNING", logger="digitlab.store"):
        assert store.query("SELECT count(*) FROM digits").rows == [(500,)]
    assert time.monotonic() - start > 0.5
    assert any("store busy" in r.getMessage() and "waiting" in r.getMessage() for r in caplog.records)


def test_a_store_busy_past_the_timeout_is_one_clear_error(store, hold, monkeypatch):
    from digitlab.errors import StoreBusyError

    hold(store, 3)
    monkeypatch.setenv("DIGITLAB_STORE_TIMEOUT", "0.3")
    with pytest.raises(StoreBusyError, match=r"stayed busy \(held by process \d+\) for 0.3 s.*DIGITLAB_STORE_TIMEOUT"):
        store.tables()
    with pytest.raises(StoreBusyError):
        Store(store.path, timeout=0).load("digits")


def test_a_bad_timeout_is_a_user_error(monkeypatch, tmp_path):
    from digitlab.store import store_timeout

    monkeypatch.setenv("DIGITLAB_STORE_TIMEOUT", "soon")
    with pytest.raises(UserError, match="DIGITLAB_STORE_TIMEOUT must be a number of seconds"):
        store_timeout()
    with pytest.raises(UserError, match="timeout must be"):
        Store(tmp_path / "s.duckdb", timeout=-1)


def test_staged_rows_wait_out_a_busy_store_and_the_next_write_applies_them(store, hold, monkeypatch):
    import pyarrow as pa

    rows = pa.table({"x": pa.array([1, 2, 3])})
    schema = ["CREATE TABLE IF NOT EXISTS t (x INTEGER)"]
    holder = hold(store, 2)
    monkeypatch.setenv("DIGITLAB_STORE_TIMEOUT", "0.2")
    assert store.append({"t": rows}, schema) is False  # busy: kept beside the store
    assert len(store.pending()) == 1 and store.pending_rows("t").num_rows == 3
    holder.wait(timeout=60)
    monkeypatch.delenv("DIGITLAB_STORE_TIMEOUT")
    store.import_arrays("other", np.zeros((1, 28, 28), np.uint8), np.array([1]))  # any write applies them
    assert store.pending() == [] and store.query("SELECT sum(x) FROM t").rows == [(6,)]
    assert store.flush() is True and store.query("SELECT sum(x) FROM t").rows == [(6,)]  # never twice


def test_a_staged_write_that_cannot_apply_is_set_aside_and_blocks_nothing(store):
    import pyarrow as pa

    bad = store.stage({"nowhere": pa.table({"x": [1]})})  # no such table and no schema
    good = store.stage({"t": pa.table({"x": [5]})}, ["CREATE TABLE IF NOT EXISTS t (x INTEGER)"])
    assert store.flush(good) is True
    assert store.query("SELECT x FROM t").rows == [(5,)]
    assert not bad.path.exists() and (store.pending_dir / ".failed" / bad.key).is_dir()


def test_threads_of_one_process_share_a_store(store, mnist_test):
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    _, y = mnist_test

    def work(i: int) -> int:
        if i % 3 == 0:
            store.append({"t": pa.table({"x": [i]})}, ["CREATE TABLE IF NOT EXISTS t (x INTEGER)"])
            return -1
        if i % 3 == 1:
            return len(store.load("digits", where="label = 3")[1])
        return store.query("SELECT count(*) FROM digits").rows[0][0]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(work, range(30)))
    assert store.query("SELECT count(*) FROM t").rows == [(10,)]
    assert {r for r in results if r >= 0} == {int((y[:500] == 3).sum()), 500}
