"""digitlab.read.read_number: numbers as strokes and as pictures, on the bundled CNN."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.errors import UserError
from digitlab.models.io import bundled_dir, load_model
from digitlab.pen_numbers import canvas_picture, sketch
from digitlab.preprocess import check_drawing
from digitlab.read import Reading, read_number, recognizer


@pytest.fixture(scope="module")
def cnn():
    return load_model(bundled_dir(), name="default")


def _drawing(number):
    return check_drawing(number.strokes, number.width, number.height, number.pen_width)


@pytest.mark.parametrize("text", ["2026", "4577", "1074", "0123456789", "31"])
def test_a_number_drawn_as_strokes_is_read_left_to_right(cnn, text: str) -> None:
    number = sketch(text)
    reading = read_number(_drawing(number), cnn)
    assert isinstance(reading, Reading) and not reading.no_ink
    assert reading.text == text
    assert [d.digit for d in reading.digits] == [int(c) for c in text]
    assert not any(d.not_a_digit for d in reading.digits)
    for d, (x0, y0, x1, y1) in zip(reading.digits, number.boxes, strict=True):
        # the box holds the digit's points, plus at most the pen's half width
        assert d.box[0] <= x0 and d.box[1] <= y0 and d.box[2] >= x1 and d.box[3] >= y1
        assert d.box[0] >= x0 - number.pen_width and d.box[2] <= x1 + number.pen_width
        assert d.probabilities.shape == (10,) and abs(d.probabilities.sum() - 1) < 1e-6
        assert d.input.shape == (784,) and d.input.dtype == np.uint8


def test_multi_stroke_digits_stay_whole_and_order_is_by_position(cnn) -> None:
    number = sketch("4757")  # 4, 5 and 7 are drawn with two strokes each
    assert len(number.strokes) == 8
    # the strokes are given in any order: the reading follows the canvas, not the order of drawing
    shuffled = [number.strokes[i] for i in (6, 2, 0, 7, 5, 1, 3, 4)]
    reading = read_number(check_drawing(shuffled, number.width, number.height, number.pen_width), cnn)
    assert reading.text == "4757"


def test_uneven_gaps_a_sloping_baseline_and_a_crossing_stroke(cnn) -> None:
    assert read_number(_drawing(sketch("2026", slope=12)), cnn).text == "2026"
    assert read_number(_drawing(sketch("1074", gap=0.08)), cnn).text == "1074"
    # the 7's bar reaches into the 4's space
    number = sketch("74", gap=0.15)
    bar = number.strokes[1].copy()
    bar[1, 0] = number.boxes[1][0] + 0.3 * (number.boxes[1][2] - number.boxes[1][0])
    strokes = [number.strokes[0], bar, *number.strokes[2:]]
    assert read_number(check_drawing(strokes, number.width, number.height, number.pen_width), cnn).text == "74"


def test_a_picture_of_the_canvas_is_read_the_same(cnn) -> None:
    for text in ("2026", "4577", "90210"):
        number = sketch(text)
        picture = canvas_picture(number)
        assert read_number(picture, cnn).text == text
        # dark ink on white paper, as an RGB array, reads the same
        paper = 255 - np.asarray(picture)
        assert read_number(np.stack([paper] * 3, axis=-1), cnn).text == text


def test_pictures_with_broken_strokes_and_touching_digits(cnn) -> None:
    number = sketch("1074")
    broken = canvas_picture(number)
    draw = ImageDraw.Draw(broken)
    for x0, y0, x1, y1 in number.boxes:  # a gap across the middle of each digit
        mid = (y0 + y1) / 2
        draw.rectangle((x0 - 20, mid - 3, x1 + 20, mid + 3), fill=0)
    assert read_number(broken, cnn).text == "1074"
    touching = canvas_picture(sketch("1074", gap=-0.04))
    assert read_number(touching, cnn).text == "1074"


def test_boxes_of_a_picture_are_in_its_pixels(cnn) -> None:
    number = sketch("31", canvas=(600, 200), pen_width=10)
    reading = read_number(canvas_picture(number), cnn)
    assert reading.text == "31"
    for d, (x0, y0, x1, _) in zip(reading.digits, number.boxes, strict=True):
        assert abs(d.box[0] - x0) <= 8 and abs(d.box[2] - x1) <= 8 and abs(d.box[1] - y0) <= 8


def test_nothing_drawn_is_no_ink(cnn) -> None:
    empty = check_drawing([], 1200, 300)
    assert read_number(empty, cnn) == Reading("", (), True)
    assert read_number(Image.new("L", (1200, 300), 255), cnn).no_ink
    assert read_number(np.zeros((300, 1200), dtype=np.uint8), cnn).no_ink


def test_a_file_path_and_bad_inputs(cnn, tmp_path) -> None:
    path = tmp_path / "n.png"
    canvas_picture(sketch("58")).save(path)
    assert read_number(path, cnn).text == "58"
    assert read_number(str(path), cnn.estimator).text == "58"
    with pytest.raises(UserError, match="cannot read file"):
        read_number(tmp_path / "missing.png", cnn)
    with pytest.raises(UserError, match="takes a Drawing"):
        read_number([[0, 0], [1, 1]], cnn)  # type: ignore[arg-type]


def test_a_model_without_detector_never_flags(cnn) -> None:
    scribble = [[(100 + 160 * (i % 2), 60 + 6 * i) for i in range(30)]]  # a filled blob
    reading = read_number(check_drawing(scribble, 600, 300, 12), recognizer(cnn.estimator))
    assert reading.digits and not any(d.not_a_digit for d in reading.digits)
    flagged = read_number(check_drawing(scribble, 600, 300, 12), cnn)  # the bundled model's detector
    assert any(d.not_a_digit for d in flagged.digits)
