"""digitlab.serve.settings: one typed, immutable object, its limits, and its JSON form for worker processes."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from digitlab.errors import UserError
from digitlab.limits import DEFAULT_LIMITS, Limits
from digitlab.serve.settings import ServeSettings, serve_settings, settings_from_json, settings_to_json


def test_settings_come_from_the_librarys_locations(tmp_path: Path) -> None:
    s = serve_settings(data_dir=tmp_path / "mnist", home=tmp_path / "home")
    assert s.data_dir == tmp_path / "mnist" and s.models_dir == tmp_path / "home" / "models"
    assert s.limits is DEFAULT_LIMITS and s.default_model == "default"


def test_overrides_set_settings_and_limits(tmp_path: Path) -> None:
    s = serve_settings(home=tmp_path, default_model="cnn", port=9000, max_body_bytes=1000, max_pen_width=50)
    assert s.default_model == "cnn" and s.port == 9000
    assert s.limits == dataclasses.replace(DEFAULT_LIMITS, max_body_bytes=1000, max_pen_width=50)
    own = Limits(max_strokes=3)
    assert serve_settings(home=tmp_path, limits=own).limits is own
    assert serve_settings(home=tmp_path, limits=own, max_strokes=4).limits.max_strokes == 4
    with pytest.raises(TypeError):
        serve_settings(home=tmp_path, no_such_setting=1)


def test_settings_are_immutable(tmp_path: Path) -> None:
    s = serve_settings(home=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.limits.max_body_bytes = 1  # type: ignore[misc]


@pytest.mark.parametrize(("change", "message"), [
    ({"default_model": "../x"}, "a model name must be"),
    ({"port": 70000}, "setting port must lie in 0..65535"),
    ({"request_timeout": 0}, "setting request_timeout must be > 0"),
    ({"max_batch": 0}, "setting max_batch must be an integer >= 1"),
    ({"preprocess_threads": 1.5}, "setting preprocess_threads must be an integer"),
    ({"limits": {"max_body_bytes": 1}}, "setting limits must be a digitlab.limits.Limits"),
])
def test_bad_settings_name_the_setting(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        dataclasses.replace(serve_settings(home=tmp_path), **change)


@pytest.mark.parametrize(("change", "message"), [
    ({"max_body_bytes": 0}, "limit max_body_bytes must be a positive number, got 0"),
    ({"max_pen_width": -1.0}, "limit max_pen_width must be a positive number"),
    ({"min_canvas_side": 500, "max_canvas_side": 400}, "min_canvas_side (500) must not exceed max_canvas_side"),
])
def test_bad_limits_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        Limits(**change)  # type: ignore[arg-type]


def test_paths_given_as_text_become_paths(tmp_path: Path) -> None:
    s = ServeSettings(data_dir=str(tmp_path), models_dir=str(tmp_path / "m"))  # type: ignore[arg-type]
    assert s.data_dir == tmp_path and isinstance(s.models_dir, Path)


def test_json_round_trip_keeps_every_setting(tmp_path: Path) -> None:
    s = serve_settings(home=tmp_path, default_model="centroid", max_image_side=1234, freeze_gc=False)
    doc = json.loads(json.dumps(settings_to_json(s)))  # as it travels to a worker process
    assert doc["data_dir"] == str(s.data_dir) and doc["limits"]["max_image_side"] == 1234
    assert settings_from_json(doc) == s
