"""``digitlab serve``: a clear failure without a model, and uvicorn started with the given options."""

from __future__ import annotations

from pathlib import Path

import pytest


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_without_the_model_fails_clearly(cli) -> None:
    result = cli("serve", "--model", "nosuchmodel", "--no-browser")
    assert result.exit_code == 2
    assert "cannot serve model 'nosuchmodel'" in result.stderr and "Traceback" not in result.stderr


def test_serve_runs_uvicorn_on_the_given_address(cli, home: Path, model_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    import uvicorn

    calls: dict = {}

    def run(server, sockets=None):  # type: ignore[no-untyped-def]
        calls.update(config=server.config, bound=[s.getsockname()[1] for s in sockets])
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setattr(webbrowser, "open", lambda url: calls.setdefault("browser", url))
    port = _free_port()
    result = cli("serve", "--model", "centroid", "--home", model_home, "--port", str(port), "--no-browser")
    assert result.exit_code == 0, result.stderr
    config = calls["config"]
    assert config.host == "127.0.0.1" and config.port == port and "browser" not in calls
    assert calls["bound"] == [port]  # bound by digitlab before the address was announced
    assert config.timeout_keep_alive == 5 and config.limit_concurrency == 2048  # the connection settings
    from digitlab.serve import state_of

    assert state_of(config.app).settings.default_model == "centroid"
    assert f"http://127.0.0.1:{port}/" in result.stderr


def test_serve_with_workers_hands_the_settings_to_worker_processes(cli, model_home: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:

    from uvicorn.supervisors import Multiprocess

    from digitlab.serve import SETTINGS_ENV, state_of
    from digitlab.serve.app import app_from_env

    calls: dict = {}
    monkeypatch.setattr(Multiprocess, "run", lambda self: calls.update(config=self.config))
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    result = cli("serve", "--model", "centroid", "--home", model_home, "--workers", "2", "--no-browser",
                 "--port", str(_free_port()))
    assert result.exit_code == 0, result.stderr
    config = calls["config"]
    assert config.app == "digitlab.serve.app:app_from_env" and config.factory and config.workers == 2
    app = app_from_env()  # what each worker process builds
    settings = state_of(app).settings
    assert settings.default_model == "centroid" and settings.models_dir == model_home / "models"


def test_serve_compares_the_models_named_and_all(cli, model_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--model A --model B``: A answers by default, both are compared; ``--all``: every saved model too."""
    import uvicorn

    from digitlab.serve import state_of

    calls: dict = {}

    def run(server, sockets=None):  # type: ignore[no-untyped-def]  # uvicorn's Server is what run() starts
        calls.update(app=server.config.app)
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    result = cli("serve", "--model", "centroid", "--model", "default", "--model", "centroid", "--home", model_home,
                 "--no-browser", "--port", str(_free_port()))
    assert result.exit_code == 0, result.stderr
    settings = state_of(calls["app"]).settings
    assert settings.default_model == "centroid" and settings.models == ("default",) and not settings.serve_all
    result = cli("serve", "--all", "--home", model_home, "--no-browser", "--port", str(_free_port()))
    assert result.exit_code == 0, result.stderr
    settings = state_of(calls["app"]).settings
    assert settings.default_model == "default" and settings.serve_all
