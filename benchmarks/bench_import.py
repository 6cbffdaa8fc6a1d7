"""How long importing all of MNIST into the DuckDB store takes (issue: < 10 s on 2 cores).

Run: python benchmarks/bench_import.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _report import table, write_section
from digitlab.data import load_mnist, read_csv, write_csv
from digitlab.data.mnist import _load_cached
from digitlab.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    runs, csv_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            _load_cached.cache_clear()
            store = Store(Path(tmp) / "bench.duckdb")
            t = time.perf_counter()
            for split in ("train", "test"):  # read the .gz IDX files and create both tables
                store.import_arrays(f"mnist_{split}", *load_mnist(args.data_dir, split))
            runs.append(time.perf_counter() - t)
        x, y = load_mnist(args.data_dir, "test")
        write_csv(Path(tmp) / "t.csv", x, y)
        for _ in range(args.repeat):
            t = time.perf_counter()
            store.import_arrays("csv_test", *read_csv(Path(tmp) / "t.csv"))
            csv_runs.append(time.perf_counter() - t)
    rows = [["MNIST IDX .gz, train + test (70,000 images)", statistics.median(runs), min(runs)],
            ["CSV, 10,000 rows (label first)", statistics.median(csv_runs), min(csv_runs)]]
    body = table(["import", "median s", "best s"], rows) + "\n\nTarget: all of MNIST in under 10 s."
    write_section("import", "Importing MNIST into the store", body)
    print(body)


if __name__ == "__main__":
    main()
