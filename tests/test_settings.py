"""``digitlab.settings``: where digitlab looks for MNIST and keeps its store and models."""

from __future__ import annotations

from pathlib import Path

import pytest

from digitlab.settings import Settings, get_settings


def test_arguments_win_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITLAB_DATA", str(tmp_path / "env-data"))
    monkeypatch.setenv("DIGITLAB_HOME", str(tmp_path / "env-home"))
    s = get_settings(data_dir=tmp_path / "d", home=tmp_path / "h")
    assert s == Settings(data_dir=tmp_path / "d", home=tmp_path / "h")
    assert get_settings() == Settings(data_dir=tmp_path / "env-data", home=tmp_path / "env-home")


def test_without_either_the_user_folders_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("DIGITLAB_DATA", raising=False)
    monkeypatch.delenv("DIGITLAB_HOME", raising=False)
    s = get_settings()
    assert s.data_dir == Path(platformdirs.user_cache_dir("digitlab"))
    assert s.home == Path(platformdirs.user_data_dir("digitlab"))


def test_an_empty_variable_counts_as_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.setenv("DIGITLAB_HOME", "")
    assert get_settings().home == Path(platformdirs.user_data_dir("digitlab"))


def test_store_and_models_live_in_home_and_tilde_expands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    s = get_settings(data_dir="~/mnist", home="~/dl")
    assert s.data_dir == tmp_path / "mnist" and s.home == tmp_path / "dl"
    assert s.store_path == tmp_path / "dl" / "digitlab.duckdb" and s.models_dir == tmp_path / "dl" / "models"
    with pytest.raises(AttributeError):
        s.home = tmp_path  # type: ignore[misc]  # frozen
