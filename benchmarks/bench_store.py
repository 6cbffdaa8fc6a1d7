"""Concurrent CLI and server on one store: imports, trains, evaluates and reads; nothing may fail or be lost.

The CLI runs as real processes (``python -m digitlab ...``), so DuckDB's file locks are real; the server runs
in this process (``digitlab.serve.create_app`` under uvicorn on 127.0.0.1), answering ``/v1/models`` and
``/v1/predict``, beside a thread that writes to the store as the server's corrections will (``Store.append``,
a few rows every half second). At the end every run that ``train`` and ``evaluate`` printed must be in the
``runs`` table, every model that ``train`` saved must be there with its run, and every row the server
thread wrote must be in its table.

    python benchmarks/bench_store.py                 # 60 s, figures into BENCHMARKS.md
    python benchmarks/bench_store.py --seconds 20 --no-write
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_section

SRC = Path(__file__).resolve().parents[1] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tally:
    """Outcomes shared by the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: Counter[str] = Counter()
        self.failures: list[str] = []
        self.seconds: dict[str, list[float]] = defaultdict(list)
        self.runs: list[str] = []
        self.models: dict[str, str] = {}
        self.busy_waits = 0

    def add(self, op: str, seconds: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.count[op] += 1
            self.seconds[op].append(seconds)
            if not ok:
                self.failures.append(f"{op}: {detail[-300:]}")


def cli_worker(worker: int, stop: float, env: dict[str, str], csv: Path, tally: Tally) -> None:
    """Loop over import, train, evaluate, sql and runs until ``stop``."""
    ops = itertools.cycle(["import", "train", "sql", "evaluate", "runs"])
    n = 0
    while time.monotonic() < stop:
        op = next(ops)
        n += 1
        name = f"w{worker}m{n}"
        args = {
            "import": ["data", "import", str(csv), "--name", f"small{worker}", "--replace", "-f", "json"],
            "train": ["train", "centroid", "--train-size", "500", "--seed", str(n), "--name", name, "-f", "json"],
            "evaluate": ["evaluate", "base", "--dataset", "mnist_test", "--where", "id < 2000", "-f", "json"],
            "sql": ["sql", "SELECT label, count(*) AS n FROM mnist_train GROUP BY ALL", "-f", "json"],
            "runs": ["runs", "--limit", "5", "-f", "json"],
        }[op]
        start = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "digitlab", *args], env=env, capture_output=True, text=True,
                           timeout=600)
        seconds = time.perf_counter() - start
        tally.add(op, seconds, p.returncode == 0, f"exit {p.returncode}: {p.stderr.strip()}")
        with tally.lock:
            tally.busy_waits += p.stderr.count("store busy")
        if p.returncode == 0 and op in ("train", "evaluate"):
            doc = json.loads(p.stdout)
            with tally.lock:
                tally.runs.append(doc["run"])
                if op == "train":
                    tally.models[name] = doc["run"]


def server_writer(stop: float, store_path: Path, tally: Tally) -> int:
    """What the server's corrections will do: a few rows at a time, never blocking a request for long."""
    import pyarrow as pa

    from digitlab.store import Store

    store = Store(store_path)
    schema = ["CREATE TABLE IF NOT EXISTS bench_corrections (writer INTEGER, seq INTEGER, digit INTEGER)"]
    seq = 0
    while time.monotonic() < stop:
        start = time.perf_counter()
        try:
            store.append({"bench_corrections": pa.table({"writer": [0] * 3, "seq": [seq] * 3,
                                                         "digit": [seq % 10] * 3})}, schema)
            tally.add("server write", time.perf_counter() - start, True)
            seq += 1
        except Exception as exc:  # every failure counts
            tally.add("server write", time.perf_counter() - start, False, repr(exc))
        time.sleep(0.5)
    return seq


def server_client(stop: float, url: str, tally: Tally, pixels: list[int]) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=30) as client:
        for i in itertools.count():
            if time.monotonic() >= stop:
                return
            start = time.perf_counter()
            try:
                if i % 2:
                    r = client.get("/v1/models")
                else:
                    r = client.post("/v1/predict", json={"pixels": pixels, "model": "base"})
                ok, detail = r.status_code == 200, f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as exc:
                ok, detail = False, repr(exc)
            tally.add("server request", time.perf_counter() - start, ok, detail)
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2, help="CLI processes running at once")
    parser.add_argument("--no-write", action="store_true", help="print the figures, leave BENCHMARKS.md alone")
    args = parser.parse_args()

    import uvicorn

    from digitlab.data import load_mnist, write_csv
    from digitlab.data.select import import_dataset
    from digitlab.models.card import read_card
    from digitlab.serve import create_app, serve_settings
    from digitlab.settings import get_settings
    from digitlab.store import Store
    from digitlab.workflows import TrainSpec, train

    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    home = tmp / "home"
    data_dir = Path(os.environ.get("DIGITLAB_DATA", get_settings().data_dir))
    settings = get_settings(data_dir=data_dir, home=home)
    x, y = load_mnist(data_dir, "test")
    csv = tmp / "small.csv"
    write_csv(csv, x[:1000], y[:1000])
    import_dataset(settings, "mnist")
    train(TrainSpec(model="centroid", train_size=1000, name="base"), settings=settings)

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(serve_settings(data_dir=data_dir, home=home)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    while not server.started:
        time.sleep(0.05)

    env = {**os.environ, "PYTHONPATH": str(SRC), "DIGITLAB_HOME": str(home), "DIGITLAB_DATA": str(data_dir),
           "OMP_NUM_THREADS": "1"}
    env.pop("DIGITLAB_STORE_TIMEOUT", None)
    tally = Tally()
    start = time.monotonic()
    stop = start + args.seconds
    written: list[int] = []
    threads = [threading.Thread(target=cli_worker, args=(w, stop, env, csv, tally)) for w in range(args.workers)]
    threads.append(threading.Thread(target=lambda: written.append(server_writer(stop, settings.store_path, tally))))
    threads.append(threading.Thread(target=server_client, args=(stop, f"http://127.0.0.1:{port}", tally,
                                                                 x[0].reshape(-1).tolist())))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    server.should_exit = True
    serving.join(timeout=30)

    store = Store(settings.store_path)
    store.flush()
    recorded = {r[0] for r in store.query("SELECT run FROM runs").rows}
    lost_runs = [r for r in tally.runs if r not in recorded]
    lost_models = [m for m, run in tally.models.items()
                   if not (settings.models_dir / m / "card.json").is_file()
                   or read_card(settings.models_dir / m).run != run or run not in recorded]
    rows = store.query("SELECT count(*) FROM bench_corrections").rows[0][0]
    lost_rows = 3 * written[0] - rows
    failures = len(tally.failures)

    def p(op: str, q: float) -> float:
        values = sorted(tally.seconds[op])
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    ops = ["import", "train", "evaluate", "sql", "runs", "server write", "server request"]
    body = table(["operation", "done", "failed", "median s", "p95 s", "max s"],
                 [[op, tally.count[op], sum(f.startswith(op + ":") for f in tally.failures),
                   round(statistics.median(tally.seconds[op]), 3) if tally.seconds[op] else "-",
                   round(p(op, 0.95), 3), round(max(tally.seconds[op], default=float("nan")), 3)] for op in ops])
    verdict = table(["measure", "result", "target"], [
        ["failures (CLI exit != 0, server write errors, HTTP != 200)", failures, 0],
        ["lost runs (printed by train/evaluate, not in `runs`)", f"{len(lost_runs)} of {len(tally.runs)}", 0],
        ["lost models (saved by train without their run)", f"{len(lost_models)} of {len(tally.models)}", 0],
        ["lost server rows", f"{lost_rows} of {3 * written[0]}", 0],
        ["'store busy' waits announced by the CLI", tally.busy_waits, "-"],
    ])
    text = (f"{args.workers} CLI processes at a time loop over `data import` (a 1,000-row CSV, `--replace`), "
            "`train centroid --train-size 500`, `sql`, `evaluate` (2,000 test rows) and `runs` for "
            f"{elapsed:.0f} s, while an in-process server (uvicorn on 127.0.0.1) answers `/v1/models` and "
            "`/v1/predict` and a server thread appends 3 rows to the store every 0.5 s (as corrections will). "
            "Every process waits for the one that writes (DuckDB allows one writer process at a time). "
            "The machine's 2 cores were shared with other engineers' jobs, so the times are upper bounds.\n\n"
            f"{verdict}\n\n{body}\n")
    if tally.failures:
        text += "\nFailures:\n\n" + "\n".join(f"- `{f}`" for f in tally.failures[:10]) + "\n"
    print(text)
    if not args.no_write:
        write_section("store", "One store shared by the CLI and the server", text)
    ok = not (failures or lost_runs or lost_models or lost_rows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
