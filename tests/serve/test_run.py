"""``digitlab serve`` as a process (issue 13, medium 8 and low): deadlines on connections, one line per disconnect,
the request log, a port in use and a bad log level as one line and exit 2, IPv6 addresses in brackets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "digitlab", "serve", "--home", str(home), "--model", "centroid", "--no-browser",
            "--no-preload", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_urls_put_ipv6_addresses_in_brackets() -> None:
    from digitlab.serve import url_for

    assert url_for("::1", 8000) == "http://[::1]:8000/"
    assert url_for("::", 8000) == "http://[::1]:8000/"
    assert url_for("0.0.0.0", 80) == "http://127.0.0.1:80/"
    assert url_for("example.lan", 8000) == "http://example.lan:8000/"


def test_a_port_in_use_is_one_line_and_exit_2(model_home) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(_serve(model_home, "--port", str(port)), env=_env(), capture_output=True, text=True,
                           timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "port is in use" in lines[0] and "--port" in lines[0] and "MLPaint on" not in r.stderr


def test_an_unknown_log_level_is_one_line_and_exit_2(model_home) -> None:
    r = subprocess.run(_serve(model_home, "--log-level", "verbose"), env=_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "log level" in r.stderr


@pytest.fixture(scope="module")
def server(model_home, tmp_path_factory):  # type: ignore[no-untyped-def]
    """``digitlab serve`` with 1-second deadlines, its stderr in a file."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve-log") / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.Popen(_serve(model_home, "--port", str(port), "--idle-timeout", "1", "--header-timeout", "1",
                                       "--body-timeout", "1", "--log-level", "info"),
                                env=_env(), stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.2)
        yield port, url, log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (reads until EOF), at most ``limit``."""
    sock.settimeout(limit)
    t0 = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return float("inf")
    return time.monotonic() - t0


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: local",
                                  b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: 5000\r\n\r\n{\"pixels\": [0, 0, "],
                         ids=["silent", "half-sent-headers", "half-sent-body"])
def test_silent_and_half_sent_connections_are_closed_within_their_deadline(server, sent: bytes) -> None:
    port, url, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(sent)
        assert _closed_after(s, 5.0) < 3.0
    with urllib.request.urlopen(url + "/healthz", timeout=5) as r:  # the server still answers
        assert r.status == 200


def test_a_client_leaving_mid_body_logs_one_line_and_requests_are_logged(server) -> None:
    port, url, log = server
    time.sleep(1.5)  # what earlier tests' connections had the log say is written
    before = len(log.read_text())
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n" + b"{\"pixels\": [" + b"0, " * 5000)
    req = urllib.request.Request(url + "/v1/predict", data=b'{"pixels": [' + b"0, " * 783 + b'10]}',
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    time.sleep(0.5)
    text = log.read_text()[before:]
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text
    assert text.count("the client left before sending its whole request") == 1, text
    assert "POST /v1/predict 200 " in text and "model=centroid" in text


def test_two_workers_start_and_keep_the_deadlines(model_home) -> None:
    port = _free_port()
    proc = subprocess.Popen(_serve(model_home, "--port", str(port), "--workers", "2", "--header-timeout", "1"),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", port)) as s:  # the deadline reached the worker processes
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: local")
            assert _closed_after(s, 5.0) < 3.0
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "Traceback" not in err and "died" not in err, err
