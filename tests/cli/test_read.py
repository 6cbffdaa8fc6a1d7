"""digitlab read and digitlab novelty through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from digitlab.pen_numbers import canvas_picture, sketch


def _number_png(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"{text}.png"
    picture = canvas_picture(sketch(text))
    Image.eval(picture, lambda v: 255 - v).save(path)  # dark ink on white paper, as a scan
    return path


def test_read_prints_the_number_of_each_picture(cli, tmp_path: Path) -> None:
    a, b = _number_png(tmp_path, "2026"), _number_png(tmp_path, "4577")
    empty = tmp_path / "empty.png"
    Image.new("L", (900, 300), 255).save(empty)
    r = cli("read", a, b, empty)
    assert r.exit_code == 0, r.output
    assert "2026" in r.stdout and "4577" in r.stdout and "no ink" in r.stdout
    r = cli("read", a, "--format", "json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["model"] == "default"
    (reading,) = doc["readings"]
    assert reading["text"] == "2026" and reading["no_ink"] is False
    assert [set(d) for d in reading["digits"]] == [{"digit", "probabilities", "box", "not_a_digit"}] * 4
    assert all(len(d["box"]) == 4 and len(d["probabilities"]) == 10 for d in reading["digits"])


def test_read_bad_input_is_one_line_and_exit_2(cli, tmp_path: Path) -> None:
    r = cli("read", tmp_path / "missing.png")
    assert r.exit_code == 2 and "cannot read file" in r.stderr and "Traceback" not in r.output
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    r = cli("read", bad)
    assert r.exit_code == 2 and "cannot decode image" in r.stderr
    r = cli("read", _number_png(tmp_path, "12"), "--model", "nope")
    assert r.exit_code == 2 and "no model named 'nope'" in r.stderr


def test_novelty_fit_and_show(cli, home: Path, small_train) -> None:
    from digitlab.models import make_model
    from digitlab.models.card import ModelCard
    from digitlab.models.io import save_model

    x, y = small_train
    save_model(make_model("centroid").fit(x, y), home / "models" / "c", ModelCard(model="centroid"))
    r = cli("novelty", "show", "c", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["can_tell"] is False
    r = cli("novelty", "fit", "c", "--quick", "--dry-run", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["saved"] is False and not (home / "models" / "c" / "novelty.json").exists()
    r = cli("novelty", "fit", "c", "--quick", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["saved"] and set(doc["operating_point"]["false_alarm_by_set"]) >= {"mnist"}
    assert (home / "models" / "c" / "novelty.json").is_file()
    shown = json.loads(cli("novelty", "show", "c", "--format", "json").stdout)
    assert shown["can_tell"] is True and shown["false_alarm_rate"] is not None
    r = cli("novelty", "fit", "nope")
    assert r.exit_code == 2 and "no model named 'nope'" in r.stderr


def test_predict_says_a_star_does_not_look_like_a_digit(cli, tmp_path: Path) -> None:
    import math

    import numpy as np

    from digitlab.pen_numbers import Number

    star = np.array([(140 + 100 * math.cos(k * 4 * math.pi / 5 - math.pi / 2),
                      140 + 100 * math.sin(k * 4 * math.pi / 5 - math.pi / 2)) for k in range(6)])
    path = tmp_path / "star.png"
    canvas_picture(Number([star], 280, 280, 16.0, [])).save(path)
    seven = _number_png(tmp_path, "7")
    r = cli("predict", "default", path, seven, "--format", "json")
    assert r.exit_code == 0, r.output
    star_row, seven_row = json.loads(r.stdout)["predictions"]
    assert star_row["not_a_digit"] is True and star_row["digit"] is not None
    assert seven_row["not_a_digit"] is False and seven_row["digit"] == 7
    assert "that doesn't look like a digit" in cli("predict", "default", path).stdout
