"""Corrections survive a killed server, and the CLI's train and sql work beside a server taking corrections.

The server is ``digitlab serve`` in its own process (as a user runs it), on a free port of 127.0.0.1,
over a home of its own holding the small centroid model; each test stops (or kills) the server it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.timeout(300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def learn_home(tmp_path: Path, model_home: Path) -> Path:
    """A fresh home holding a copy of the centroid model (no store yet)."""
    home = tmp_path / "home"
    shutil.copytree(model_home / "models", home / "models")
    return home


def _env(home: Path, mnist_dir: Path, **more: str) -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "DIGITLAB_HOME": str(home), "DIGITLAB_DATA": str(mnist_dir), **more}


class Server:
    """``digitlab serve`` in a child process."""

    def __init__(self, home: Path, mnist_dir: Path, **env: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "digitlab", "serve", "--model", "centroid", "--port", str(self.port),
             "--no-browser"], env=_env(home, mnist_dir, **env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def server_factory(learn_home: Path, mnist_dir: Path) -> Iterator:
    started: list[Server] = []

    def start(**env: str) -> Server:
        started.append(Server(learn_home, mnist_dir, **env))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def _drawings(home: Path) -> list[dict]:
    """Every correction in the store, after applying what waits staged (as the next write would)."""
    from digitlab.store import Store

    store = Store(home / "digitlab.duckdb")
    assert store.flush()
    return store.query("SELECT id, profile, label, pixels FROM drawings ORDER BY id").records()


def _body(x: np.ndarray, label: int, profile: str | None = "killer") -> dict:
    body = {"pixels": x.reshape(-1).astype(int).tolist(), "label": int(label)}
    return {**body, "profile": profile} if profile else body


def test_a_correction_answered_201_survives_a_kill_right_after(server_factory, learn_home: Path,
                                                               mnist_test) -> None:
    x, y = mnist_test
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        ids = [client.post("/v1/corrections", json=_body(x[i], y[i])).json()["id"] for i in range(3)]
        r = client.post("/v1/corrections", json=_body(x[3], 7))
        assert r.status_code == 201
        server.proc.kill()  # SIGKILL, the moment the answer is in: no shutdown, no clean-up
    server.proc.wait(10)
    rows = {row["id"]: row for row in _drawings(learn_home)}
    assert set(ids) | {r.json()["id"]} <= set(rows)
    last = rows[r.json()["id"]]
    assert last["label"] == 7 and last["profile"] == "killer" and last["pixels"] == x[3].reshape(-1).tolist()


def test_a_correction_staged_while_the_store_is_busy_survives_a_kill(server_factory, learn_home: Path, mnist_dir,
                                                                     mnist_test) -> None:
    """Another process holds the store: the correction is answered 201 'staged', the server is killed, the row
    is applied by the next write."""
    x, _ = mnist_test
    server = server_factory(DIGITLAB_STORE_TIMEOUT="0.5")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/v1/corrections", json=_body(x[0], 1)).status_code == 201  # the table exists
        holder = subprocess.Popen(
            [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
                                   "print('held', flush=True); time.sleep(30)", str(learn_home / "digitlab.duckdb")],
            stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            r = client.post("/v1/corrections", json=_body(x[1], 4))
            assert r.status_code == 201 and r.json()["stored"] == "staged", r.text
            server.proc.kill()
        finally:
            holder.kill()
            holder.wait(10)
    server.proc.wait(10)
    rows = {row["id"]: row for row in _drawings(learn_home)}
    assert rows[r.json()["id"]]["label"] == 4


def test_cli_train_and_sql_work_beside_a_server_taking_corrections(server_factory, learn_home: Path, mnist_dir,
                                                                   mnist_test) -> None:
    x, y = mnist_test
    server = server_factory()
    answers: list[httpx.Response] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def correct() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            i = 0
            while not stop.is_set() or i < 30:
                try:
                    answers.append(client.post("/v1/corrections", json=_body(x[i], y[i], f"p{i % 3}")))
                except BaseException as exc:
                    errors.append(exc)
                    return
                i += 1

    worker = threading.Thread(target=correct)
    worker.start()
    env = _env(learn_home, mnist_dir)
    cli = [sys.executable, "-m", "digitlab"]
    try:
        while len(answers) < 5:
            time.sleep(0.1)
        runs = [  # all at once, beside the corrections
            [*cli, "train", "centroid", "--train-size", "500", "--name", "beside", "--format", "json"],
            [*cli, "train", "centroid", "--table", "drawings", "--name", "from-drawings", "--format", "json"],
            [*cli, "sql", "SELECT profile, count(*) FROM drawings GROUP BY ALL", "--format", "csv"],
        ]
        procs = [subprocess.Popen(a, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for a in runs]
        for args, proc in zip(runs, procs, strict=True):
            _, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, (args, err)
        out = subprocess.run([*cli, "sql", "SELECT count(*) AS n FROM runs", "--format", "json"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and '"n": 2' in out.stdout.replace('"n":2', '"n": 2'), (out.stdout, out.stderr)
    finally:
        stop.set()
        worker.join(240)
    assert not errors, errors
    assert answers and all(a.status_code == 201 for a in answers), [a.text for a in answers if a.status_code != 201]
    stored = {row["id"] for row in _drawings(learn_home)}
    assert {a.json()["id"] for a in answers} == stored  # nothing lost, nothing twice
    counts = httpx.get(server.url + "/v1/profiles/p0").json()["count"]
    assert counts == sum(1 for a in answers if a.json()["profile"] == "p0")
