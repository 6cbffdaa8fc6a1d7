import json

import numpy as np

from digitlab.data import write_csv

TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_info_counts(cli):
    r = cli("data", "info", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["splits"]["train"]["per_label"] == TRAIN
    assert doc["splits"]["test"]["per_label"] == TEST


def test_info_without_mnist_exits_2_with_one_line(cli, tmp_path):
    r = cli("data", "info", "--data-dir", tmp_path)
    assert r.exit_code == 2
    assert "MNIST not found" in r.stderr and "Traceback" not in r.output + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_import_mnist_then_sql_counts_as_csv(cli):
    assert cli("data", "import", "mnist").exit_code == 0
    r = cli("sql", "SELECT label, count(*) AS n FROM mnist_train GROUP BY label ORDER BY label", "--format", "csv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "label,n"
    assert [int(line.split(",")[1]) for line in lines[1:]] == TRAIN


def test_sql_json_is_one_document(cli):
    cli("data", "import", "mnist")
    r = cli("sql", "SELECT count(*) AS n, avg(len(list_filter(pixels::UTINYINT[], lambda p: p > 0))) AS ink "
            "FROM mnist_test", "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["rows"][0]["n"] == 10000 and 100 < doc["rows"][0]["ink"] < 200


def test_sql_error_exits_2(cli):
    cli("data", "import", "mnist")
    r = cli("sql", "SELECT * FROM nowhere")
    assert r.exit_code == 2 and "SQL error" in r.stderr and "Traceback" not in r.stderr


def test_import_file_under_a_name(cli, tmp_path, mnist_test):
    write_csv(tmp_path / "d.csv", mnist_test[0][:20], mnist_test[1][:20], label="last", header=True)
    r = cli("data", "import", tmp_path / "d.csv", "--name", "mine", "--format", "csv", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tables"] == {"mine": 20}


def test_malformed_import_exits_2_and_keeps_the_old_table(cli, tmp_path, mnist_test):
    write_csv(tmp_path / "good.csv", mnist_test[0][:20], mnist_test[1][:20])
    assert cli("data", "import", tmp_path / "good.csv", "--name", "mine").exit_code == 0
    (tmp_path / "bad.csv").write_text(",".join(["3"] + ["0"] * 784) + "\n" + "1,2,3\n")
    r = cli("data", "import", tmp_path / "bad.csv", "--name", "mine")
    assert r.exit_code == 2
    assert "bad.csv, record 1: ragged row" in r.stderr and "Traceback" not in r.stderr
    assert json.loads(cli("sql", "SELECT count(*) AS n FROM mine", "-f", "json").stdout)["rows"][0]["n"] == 20


def test_explore_writes_figures_and_counts_kept_pixels(cli, tmp_path):
    r = cli("data", "explore", "--out", tmp_path / "fig", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["kept_pixels"] == 522
    for path in doc["figures"].values():
        with open(path, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_fetch_from_local_folder(cli, tmp_path, mnist_dir):
    r = cli("data", "fetch", "--data-dir", tmp_path / "d", "--from", mnist_dir, "--format", "json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["files"]) == 4


def test_unknown_format_option_is_a_usage_error(cli, tmp_path):
    r = cli("data", "import", tmp_path, "--name", "x", "--format", "xml")
    assert r.exit_code == 2


def test_images_variance_mask_in_library(mnist_train):
    from digitlab.explore import variance_mask
    assert int(variance_mask(mnist_train[0]).sum()) == 522
    assert variance_mask(np.zeros((3, 28, 28))).sum() == 0


def test_import_of_a_csv_with_one_bad_label_exits_2_naming_the_record(cli, tmp_path, mnist_test):
    labels = mnist_test[1][:50].copy()
    labels[9] = 10
    write_csv(tmp_path / "bad.csv", mnist_test[0][:50], labels)
    r = cli("data", "import", tmp_path / "bad.csv", "--name", "t")
    assert r.exit_code == 2, r.output
    assert "bad.csv, record 9: label must be 0-9, got 10" in r.stderr and "Traceback" not in r.stderr
    assert cli("sql", "SELECT count(*) FROM t").exit_code == 2  # nothing was imported


def test_import_of_an_ambiguous_csv_asks_for_label(cli, tmp_path, mnist_test):
    x, y = mnist_test[0][:30].copy(), mnist_test[1][:30]
    x[:, 27, 27] = (y + 1) % 10
    write_csv(tmp_path / "amb.csv", x, y)
    r = cli("data", "import", tmp_path / "amb.csv", "--name", "t")
    assert r.exit_code == 2 and "--label first or --label last" in r.stderr
    r = cli("data", "import", tmp_path / "amb.csv", "--name", "t", "--label", "first", "-f", "json")
    assert r.exit_code == 0, r.output
    got = json.loads(cli("sql", "SELECT label FROM t ORDER BY id", "-f", "json").stdout)["rows"]
    assert [row["label"] for row in got] == y.tolist()


def test_import_refuses_to_replace_a_table_without_replace(cli, tmp_path, mnist_test):
    write_csv(tmp_path / "a.csv", mnist_test[0][:20], mnist_test[1][:20])
    write_csv(tmp_path / "b.csv", mnist_test[0][:5], mnist_test[1][:5])
    assert cli("data", "import", tmp_path / "a.csv", "--name", "mine").exit_code == 0
    r = cli("data", "import", tmp_path / "b.csv", "--name", "mine")
    assert r.exit_code == 2 and "already has a table 'mine'; pass --replace" in r.stderr
    assert json.loads(cli("sql", "SELECT count(*) AS n FROM mine", "-f", "json").stdout)["rows"][0]["n"] == 20
    assert cli("data", "import", tmp_path / "b.csv", "--name", "mine", "--replace").exit_code == 0
    assert json.loads(cli("sql", "SELECT count(*) AS n FROM mine", "-f", "json").stdout)["rows"][0]["n"] == 5


def test_import_gzipped_csv_and_hugging_face_parquet(cli, tmp_path, mnist_test):
    import gzip

    from digitlab.data import write_parquet

    x, y = mnist_test[0][:25], mnist_test[1][:25]
    write_csv(tmp_path / "digits_data.csv", x, y, label="last", header=True)
    (tmp_path / "digits_data.csv.gz").write_bytes(gzip.compress((tmp_path / "digits_data.csv").read_bytes()))
    r = cli("data", "import", tmp_path / "digits_data.csv.gz", "--name", "mldb", "-f", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tables"] == {"mldb": 25}
    write_parquet(tmp_path / "hf.bin", x, y)  # a name that says nothing: --format parquet
    r = cli("data", "import", tmp_path / "hf.bin", "--name", "hf", "--format", "parquet", "-f", "json")
    assert r.exit_code == 0, r.output
    same = cli("sql", "SELECT count(*) AS n FROM hf JOIN mldb USING (id) WHERE hf.pixels = mldb.pixels "
                      "AND hf.label = mldb.label", "-f", "json")
    assert json.loads(same.stdout)["rows"][0]["n"] == 25


def test_bad_data_files_exit_2(cli, tmp_path):
    import struct

    from PIL import Image

    (tmp_path / "huge-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x04" + struct.pack(">4I", *[0xFFFFFFFF] * 4))
    (tmp_path / "huge-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x01")
    np.savez(tmp_path / "s.npz", x=np.zeros((2, 28, 28), np.uint8), y=np.array(["a", "b"]))
    (tmp_path / "imgs" / "4").mkdir(parents=True)
    Image.new("RGB", (28, 28)).convert("LAB").save(tmp_path / "imgs" / "4" / "x.tif")
    for path in ("huge-images-idx3-ubyte", "s.npz", "imgs"):
        r = cli("data", "import", tmp_path / path, "--name", "t")
        assert r.exit_code == 2, (path, r.output)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_sql_is_read_only_unless_write(cli):
    assert cli("data", "import", "mnist").exit_code == 0
    r = cli("sql", "SELECT 1; DROP TABLE mnist_test")
    assert r.exit_code == 2 and "read-only" in r.stderr and "--write" in r.stderr
    assert json.loads(cli("sql", "SELECT count(*) AS n FROM mnist_test", "-f", "json").stdout)["rows"][0]["n"] == 10000
    r = cli("sql", "CREATE TABLE notes AS SELECT 1 AS x", "--write")
    assert r.exit_code == 0, r.output
    assert cli("sql", "INSTALL httpfs").exit_code == 2


def test_where_with_a_file_function_exits_2(cli):
    r = cli("train", "centroid", "--where", "id IN (SELECT * FROM read_csv('/etc/passwd'))", "--dry-run")
    assert r.exit_code == 2 and "table function read_csv()" in r.stderr
    r = cli("train", "centroid", "--where", "label = 1; DROP TABLE x", "--dry-run")
    assert r.exit_code == 2 and "without ';'" in r.stderr
