"""The server's operations (issue 17, item 3; issue 13, low): CORS, readiness, metrics, the request log, settings
from flags and the environment, offline docs, the Host check, and one log line for what used to be a traceback."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from fastapi.testclient import TestClient

from ._helpers import TEST_SETTINGS

PIXELS = [0.0] * 783 + [10.0]


def _app(settings, **changes):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from digitlab.serve import create_app

    return create_app(replace(settings, **changes))


# ---------------------------------------------------------------- CORS


def test_cors_preflight_and_answers_for_an_allowed_origin(settings) -> None:
    origin = "https://digits.example.org"
    with TestClient(_app(settings, cors_origins=(origin,))) as c:
        pre = c.options("/v1/predict", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "content-type"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == origin
        r = c.post("/v1/predict", json={"pixels": PIXELS}, headers={"Origin": origin})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
        other = c.options("/v1/predict", headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers


def test_no_cors_headers_unless_an_origin_is_set(client) -> None:
    r = client.post("/v1/predict", json={"pixels": PIXELS}, headers={"Origin": "https://a.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


# ---------------------------------------------------------------- readiness and metrics


def test_readyz_is_503_until_the_models_are_loaded_then_200(settings) -> None:
    app = _app(settings, preload=True)
    with TestClient(app) as c:
        deadline = time.monotonic() + 120
        first = c.get("/readyz")
        assert first.status_code in (200, 503) and first.json()["ready"] is (first.status_code == 200)
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["ready"] is True
        assert set(r.json()["loaded_models"]) >= {"centroid", "default"}  # every model, loaded and checked


def test_readyz_says_why_when_the_default_model_cannot_be_used(settings) -> None:
    with TestClient(_app(settings, default_model="nosuchmodel")) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and "nosuchmodel" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200  # alive, not ready


def test_metrics_count_requests_latency_errors_and_inference(client) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    client.post("/v1/predict", json={"pixels": PIXELS})
    client.post("/v1/predict", json={"pixels": "nope"})
    client.get("/no/such/path/12345")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(r.text) for s in fam.samples}

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("digitlab_http_requests_total", method="POST", route="/v1/predict", status="200") >= 1
    assert value("digitlab_http_requests_total", method="POST", route="/v1/predict", status="422") >= 1
    assert value("digitlab_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert value("digitlab_http_errors_total", status="422") >= 1
    assert value("digitlab_http_request_duration_seconds_count", method="POST", route="/v1/predict") >= 2
    assert value("digitlab_model_inference_seconds_count", model="centroid") >= 1
    assert not any("12345" in str(labels) for _, labels in samples)  # unknown paths do not become labels


# ---------------------------------------------------------------- the request log


def test_each_request_logs_one_line_with_method_path_status_ms_and_model(settings, caplog) -> None:
    with TestClient(_app(settings)) as c, caplog.at_level(logging.INFO, logger="digitlab.access"):
        c.post("/v1/predict", json={"pixels": PIXELS})
        c.get("/v1/samples", params={"digit": 11})
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "digitlab.access"]
    assert len(lines) == 2
    method, path, status, ms, unit, model = lines[0].split()
    assert (method, path, status, unit, model) == ("POST", "/v1/predict", "200", "ms", "model=centroid")
    assert float(ms) >= 0
    assert lines[1].startswith("GET /v1/samples?digit=11 422 ") or lines[1].startswith("GET /v1/samples 422 ")


def test_quiet_turns_the_request_log_off(settings, caplog) -> None:
    with TestClient(_app(settings, request_log=False)) as c, caplog.at_level(logging.INFO, logger="digitlab.access"):
        c.post("/v1/predict", json={"pixels": PIXELS})
    assert not [rec for rec in caplog.records if rec.name == "digitlab.access"]


# ---------------------------------------------------------------- settings: flags and environment


def test_every_limit_and_setting_is_read_from_the_environment(monkeypatch, tmp_path) -> None:
    from dataclasses import fields

    from digitlab.errors import UserError
    from digitlab.limits import Limits
    from digitlab.serve import serve_settings

    monkeypatch.setenv("DIGITLAB_MAX_BODY_BYTES", "12345")
    monkeypatch.setenv("DIGITLAB_MAX_JPEG_SCANS", "7")
    monkeypatch.setenv("DIGITLAB_REQUEST_TIMEOUT", "2.5")
    monkeypatch.setenv("DIGITLAB_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("DIGITLAB_REQUEST_LOG", "false")
    s = serve_settings(home=tmp_path)
    assert s.limits.max_body_bytes == 12345 and s.limits.max_jpeg_scans == 7 and s.request_timeout == 2.5
    assert s.cors_origins == ("https://a.example", "https://b.example") and s.request_log is False
    assert serve_settings(home=tmp_path, max_body_bytes=99).limits.max_body_bytes == 99  # an argument wins
    for f in fields(Limits):  # every limit has its variable
        monkeypatch.setenv(f"DIGITLAB_{f.name.upper()}", "not-a-number")
        with pytest.raises(UserError, match=f"DIGITLAB_{f.name.upper()}"):
            serve_settings(home=tmp_path)
        monkeypatch.delenv(f"DIGITLAB_{f.name.upper()}")


def test_a_limit_from_the_environment_is_what_the_server_enforces(monkeypatch, model_home, mnist_dir) -> None:
    from digitlab.serve import create_app, serve_settings

    monkeypatch.setenv("DIGITLAB_MAX_BODY_BYTES", "1000")
    with TestClient(create_app(serve_settings(data_dir=mnist_dir, home=model_home, default_model="centroid",
                                              **TEST_SETTINGS))) as c:
        r = c.post("/v1/predict", json={"pixels": PIXELS})
        assert r.status_code == 413 and "1000 bytes" in r.json()["detail"]


def test_serve_has_a_flag_for_every_limit_and_setting_and_passes_them(monkeypatch, model_home) -> None:
    from dataclasses import fields

    from typer.testing import CliRunner

    import digitlab.serve
    from digitlab.cli import app as cli
    from digitlab.limits import Limits
    from digitlab.serve import ServeSettings

    help_text = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for f in fields(Limits):
        assert f"--{f.name.replace('_', '-')}" in help_text, f.name
    flags = {"default_model": "--model", "cors_origins": "--cors-origin", "allowed_hosts": "--allowed-host",
             "request_log": "--quiet", "models": "--model", "serve_all": "--all"}  # --model A --model B: compared
    for f in fields(ServeSettings):  # every setting but the locations (--home, --data-dir) and a test-only one
        if f.name not in ("data_dir", "models_dir", "store_path", "limits", "freeze_gc"):
            assert flags.get(f.name, f"--{f.name.replace('_', '-')}") in help_text, f.name
    seen = {}
    monkeypatch.setattr(digitlab.serve, "run", lambda settings, **kw: seen.update(settings=settings, **kw))
    out = CliRunner().invoke(cli, ["serve", "--home", str(model_home), "--no-browser", "--max-strokes", "12",
                                   "--request-timeout", "3", "--cors-origin", "https://a.example", "--cors-origin",
                                   "https://b.example", "--quiet", "--no-preload", "--port", "8123",
                                   "--model", "centroid", "--model", "default"])
    assert out.exit_code == 0, out.output
    s = seen["settings"]
    assert s.default_model == "centroid" and s.models == ("default",)
    assert s.limits.max_strokes == 12 and s.request_timeout == 3.0 and s.request_log is False and not s.preload
    assert s.cors_origins == ("https://a.example", "https://b.example") and s.port == 8123


# ---------------------------------------------------------------- docs offline


def test_docs_load_swagger_ui_from_the_package_not_a_cdn(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # nothing from the internet
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"/static/swagger/{asset}" in page.text
        r = client.get(f"/static/swagger/{asset}")
        assert r.status_code == 200 and len(r.content) > 500
    assert client.get("/redoc").status_code == 404  # (ReDoc would load from a CDN)


# ---------------------------------------------------------------- the Host check (DNS rebinding)


@pytest.mark.parametrize(("bound", "allowed", "host", "ok"), [
    ("127.0.0.1", (), "localhost:8000", True),
    ("127.0.0.1", (), "127.0.0.1:8000", True),
    ("127.0.0.1", (), "[::1]:8000", True),
    ("127.0.0.1", (), "LOCALHOST", True),
    ("127.0.0.1", (), "evil.example:8000", False),
    ("127.0.0.1", (), "192.168.1.5:8000", False),
    ("0.0.0.0", (), "192.168.1.5:8000", True),  # listening on all interfaces: a phone uses the machine's address
    ("0.0.0.0", (), "evil.example", False),
    ("digits.lan", (), "digits.lan:8000", True),
    ("127.0.0.1", ("digits.example.org",), "digits.example.org", True),
    ("127.0.0.1", ("*",), "anything.example", True),
])
def test_the_host_header_must_name_this_server(settings, bound, allowed, host, ok) -> None:
    with TestClient(_app(settings, host=bound, allowed_hosts=allowed), base_url="http://localhost") as c:
        r = c.get("/healthz", headers={"host": host})
    assert r.status_code == (200 if ok else 400), r.text
    if not ok:
        assert "is not served here" in r.json()["detail"] and "--allowed-host" in r.json()["detail"]


# ---------------------------------------------------------------- one log line, never a traceback


def test_an_exception_no_handler_takes_is_500_and_never_escapes_the_app(settings, monkeypatch, caplog) -> None:
    from digitlab.serve import state_of

    app = _app(settings)
    sent = []

    async def main() -> None:
        async with app.router.lifespan_context(app):
            monkeypatch.setattr(state_of(app).registry, "entries", lambda: 1 / 0)
            scope = {"type": "http", "method": "GET", "path": "/v1/models", "raw_path": b"/v1/models",
                     "query_string": b"", "headers": [(b"host", b"localhost")], "app": app, "http_version": "1.1",
                     "scheme": "http", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5), "root_path": ""}

            async def receive():  # type: ignore[no-untyped-def]
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message):  # type: ignore[no-untyped-def]
                sent.append(message)

            await app(scope, receive, send)  # raises nothing: uvicorn would log a traceback for what escapes

    with caplog.at_level(logging.ERROR):
        asyncio.run(main())
    assert sent[0]["status"] == 500 and b"internal error: ZeroDivisionError" in sent[1]["body"]
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None


def test_a_client_that_leaves_mid_body_is_one_log_line(settings, caplog) -> None:
    app = _app(settings)
    messages = iter([{"type": "http.request", "body": b'{"pixels": [0, 0, ', "more_body": True},
                     {"type": "http.disconnect"}])

    async def main() -> None:
        async with app.router.lifespan_context(app):
            scope = {"type": "http", "method": "POST", "path": "/v1/predict", "raw_path": b"/v1/predict",
                     "query_string": b"", "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"),
                                                      (b"content-length", b"5000")],
                     "app": app, "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8000),
                     "client": ("127.0.0.1", 5), "root_path": ""}

            async def receive():  # type: ignore[no-untyped-def]
                return next(messages)

            async def send(message):  # type: ignore[no-untyped-def]
                pass

            await app(scope, receive, send)

    # caplog listens on the root logger; digitlab.serve.run (an earlier test's server) gives the server log a
    # handler, a level and no propagation of its own: undo that for this test, and put it back after
    serve_log = logging.getLogger("digitlab.serve")
    saved = (serve_log.handlers[:], serve_log.propagate, serve_log.level)
    serve_log.handlers[:], serve_log.propagate = [], True
    serve_log.setLevel(logging.NOTSET)
    try:
        with caplog.at_level(logging.DEBUG, logger="digitlab"):
            asyncio.run(main())
    finally:
        serve_log.handlers[:], serve_log.propagate = saved[0], saved[1]
        serve_log.setLevel(saved[2])
    said = [rec for rec in caplog.records if rec.name.startswith("digitlab") and "left" in rec.getMessage()]
    assert len(said) == 1 and said[0].exc_info is None and said[0].levelno == logging.INFO
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
