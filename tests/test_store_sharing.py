"""One store shared by many processes: nothing computed is lost, nothing fails with exit 1, and nothing is half done.

A helper process holds the store read-write (as ``data import`` or a notebook does) while the CLI and the
workflows read, train and evaluate; the CLI runs in subprocesses, so the file locks are real.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from digitlab.models.card import read_card
from digitlab.models.io import model_path
from digitlab.runs import get_run, list_runs
from digitlab.settings import Settings, get_settings
from digitlab.store import Store
from digitlab.workflows import EvaluateSpec, TrainSpec, evaluate_saved, train

_SRC = str(Path(__file__).resolve().parents[1] / "src")
_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS held (x INTEGER)")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""

_HOLD_UNTIL_TOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
con.close()
"""


def _env(home: Path, mnist_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": _SRC, "DIGITLAB_HOME": str(home), "DIGITLAB_DATA": str(mnist_dir),
           "COLUMNS": "200", **extra}
    env.pop("DIGITLAB_STORE_TIMEOUT", None)
    env.update(extra)
    return env


def _hold(store_path: Path, seconds: float) -> subprocess.Popen[str]:
    """A process holding the store read-write for ``seconds``, started once it holds it."""
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(store_path), str(seconds)], stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


@pytest.fixture
def settings(home: Path, mnist_dir: Path) -> Settings:
    return get_settings(data_dir=mnist_dir, home=home)


def test_cli_commands_wait_for_a_writer_and_all_succeed(settings: Settings, home: Path, mnist_dir: Path,
                                                        tmp_path: Path) -> None:
    from digitlab.data import load_mnist, write_csv
    from digitlab.data.select import import_dataset

    x, y = load_mnist(mnist_dir, "test")
    write_csv(tmp_path / "d.csv", x[:200], y[:200])
    import_dataset(settings, tmp_path / "d.csv", "small")
    base = train(TrainSpec(model="centroid", train_size=300, name="base"), settings=settings)

    holder = subprocess.Popen([sys.executable, "-c", _HOLD_UNTIL_TOLD, str(settings.store_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    env = _env(home, mnist_dir)
    commands = {
        "import": ["data", "import", str(tmp_path / "d.csv"), "--name", "small", "--replace", "-f", "json"],
        "train": ["train", "centroid", "--train-size", "300", "--name", "m1", "-f", "json"],
        "evaluate": ["evaluate", "base", "--dataset", "small", "-f", "json"],
        "sql": ["sql", "SELECT count(*) AS n FROM small", "-f", "json"],
        "runs": ["runs", "-f", "json"],
    }
    procs = {k: subprocess.Popen([sys.executable, "-m", "digitlab", *args], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for k, args in commands.items()}
    errs: dict[str, list[str]] = {k: [] for k in procs}
    readers = [threading.Thread(target=lambda k=k, p=p: errs[k].extend(p.stderr), daemon=True)
               for k, p in procs.items()]
    for t in readers:
        t.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(any("store busy" in ln for ln in e) for e in errs.values()):
        time.sleep(0.1)  # every command is waiting for the writer: now let it go
    holder.communicate("release\n", timeout=60)
    out = {k: p.stdout.read() for k, p in procs.items()}  # type: ignore[union-attr]
    for p in procs.values():
        p.wait(timeout=300)
    for t in readers:
        t.join(timeout=60)
    for k, p in procs.items():
        assert p.returncode == 0, (k, out[k], errs[k])
        assert any("store busy" in ln and "waiting" in ln for ln in errs[k]), (k, errs[k])
    assert json.loads(out["sql"])["rows"] == [{"n": 200}]
    trained, evaluated = json.loads(out["train"]), json.loads(out["evaluate"])
    store = Store(settings.store_path)
    store.flush()
    recorded = {r.run for r in list_runs(store)}
    assert {base.run, trained["run"], evaluated["run"]} <= recorded
    assert read_card(model_path("m1", settings.models_dir)).run == trained["run"]
    assert store.query("SELECT count(*) FROM predictions WHERE run = ?", [evaluated["run"]]).rows == [(200,)]


def test_train_never_leaves_a_model_without_its_run(settings: Settings, mnist_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITLAB_STORE_TIMEOUT", "0.5")
    held: list[subprocess.Popen[str]] = []

    def progress(key: str, done: float, total: float | None = None, **info: object) -> None:
        if not held:  # the store gets busy while the model trains, and stays busy past the timeout
            held.append(_hold(settings.store_path, 4.0))

    result = train(TrainSpec(model="centroid", train_size=300, name="m"), settings=settings, progress=progress)
    store = Store(settings.store_path)
    assert result.run is not None and read_card(model_path("m", settings.models_dir)).run == result.run
    assert len(store.pending()) == 1  # the run waits beside the store: staged before the model was saved
    held[0].wait(timeout=60)
    monkeypatch.delenv("DIGITLAB_STORE_TIMEOUT")
    assert get_run(store, result.run).model_name == "m"  # listed while staged
    evaluate_saved(EvaluateSpec(name="m", where="id < 100"), settings=settings)  # the next write records it
    assert store.pending() == []
    assert store.query("SELECT model_name FROM runs WHERE run = ?", [result.run]).rows == [("m",)]
    assert store.query("SELECT count(*) FROM predictions WHERE run = ?", [result.run]).rows == [(10000,)]


def test_evaluate_keeps_its_results_when_the_store_stays_busy(settings: Settings, mnist_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    train(TrainSpec(model="centroid", train_size=300, name="m"), settings=settings)
    monkeypatch.setenv("DIGITLAB_STORE_TIMEOUT", "0.5")
    held: list[subprocess.Popen[str]] = []

    def progress(key: str, done: float, total: float | None = None, **info: object) -> None:
        if not held:
            held.append(_hold(settings.store_path, 3.0))

    result = evaluate_saved(EvaluateSpec(name="m"), settings=settings, progress=progress)
    assert result.run is not None and result.evaluation.metrics["n"] == 10000
    held[0].wait(timeout=60)
    store = Store(settings.store_path)
    assert [w.key for w in store.pending()] and get_run(store, result.run).kind == "evaluate"
    monkeypatch.delenv("DIGITLAB_STORE_TIMEOUT")
    assert store.flush() is True
    assert store.query("SELECT count(*) FROM predictions WHERE run = ?", [result.run]).rows == [(10000,)]


def test_a_process_whose_run_must_wait_exits_0_and_says_where_it_waits(settings: Settings, home: Path,
                                                                       mnist_dir: Path) -> None:
    train(TrainSpec(model="centroid", train_size=300, name="m"), settings=settings)
    env = _env(home, mnist_dir, DIGITLAB_STORE_TIMEOUT="1")
    # the store is busy for longer than the timeout from the moment evaluate would record its run
    proc = subprocess.Popen([sys.executable, "-c", f"""
import subprocess, sys, time
from digitlab.workflows import EvaluateSpec, evaluate_saved
from digitlab.settings import get_settings
held = []
def progress(*a, **k):
    if not held:
        held.append(subprocess.Popen([sys.executable, "-c", {_HOLDER!r}, sys.argv[1], "4"], stdout=subprocess.PIPE))
        held[0].stdout.readline()
r = evaluate_saved(EvaluateSpec(name="m"), settings=get_settings(), progress=progress)
print(r.run, flush=True)
held[0].wait()
""", str(settings.store_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "store busy" in stderr and "the next write to the store records it" in stderr
    run = stdout.strip()
    assert get_run(Store(settings.store_path), run).kind == "evaluate"


# ----------------------------------------------------------------------------- refused before any work


def test_a_300_character_name_fails_before_training(cli, home: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITLAB_DATA", str(tmp_path / "no-mnist-here"))  # reading data would fail otherwise
    start = time.monotonic()
    r = cli("train", "centroid", "--name", "a" * 300)
    assert r.exit_code == 2 and "a model name must be 1-64" in r.stderr, r.output
    assert time.monotonic() - start < 10 and not (home / "models").exists()
    r = cli("train", "centroid", "--name", "../evil", "--dry-run")
    assert r.exit_code == 2 and "a model name" in r.stderr


def test_a_models_folder_that_cannot_be_written_fails_before_training(cli, home: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITLAB_DATA", str(tmp_path / "no-mnist-here"))
    home.mkdir(parents=True)
    (home / "models").write_text("a file where the folder should be")
    r = cli("train", "centroid", "--name", "m")
    assert r.exit_code == 2 and "models folder" in r.stderr and "not writable" in r.stderr, r.output


def test_a_read_only_models_folder_fails_before_training(home: Path, tmp_path: Path, mnist_dir: Path) -> None:
    (home / "models").mkdir(parents=True)
    (home / "models").chmod(0o555)
    cmd = [sys.executable, "-m", "digitlab", "train", "centroid", "--name", "m"]
    if os.geteuid() == 0:  # root writes anywhere: drop that power for the child, as a plain user has none
        if shutil.which("setpriv") is None:
            pytest.fail("setpriv (util-linux) is needed to test a read-only folder as root")
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all", *cmd]
    try:
        p = subprocess.run(cmd, env=_env(home, tmp_path / "no-mnist-here"), capture_output=True, text=True,
                           timeout=120)
    finally:
        (home / "models").chmod(0o755)
    assert p.returncode == 2, p.stderr
    assert "models folder" in p.stderr and "not writable" in p.stderr and "Traceback" not in p.stderr


# ----------------------------------------------------------------------------- leftovers of a failed replace


def test_a_leftover_old_folder_never_blocks_a_name(settings: Settings) -> None:
    """A save into a folder that exists (``--out``, or a model folder of the flat layout) replaces it whole."""
    from digitlab.models.io import list_models, load_model

    models = settings.models_dir
    out = models / "m"

    def save(n: int) -> Path | None:
        return train(TrainSpec(model="centroid", train_size=n, name="m", out=out, record=False),
                     settings=settings).path

    first = save(200)
    (models / ".m.old").write_text("left by a crash, and not even a folder")  # blocked the old replace forever
    (models / ".m.old.x1").mkdir()
    (models / ".m.old.x1" / "junk").write_text("x")
    second = save(300)
    assert read_card(out).train.n == 300 and second == first
    assert not (models / ".m.old.x1").exists()
    # a crash between moving the model aside and renaming the new one in: the old copy still serves the name
    os.replace(out, models / ".m.old.crash")
    assert model_path("m", models) == models / ".m.old.crash"
    assert load_model(model_path("m", models)).card.train.n == 300
    assert "m" in [e.name for e in list_models(models)]
    save(250)
    assert read_card(out).train.n == 250
    assert not [p for p in models.iterdir() if p.name.startswith(".m.old") and p.is_dir()]


def test_sql_past_its_timeout_is_one_line_and_exit_2(cli, home: Path, settings: Settings) -> None:
    Store(settings.store_path).query("CREATE TABLE t AS SELECT 1 AS x", write=True)
    holder = _hold(settings.store_path, 3.0)
    try:
        r = cli("sql", "SELECT * FROM t", "--timeout", "0.2")
    finally:
        holder.wait(timeout=60)
    assert r.exit_code == 2, r.output
    assert "stayed busy" in r.stderr and "DIGITLAB_STORE_TIMEOUT" in r.stderr and "Traceback" not in r.stderr
    assert cli("sql", "SELECT * FROM t", "-f", "json").exit_code == 0
