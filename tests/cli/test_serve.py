"""``digitlab serve``: a clear failure without a model, and uvicorn started with the given options."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_serve_without_the_model_fails_clearly(cli) -> None:
    result = cli("serve", "--model", "nosuchmodel", "--no-browser")
    assert result.exit_code == 2
    assert "cannot serve model 'nosuchmodel'" in result.stderr and "Traceback" not in result.stderr


def test_serve_runs_uvicorn_on_the_given_address(cli, home: Path, model_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    import uvicorn

    calls: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    monkeypatch.setattr(webbrowser, "open", lambda url: calls.setdefault("browser", url))
    result = cli("serve", "--model", "centroid", "--home", model_home, "--port", "8123", "--no-browser")
    assert result.exit_code == 0, result.stderr
    assert calls["host"] == "127.0.0.1" and calls["port"] == 8123 and "browser" not in calls
    from digitlab.serve import state_of

    assert state_of(calls["app"]).settings.default_model == "centroid"
    assert "http://127.0.0.1:8123/" in result.stderr


def test_serve_with_workers_hands_the_settings_to_worker_processes(cli, model_home: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from digitlab.serve import SETTINGS_ENV, state_of
    from digitlab.serve.app import app_from_env

    calls: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    result = cli("serve", "--model", "centroid", "--home", model_home, "--workers", "2", "--no-browser")
    assert result.exit_code == 0, result.stderr
    assert calls["app"] == "digitlab.serve.app:app_from_env" and calls["factory"] and calls["workers"] == 2
    app = app_from_env()  # what each worker process builds
    settings = state_of(app).settings
    assert settings.default_model == "centroid" and settings.models_dir == model_home / "models"


def test_serve_compares_the_models_named_and_all(cli, model_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--model A --model B``: A answers by default, both are compared; ``--all``: every saved model too."""
    import uvicorn

    from digitlab.serve import state_of

    calls: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    result = cli("serve", "--model", "centroid", "--model", "default", "--model", "centroid", "--home", model_home,
                 "--no-browser")
    assert result.exit_code == 0, result.stderr
    settings = state_of(calls["app"]).settings
    assert settings.default_model == "centroid" and settings.models == ("default",) and not settings.serve_all
    result = cli("serve", "--all", "--home", model_home, "--no-browser")
    assert result.exit_code == 0, result.stderr
    settings = state_of(calls["app"]).settings
    assert settings.default_model == "default" and settings.serve_all
