"""Abuse and load of MLPaint's REST API (issue 13's targets): schemathesis, expensive clients, idle connections.

Starts ``digitlab serve`` on 127.0.0.1 (a free port) in a subprocess, over a
temporary home holding a nearest-centroid model and a small Dirichlet-process
mixture fitted on MNIST (so that ``/v1/complete`` is exercised too), and runs,
each bounded in time:

1. **schemathesis**: every operation, every check (response-schema conformance
   included), the examples, coverage and fuzzing phases, against the live
   server; ``benchmarks/schemathesis.toml`` holds the one documented exception.
   Target: 0 failures.
2. **abuse**: ``wrk`` sends plain predictions (an MNIST digit as 784 pixels) on
   2 connections while 4 clients send oversized strokes (240,000 one-point
   strokes, 1.9 MB), 4 send crafted progressive JPEGs (600 scans, 64 KB or less)
   and 16 send 4-megapixel TIFFs, for ``--seconds`` (20). Target: plain p99 <=
   50 ms. With ``--compare SRC`` the same load is sent to a server from another
   source tree (e.g. ``/work/main/src``), one after the other.
3. **idle**: 1,000 connections are opened and left silent or half-sent; the
   server must close every one within its deadlines (idle 5 s, headers 10 s)
   and answer other requests meanwhile.

Needs ``wrk`` (Debian: ``apt-get install wrk``) for the abuse part.

Run: python benchmarks/bench_abuse.py [--seconds 20] [--model default] [--compare /work/main/src] [--no-write]
CI:  python benchmarks/bench_abuse.py --only schemathesis --examples 10 --budget 180 --skip-without-mnist --no-write
     (exit 1 on any failure, or when schemathesis takes over 180 s)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from _report import table, write_section
from digitlab.data import load_mnist
from digitlab.errors import DataNotFoundError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"

LUA = r"""
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local e = summary.errors
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do parts[#parts + 1] = string.format('"%d": %d', k, v) end
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, table.concat(parts, ", ")))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _home(tmp: Path, data_dir: str | None) -> Path:
    """A home with a centroid model (3,000 MNIST images) and a mixture of 2s and 3s."""
    from digitlab.models import make_model
    from digitlab.models.card import ModelCard
    from digitlab.models.io import save_model

    x, y = load_mnist(data_dir, "train")
    x, y = x[:3000].reshape(3000, -1), y[:3000]
    home = tmp / "home"
    save_model(make_model("centroid").fit(x, y), home / "models" / "centroid",
               ModelCard(model="centroid", metrics={"test": {"accuracy": 0.8}}))
    pair = np.isin(y, (2, 3))
    save_model(make_model("dpmm", chains=1, iters=2, seed=0).fit(x[pair], y[pair]), home / "models" / "mixture")
    return home


def _start(home: Path, model: str, data_dir: str | None, src: Path, log: Path,
           extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if data_dir:
        env["DIGITLAB_DATA"] = data_dir
    cmd = [sys.executable, "-m", "digitlab", "serve", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
           "--model", model, "--home", str(home), "--log-level", "warning", *extra]
    with log.open("a") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    _stop(proc)
    raise SystemExit("the server did not answer in time")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


# --------------------------------------------------------------------------- schemathesis


def schemathesis_run(url: str, examples: int, seed: int, budget: float = 1800.0,
                     cwd: Path | None = None) -> dict[str, object]:
    """Run schemathesis against ``url``; its summary (failures, cases, seconds) and its failures (or output's tail).

    A run that takes longer than ``budget`` seconds is stopped and counts as failed. Schemathesis keeps a
    cache in its working folder: ``cwd`` (a temporary folder), never the repository.
    """
    st = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    cmd = [st, "--config-file", str(CONFIG), "run", url + "/openapi.json", "--max-examples", str(examples),
           "--seed", str(seed), "--phases", "examples,coverage,fuzzing", "--checks", "all", "--no-color"]
    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=budget, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        partial = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return {"exit": -1, "failures": -1, "cases": 0, "seconds": round(time.monotonic() - t0, 1),
                "operations": "?", "tail": f"{partial[-3000:]}\nschemathesis did not finish within {budget:g} s "
                                           "(--budget)", "command": _shown(cmd, url)}
    seconds = time.monotonic() - t0
    out = res.stdout + res.stderr
    cases = re.search(r"(\d+) generated", out)
    failures = re.search(r"(\d+) (?:unique )?failures?", out.split("SUMMARY")[-1]) if "SUMMARY" in out else None
    return {"exit": res.returncode, "failures": int(failures.group(1)) if failures else (0 if res.returncode == 0
                                                                                        else -1),
            "cases": int(cases.group(1)) if cases else 0, "seconds": round(seconds, 1),
            "operations": (re.search(r"Operations:\s+(\d+) selected", out) or [None, "?"])[1],
            "tail": out[out.find("FAILURES"):] if "FAILURES" in out else out[-3000:],
            "command": _shown(cmd, url)}


def _shown(cmd: list[str], url: str) -> str:
    """The schemathesis command as BENCHMARKS.md shows it: no port, paths from the repository."""
    return " ".join(["schemathesis", *cmd[1:]]).replace(url, "URL").replace(str(ROOT) + os.sep, "")


# --------------------------------------------------------------------------- abuse


def _abuse_bodies(tmp: Path, data_dir: str | None) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "tests" / "serve"))
    import base64

    x, _ = load_mnist(data_dir, "test")
    bodies: dict[str, object] = {"plain": {"pixels": x[0].reshape(-1).tolist()}}
    bodies["strokes"] = {"strokes": [[[1, 2]]] * 240_000, "width": 280, "height": 280}
    # a progressive JPEG whose last scan is repeated until it has 600 scans
    img = Image.new("L", (512, 512), 250)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
    end = data.rindex(b"\xff\xd9")
    jpeg = data[:end] + data[starts[-1]:end] * (600 - len(starts)) + data[end:]
    bodies["jpeg"] = {"image": base64.b64encode(jpeg).decode()}
    photo = Image.new("L", (2000, 2000), 255)  # 4 megapixels, a digit in it, LZW-compressed TIFF
    photo.paste(Image.fromarray(255 - x[0]).resize((600, 600)), (700, 700))
    buf = io.BytesIO()
    photo.save(buf, format="TIFF", compression="tiff_lzw")
    bodies["tiff"] = {"image": base64.b64encode(buf.getvalue()).decode()}
    out = {}
    for name, body in bodies.items():
        path = tmp / f"{name}.json"
        path.write_bytes(json.dumps(body, separators=(",", ":")).encode())
        out[name] = path
    return out


def _wrk(url: str, lua: Path, body: Path, conns: int, seconds: float) -> subprocess.Popen:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(lua), url + "/v1/predict"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "BENCH_BODY": str(body)})


def _result(proc: subprocess.Popen, seconds: float) -> dict[str, object]:
    out, _ = proc.communicate(timeout=seconds + 120)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        return {"requests": 0, "p50": float("nan"), "p99": float("nan"), "errors": -1, "statuses": {}}
    r = json.loads(line[6:])
    return {"requests": r["requests"], "rps": r["requests"] / (r["duration_us"] / 1e6), "p50": r["p50_us"] / 1000,
            "p99": r["p99_us"] / 1000, "max": r["max_us"] / 1000, "errors": r["errors"], "statuses": r["statuses"]}


def abuse_run(url: str, bodies: dict[str, Path], lua: Path, seconds: float) -> dict[str, dict[str, object]]:
    """Plain predictions alone for 5 s, then beside the three kinds of abusers for ``seconds``."""
    alone = _result(_wrk(url, lua, bodies["plain"], 2, 5), 5)
    procs = {"plain": _wrk(url, lua, bodies["plain"], 2, seconds),
             "oversized strokes": _wrk(url, lua, bodies["strokes"], 4, seconds),
             "crafted JPEG": _wrk(url, lua, bodies["jpeg"], 4, seconds),
             "4-megapixel TIFF": _wrk(url, lua, bodies["tiff"], 16, seconds)}
    results = {name: _result(p, seconds) for name, p in procs.items()}
    return {"plain alone": alone, **results}


# --------------------------------------------------------------------------- idle connections


def idle_run(url: str, port: int, n: int = 1000) -> dict[str, object]:
    """Open ``n`` connections (half silent, half with half-sent headers); time until the server closes them all."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        if i % 2:
            s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    opened = time.monotonic() - t0
    answered = 0
    answer_ms = []
    for _ in range(20):  # the server still answers while the connections are open
        a = time.monotonic()
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                answered += r.status == 200
        except OSError:
            pass
        answer_ms.append((time.monotonic() - a) * 1000)
        time.sleep(0.05)
    open_ = set(socks)
    closed_at = []
    deadline = time.monotonic() + 60
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(4096)  # type: ignore[union-attr]
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if not data:
                sel.unregister(s)
                s.close()  # type: ignore[union-attr]
                open_.discard(s)  # type: ignore[arg-type]
                closed_at.append(time.monotonic() - t0)
    for s in open_:
        s.close()
    return {"connections": n, "opened_s": round(opened, 2), "closed": len(closed_at),
            "last_closed_s": round(max(closed_at), 2) if closed_at else None, "answered": f"{answered}/20",
            "answer_p50_ms": round(float(np.median(answer_ms)), 1)}


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="centroid", help="Model of the plain predictions (centroid or default).")
    ap.add_argument("--data-dir", default=None, help="MNIST folder (default: $DIGITLAB_DATA).")
    ap.add_argument("--seconds", type=float, default=20.0, help="Duration of the abuse run.")
    ap.add_argument("--examples", type=int, default=30, help="schemathesis: most examples per operation.")
    ap.add_argument("--seed", type=int, default=0, help="schemathesis's seed.")
    ap.add_argument("--budget", type=float, default=1800.0,
                    help="schemathesis: most seconds for the run; a longer one is stopped and fails.")
    ap.add_argument("--skip-without-mnist", action="store_true",
                    help="Exit 0 with a note when MNIST is not found (CI on a machine without the data).")
    ap.add_argument("--only", choices=["schemathesis", "abuse", "idle"], default=None, help="Run one part only.")
    ap.add_argument("--compare", default=None, metavar="SRC",
                    help="Also send the abuse load to a server from the source tree SRC (e.g. /work/main/src).")
    ap.add_argument("--no-write", action="store_true", help="Print only; do not update BENCHMARKS.md.")
    args = ap.parse_args()
    parts = [args.only] if args.only else ["schemathesis", "abuse", "idle"]
    if "abuse" in parts and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    sections: list[str] = []
    failed = False
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        try:
            home = _home(tmp, args.data_dir)
        except DataNotFoundError as exc:
            if not args.skip_without_mnist:
                raise SystemExit(str(exc)) from None
            print(f"skipped: MNIST is needed for the models the server serves ({exc})")
            return
        log = tmp / "server.log"
        proc, url = _start(home, args.model, args.data_dir, ROOT / "src", log)
        try:
            if "schemathesis" in parts:
                st = schemathesis_run(url, args.examples, args.seed, args.budget, cwd=tmp)
                print(st["tail"], flush=True)
                failed |= st["failures"] != 0 or st["exit"] != 0
                sections.append(
                    f"**schemathesis** (`{st['command']}`, config `benchmarks/schemathesis.toml`): "
                    f"{st['operations']} operations, {st['cases']} cases in {st['seconds']} s, "
                    f"**{st['failures']} failures** (target 0).")
            if "abuse" in parts:
                lua = tmp / "post.lua"
                lua.write_text(LUA, encoding="utf-8")
                bodies = _abuse_bodies(tmp, args.data_dir)
                runs = {"this tree": abuse_run(url, bodies, lua, args.seconds)}
                if args.compare:
                    _stop(proc)
                    other, other_url = _start(home, args.model, args.data_dir, Path(args.compare).resolve(), log)
                    try:
                        runs[args.compare] = abuse_run(other_url, bodies, lua, args.seconds)
                    finally:
                        _stop(other)
                    proc, url = _start(home, args.model, args.data_dir, ROOT / "src", log)
                rows = []
                for tree, res in runs.items():
                    for client, r in res.items():
                        statuses = " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items()))
                        rows.append([tree, client, r["requests"], round(float(r["p50"]), 1),
                                     round(float(r["p99"]), 1), statuses, r["errors"]])
                        print(rows[-1], flush=True)
                plain = runs["this tree"]["plain"]
                met = float(plain["p99"]) <= 50 and plain["errors"] == 0
                sections.append(
                    f"**abuse** (model `{args.model}`; {args.seconds:g} s; `wrk` on the same 2 cores): plain "
                    "predictions (784 pixels) on 2 connections, beside 4 clients sending 240,000 one-point strokes "
                    "(1.9 MB), 4 "
                    "sending a 600-scan progressive JPEG and 16 sending a 4-megapixel TIFF. Statuses are the answers "
                    "each client got (413: refused from the raw bytes or the header; 503: the heavy lane's queue "
                    "full).\n\n"
                    + table(["server", "client", "requests", "p50 ms", "p99 ms", "statuses", "socket errors"], rows)
                    + f"\n\nTarget: plain p99 <= 50 ms: **{'met' if met else 'not met'}** "
                      f"({float(plain['p99']):.1f} ms).")
            if "idle" in parts:
                port = int(url.rsplit(":", 1)[1])
                idle = idle_run(url, port)
                print(idle, flush=True)
                met = idle["closed"] == idle["connections"] and (idle["last_closed_s"] or 99) <= 10 + 2
                sections.append(
                    f"**idle connections**: {idle['connections']} connections opened in {idle['opened_s']} s (half "
                    "silent, half with half-sent headers); the server closed "
                    f"{idle['closed']} of them, the last {idle['last_closed_s']} s after the first opened (deadlines: "
                    f"idle 5 s, headers 10 s), and answered {idle['answered']} `/healthz` requests meanwhile (p50 "
                    f"{idle['answer_p50_ms']} ms). Target (all closed within the deadlines, the server answering): "
                    f"**{'met' if met and idle['answered'] == '20/20' else 'not met'}**.")
        finally:
            _stop(proc)
    load_after = os.getloadavg()[0]
    niceness = os.nice(0)
    body = ("\n\n".join(sections) + f"\n\n1-minute load average {load_before:.1f} before, {load_after:.1f} after (the "
            "machine's 2 cores are shared with other work; figures vary from run to run)"
            + (f"; this run, the servers and `wrk` at niceness {niceness}, below the machine's other jobs, and with "
               "no room left under it for the heavy lane's lower priority (+10), so its latencies under load are an "
               "upper bound" if niceness > 0 else "") + ".")
    print(body)
    if not args.no_write:
        write_section("abuse", "MLPaint under abuse: schemathesis, expensive clients, idle connections", body)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
