"""Load test of MLPaint's REST API: requests/s and p50/p99 latency of ``POST /v1/predict``.

Starts ``digitlab serve`` on 127.0.0.1 (a free port) in a subprocess, drives it
with ``wrk`` (Debian: ``apt-get install wrk``; a Lua script sends the POST
bodies) at 1, 8 and 32 concurrent connections, for pixels and image inputs,
with and without an explanation, then stops the server. Every run is bounded
in time (``--seconds``). Target on 2 cores at 32 clients without explain:
>= 500 requests/s, p99 <= 50 ms, zero errors.

Run: python benchmarks/bench_serve.py [--model default] [--workers 1,2] [--repeats 3] [--home DIR] [--seconds 5]

A/B against another source tree (one process each, loaded alternately, nothing written):
python benchmarks/bench_serve.py --compare ../main/src --clients 8,32 --repeats 4 --seconds 4
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

from _report import table, write_section
from digitlab.data import load_mnist

ROOT = Path(__file__).resolve().parents[1]

LUA = r"""
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/json"
local bad = 0
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"errors": %d, "status_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bodies(data_dir: str | None, tmp: Path) -> dict[str, Path]:
    """Request bodies: an MNIST test image as pixels, and drawn-canvas-sized (280x280) PNG."""
    x, _ = load_mnist(data_dir, "test")
    img = x[0]
    buf = io.BytesIO()
    Image.fromarray(255 - img).resize((280, 280), Image.Resampling.BILINEAR).save(buf, format="PNG")
    png = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    out = {}
    for name, body in {
        "pixels": {"pixels": img.reshape(-1).tolist()},
        "pixels + explain": {"pixels": img.reshape(-1).tolist(), "explain": True},
        "image (280x280 PNG)": {"image": png},
        "image (280x280 PNG) + explain": {"image": png, "explain": True},
    }.items():
        path = tmp / f"body{len(out)}.json"
        path.write_text(json.dumps(body), encoding="utf-8")
        out[name] = path
    return out


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.stderr.seek(0)
            raise SystemExit(f"the server exited with code {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not become healthy in time")


def _wrk(url: str, lua: Path, body: Path, conns: int, seconds: float) -> dict[str, float]:
    threads = min(conns, 2)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(lua),
           url + "/v1/predict"]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "BENCH_BODY": str(body)},
                         timeout=seconds + 60, check=True)
    line = next(line for line in res.stdout.splitlines() if line.startswith("BENCH "))
    r = json.loads(line[6:])
    return {"rps": r["requests"] / (r["duration_us"] / 1e6), "p50": r["p50_us"] / 1000, "p99": r["p99_us"] / 1000,
            "errors": r["errors"] + r["status_errors"], "requests": r["requests"]}


def _start(args: argparse.Namespace, workers: int, src: Path = ROOT / "src") -> tuple[subprocess.Popen, str]:
    """Start ``digitlab serve --workers N`` from the source tree ``src`` on a free port; wait until it answers."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "digitlab", "serve", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
           "--model", args.model, "--log-level", "error", "--workers", str(workers)]
    if args.home:
        cmd += ["--home", args.home]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    # stderr to a file: a pipe nobody reads would fill with the request log and stall the server
    err = tempfile.TemporaryFile()  # noqa: SIM115  (kept open as long as the server runs)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    proc.stderr = err  # type: ignore[assignment]  # (read by _wait_healthy when the server exits)
    try:
        _wait_healthy(url, proc)
    except BaseException:
        _stop(proc)
        raise
    return proc, url


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the process ``pid`` has used so far; 0 where /proc is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summary(runs: list[dict[str, float]]) -> list[object]:
    """requests/s, p50 and p99 (medians), worst p99, errors and requests of repeated runs."""
    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    return [round(median("rps")), round(median("p50"), 2), round(median("p99"), 2),
            round(max(r["p99"] for r in runs), 2), sum(r["errors"] for r in runs), sum(r["requests"] for r in runs)]


def _serve_and_load(args: argparse.Namespace, workers: int, bodies: dict[str, Path], lua: Path,
                    clients: list[int]) -> tuple[list[list[object]], dict[str, object]]:
    """Start ``digitlab serve --workers N``, run wrk for every body and client count, stop the server."""
    rows: list[list[object]] = []
    proc, url = _start(args, workers)
    try:
        with urllib.request.urlopen(url + "/v1/models", timeout=10) as r:
            info = next(m for m in json.load(r)["models"] if m["name"] == args.model)
        for name, body in bodies.items():
            _wrk(url, lua, body, 4, 1.0)  # warm-up
            for c in clients:
                runs = [_wrk(url, lua, body, c, args.seconds) for _ in range(args.repeats)]
                rows.append([workers, name, c, *_summary(runs)])
                print(rows[-1], flush=True)
    finally:
        _stop(proc)
    return rows, info


def _compare(args: argparse.Namespace, bodies: dict[str, Path], lua: Path, clients: list[int]) -> str:
    """This tree's server and ``args.compare``'s, one process each, loaded alternately run by run; a table."""
    other = Path(args.compare).resolve()
    servers = [("this tree", *_start(args, 1)), (str(other), *_start(args, 1, other))]
    rows: list[list[object]] = []
    try:
        for name, body in bodies.items():
            if "explain" in name:
                continue
            for _, _, url in servers:
                _wrk(url, lua, body, 4, 1.0)  # warm-up
            for c in clients:
                runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in servers}
                for i in range(args.repeats):  # alternate who goes first: the machine's load drifts
                    for label, proc, url in (servers if i % 2 == 0 else servers[::-1]):
                        cpu0 = _cpu_seconds(proc.pid)
                        run = _wrk(url, lua, body, c, args.seconds)
                        run["cpu_ms"] = (_cpu_seconds(proc.pid) - cpu0) * 1000 / max(run["requests"], 1)
                        runs[label].append(run)
                this, that = (_summary(runs[label]) for label, _, _ in servers)
                cpu_this, cpu_that = (statistics.median(r["cpu_ms"] for r in runs[label]) for label, _, _ in servers)
                rows.append([name, c, this[0], that[0], f"{this[0] / that[0]:.2f}", this[2], that[2],  # type: ignore[operator]
                             round(cpu_this, 3), round(cpu_that, 3), f"{cpu_this / cpu_that:.2f}",
                             this[4] + that[4]])  # type: ignore[operator]
                print(rows[-1], flush=True)
    finally:
        for _, proc, _ in servers:
            _stop(proc)
    return (f"One process each, this tree against `{other}`, model `{args.model}`, {args.repeats} alternating "
            f"runs of {args.seconds:g} s per row (medians).\n\n"
            + table(["input", "clients", "requests/s (this)", "requests/s (other)", "ratio", "p99 ms (this)",
                     "p99 ms (other)", "CPU ms/request (this)", "CPU ms/request (other)", "CPU ratio", "errors"], rows)
            + "\n\nCPU ms/request: the server process's CPU time (all its threads, from /proc) over the requests "
              "it answered: what a request costs, which a busy machine changes less than requests/s.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="Model to serve (default: the bundled CNN).")
    ap.add_argument("--home", default=None, help="DIGITLAB_HOME holding the model (default: environment).")
    ap.add_argument("--data-dir", default=None, help="MNIST folder (default: $DIGITLAB_DATA).")
    ap.add_argument("--workers", default="1,2",
                    help="Server processes (digitlab serve --workers), comma-separated: one server per value.")
    ap.add_argument("--seconds", type=float, default=5.0, help="Duration of each load run.")
    ap.add_argument("--repeats", type=int, default=3,
                    help="Load runs per row: the table gives medians and the worst p99.")
    ap.add_argument("--clients", default="1,8,32", help="Concurrent connections, comma-separated.")
    ap.add_argument("--no-write", action="store_true", help="Print only; do not update BENCHMARKS.md.")
    ap.add_argument("--compare", default=None, metavar="SRC",
                    help="An A/B: also serve from the source tree SRC (e.g. another worktree's src) and load both "
                         "servers alternately, one process each, without explanations; prints a table and does not "
                         "update BENCHMARKS.md.")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    clients = [int(c) for c in args.clients.split(",")]
    if args.compare:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            lua = tmp / "post.lua"
            lua.write_text(LUA, encoding="utf-8")
            print(_compare(args, _bodies(args.data_dir, tmp), lua, clients))
        return
    workers = [int(w) for w in args.workers.split(",")]
    rows: list[list[object]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        bodies = _bodies(args.data_dir, tmp)
        lua = tmp / "post.lua"
        lua.write_text(LUA, encoding="utf-8")
        for w in workers:
            more, info = _serve_and_load(args, w, bodies, lua, clients)
            rows += more
    load_after = os.getloadavg()[0]
    acc = info.get("test_accuracy")
    model_desc = (f"model `{args.model}` ({info.get('model_type')}, family {info.get('family')}"
                  + (f", test accuracy {acc:.4f}" if isinstance(acc, float) else "") + ")")
    verdicts = []
    for w in workers:
        target = [r for r in rows if r[0] == w and r[2] == 32 and "explain" not in str(r[1])]
        met = all(r[3] >= 500 and r[6] <= 50 and r[7] == 0 for r in target)  # type: ignore[operator]
        median_met = all(r[3] >= 500 and r[5] <= 50 and r[7] == 0 for r in target)  # type: ignore[operator]
        verdicts.append(f"`--workers {w}`: " + ("**met** in every run" if met else
                                                 "met in the median run, **not** in every run" if median_met
                                                 else "**not met**"))
    body = (f"`digitlab serve --workers N` (N uvicorn processes, micro-batched "
            f"inference) with {model_desc}, loaded by `wrk` on the same machine, {args.repeats} runs of "
            f"{args.seconds:g} s per row (medians; p99 also at its worst run). "
            "Inputs: one MNIST test image as 784 pixels, and the same digit drawn on a 280x280 canvas as a PNG "
            "data: URL (decoded and normalised per request). 1-minute load average "
            f"{load_before:.1f} before the runs, {load_after:.1f} after (2 cores; `wrk` shares them with the "
            "server).\n\n"
            + table(["workers", "input", "clients", "requests/s", "p50 ms", "p99 ms", "worst p99 ms", "errors",
                     "requests"], rows)
            + "\n\nTarget at 32 clients without explain: >= 500 requests/s, p99 <= 50 ms, zero errors: "
            + "; ".join(verdicts) + ".")
    if not args.no_write:
        write_section("serve", "MLPaint REST API under load", body)
    print(body)


if __name__ == "__main__":
    main()
