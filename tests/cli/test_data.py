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
