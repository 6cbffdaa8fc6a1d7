"""digitlab.preprocess: every kind of input becomes an MNIST-style digit, and such digits are recognised."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

from digitlab.errors import UserError
from digitlab.limits import DEFAULT_LIMITS, Limits
from digitlab.preprocess import (
    NoInkError,
    TooLargeError,
    decode_image,
    load_image,
    render_strokes,
    stroke_width,
    to_mnist,
)

CANVAS = 280
MAX_SIDE = DEFAULT_LIMITS.max_image_side
MAX_POINTS = DEFAULT_LIMITS.max_stroke_points
# stroke_width() of MNIST training digits at 28x28: 10th and 90th percentiles are 1.41 and 2.82 px
MNIST_WIDTHS = (1.3, 3.0)
SEVEN = [[(60, 40), (220, 40), (120, 250)]]


# --------------------------------------------------------------------------- helpers


def seven(size: int = CANVAS, pen: int = 18, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A 7 drawn light-on-dark (uint8, size x size) inside ``box`` (x0, y0, x1, y1), default most of the canvas."""
    x0, y0, x1, y1 = box or (size // 5, size // 7, 4 * size // 5, 6 * size // 7)
    img = Image.new("L", (size, size), 0)
    ImageDraw.Draw(img).line([(x0, y0), (x1, y0), ((x0 + x1) // 2, y1)], fill=255, width=pen, joint="curve")
    return np.asarray(img)


def bbox(a: np.ndarray, level: int = 0) -> tuple[int, int]:
    rows = np.flatnonzero(a.max(1) > level)
    cols = np.flatnonzero(a.max(0) > level)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    r, c = ndi.center_of_mass(a.astype(np.float64))
    return float(r), float(c)


def assert_mnist_style(a: np.ndarray) -> None:
    """28x28 uint8, light ink on black, longer side 20 px (+-1), centre of mass at (14, 14) (+-1)."""
    assert a.shape == (28, 28) and a.dtype == np.uint8
    assert a.max() >= 200 and np.median(a) == 0
    assert 19 <= max(bbox(a)) <= 21
    r, c = centre_of_mass(a)
    assert abs(r - 14) <= 1.0 and abs(c - 14) <= 1.0


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning to 1-px strokes."""
    b = np.pad(binary.astype(np.uint8), 1)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            p2, p3, p4, p5 = b[:-2, 1:-1], b[:-2, 2:], b[1:-1, 2:], b[2:, 2:]
            p6, p7, p8, p9 = b[2:, 1:-1], b[2:, :-2], b[1:-1, :-2], b[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            n = sum(ring[:8])
            a = sum(((ring[i] == 0) & (ring[i + 1] == 1)).astype(np.uint8) for i in range(8))
            c = ((p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)) if step == 0 else \
                ((p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0))
            kill = (b[1:-1, 1:-1] == 1) & (n >= 2) & (n <= 6) & (a == 1) & c
            if kill.any():
                b[1:-1, 1:-1][kill] = 0
                changed = True
    return b[1:-1, 1:-1].astype(bool)


def redraw(img28: np.ndarray, size: int, pos: tuple[int, int], pen: str, style: str) -> Image.Image:
    """An MNIST digit cropped to its ink, scaled to ``size`` px and put at ``pos`` (row, col) on a 280x280 canvas."""
    rows = np.flatnonzero(img28.max(1) > 0)
    cols = np.flatnonzero(img28.max(0) > 0)
    crop = img28[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    k = size / max(crop.shape)
    nh, nw = max(1, round(crop.shape[0] * k)), max(1, round(crop.shape[1] * k))
    big = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.BILINEAR), dtype=np.float32)
    if pen == "thin":
        big = thin(big > 96) * np.float32(255)
    elif pen == "thick":
        big = (ndi.distance_transform_edt(big <= 96) <= max(1, size // 12)) * np.float32(255)
    ink = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    ink[pos[0]:pos[0] + nh, pos[1]:pos[1] + nw] = np.clip(big, 0, 255).astype(np.uint8)
    if style == "inverted":
        return Image.fromarray(255 - ink, mode="L")
    if style == "rgba":
        rgba = np.zeros((CANVAS, CANVAS, 4), dtype=np.uint8)
        rgba[..., 3] = ink
        return Image.fromarray(rgba, mode="RGBA")
    return Image.fromarray(ink, mode="L")


@pytest.fixture(scope="module")
def centroid(small_train):
    from digitlab.models import make_model
    x, y = small_train
    return make_model("centroid").fit(x, y)


@pytest.fixture(scope="module")
def sample(mnist_test):
    x, y = mnist_test
    idx = np.random.default_rng(1).choice(len(x), 300, replace=False)
    return x[idx], y[idx]


# --------------------------------------------------------------------------- each kind of input


def test_digit_in_a_corner_at_a_quarter_of_the_canvas_is_scaled_and_centred():
    a = seven(box=(5, 5, 70, 70), pen=6)
    out = to_mnist(a)
    assert_mnist_style(out)
    assert bbox(out)[0] >= 19  # the 7 is taller than wide: its height becomes 20 px


def test_dark_on_light_is_inverted():
    a = seven()
    light, dark = to_mnist(a), to_mnist(255 - a)
    assert_mnist_style(dark)
    assert np.abs(light.astype(int) - dark.astype(int)).max() <= 2


def test_transparent_background_uses_alpha_as_ink():
    a = seven()
    rgba = np.zeros((*a.shape, 4), dtype=np.uint8)  # black ink on a transparent background
    rgba[..., 3] = a
    out = to_mnist(Image.fromarray(rgba, mode="RGBA"))
    assert_mnist_style(out)
    assert np.array_equal(out, to_mnist(a))


def test_opaque_rgba_is_read_as_the_picture():
    a = seven()
    rgba = np.dstack([255 - a] * 3 + [np.full_like(a, 255)])  # dark ink on opaque white
    assert np.abs(to_mnist(rgba).astype(int) - to_mnist(a).astype(int)).max() <= 2


def test_rgb_coloured_ink_on_white():
    a = seven().astype(np.float32) / 255
    rgb = (255 * (1 - a[..., None]) + np.array([20, 40, 160]) * a[..., None]).astype(np.uint8)
    out = to_mnist(Image.fromarray(rgb, mode="RGB"))
    assert_mnist_style(out)


def test_palette_image_via_decode():
    p = Image.fromarray(255 - seven(), mode="L").convert("P")
    buf = io.BytesIO()
    p.save(buf, format="GIF")
    img = decode_image(buf.getvalue())
    assert img.mode == "P"
    assert np.abs(to_mnist(img).astype(int) - to_mnist(seven()).astype(int)).max() <= 2


@pytest.mark.parametrize("mode", ["1", "L", "I;16", "I", "F", "CMYK", "YCbCr", "LA", "PA"])
def test_every_pil_mode_gives_the_same_digit(mode):
    a = seven()
    ref = to_mnist(a)
    if mode == "LA":  # transparent background, alpha is the ink
        img = Image.merge("LA", [Image.new("L", a.shape[::-1], 0), Image.fromarray(a)])
    elif mode == "PA":
        black = Image.new("P", a.shape[::-1], 0)
        black.putpalette([0, 0, 0] * 256)
        img = Image.merge("PA", [black, Image.fromarray(a)])
    elif mode in ("I;16", "I", "F"):
        img = Image.fromarray({"I;16": a.astype(np.uint16) * 257, "I": a.astype(np.int32),
                               "F": a.astype(np.float32)}[mode])
        assert img.mode == mode
    else:
        img = Image.fromarray(255 - a).convert(mode)  # dark on light
    out = to_mnist(img)
    assert_mnist_style(out)
    assert np.abs(out.astype(int) - ref.astype(int)).mean() < 8, mode


def test_float_arrays_in_0_1():
    out = to_mnist(seven().astype(np.float64) / 255)
    assert np.array_equal(out, to_mnist(seven()))


def test_one_pixel_stroke_is_thickened_to_full_intensity():
    a = seven(pen=1)
    out = to_mnist(a)
    assert_mnist_style(out)
    thin_out = to_mnist(a, strokes=False)
    # MNIST strokes are about 2-3 px wide in the 28x28 frame: far more ink than a faint 1-px line
    assert (out > 128).sum() > 1.5 * (thin_out > 128).sum()
    assert MNIST_WIDTHS[0] <= stroke_width(out / 255.0) <= MNIST_WIDTHS[1]


def test_very_thick_stroke_is_thinned():
    a = seven(pen=60)
    out = to_mnist(a)
    assert_mnist_style(out)
    assert stroke_width(out / 255.0) < stroke_width(to_mnist(a, strokes=False) / 255.0)
    assert MNIST_WIDTHS[0] <= stroke_width(out / 255.0) <= MNIST_WIDTHS[1]


def test_mnist_digit_passes_through_unchanged_unless_forced(mnist_test):
    x, _ = mnist_test
    assert np.array_equal(to_mnist(x[0]), x[0])
    assert_mnist_style(to_mnist(x[0], force=True))


@pytest.mark.parametrize("shape", [(MAX_SIDE + 1, 10), (10, MAX_SIDE + 1), (4, 4)])
def test_sizes_out_of_range_are_refused(shape):
    with pytest.raises(UserError, match="px"):
        to_mnist(np.zeros(shape, dtype=np.uint8))


def test_largest_size_is_accepted():
    a = np.zeros((MAX_SIDE, MAX_SIDE), dtype=np.uint8)
    a[1000:3000, 1900:2100] = 255
    assert_mnist_style(to_mnist(a))


def test_huge_image_file_is_refused_before_decoding():
    data = png_bytes(Image.new("1", (MAX_SIDE + 1000, 50)))
    with pytest.raises(TooLargeError, match=f"largest accepted side is {MAX_SIDE}"):
        decode_image(data)


def test_decode_image_applies_the_callers_limits():
    data = png_bytes(Image.new("L", (300, 200)))
    with pytest.raises(TooLargeError, match="300x200 = 60000 pixels; at most 50000"):
        decode_image(data, limits=Limits(max_image_pixels=50_000))
    with pytest.raises(TooLargeError, match="largest accepted side is 250 px"):
        decode_image(data, limits=Limits(max_image_side=250))
    assert decode_image(data, limits=Limits(max_image_side=300, max_image_pixels=60_000)).size == (300, 200)


def test_open_image_reads_the_header_and_load_pixels_decodes():
    from digitlab.preprocess import load_pixels, open_image

    img = open_image(png_bytes(Image.new("L", (40, 30), 200)))
    assert img.size == (40, 30)
    assert np.asarray(load_pixels(img)).min() == 200
    truncated = open_image(png_bytes(Image.new("L", (400, 300), 7))[:-40])
    with pytest.raises(UserError, match="cannot decode image"):
        load_pixels(truncated)


def test_decompression_bomb_header_is_refused_without_decoding():
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    # a tiny file declaring a 60000x60000 picture
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    with pytest.raises(TooLargeError, match="decompression bomb"):
        decode_image(png)


def test_oversized_file_is_not_read(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(png_bytes(Image.fromarray(seven())))
    with pytest.raises(UserError, match=r"big.png: file is \d+ bytes; at most 100"):
        load_image(p, limits=Limits(max_file_bytes=100))


def test_undecodable_bytes_are_a_user_error():
    with pytest.raises(UserError, match="cannot decode image"):
        decode_image(b"GIF89a garbage")


def test_non_finite_and_bad_arrays_are_refused():
    a = seven().astype(np.float32)
    a[5, 5] = np.nan
    with pytest.raises(UserError, match="non-finite"):
        to_mnist(a)
    with pytest.raises(UserError, match="0-255"):
        to_mnist(np.full((30, 30), 300))
    with pytest.raises(UserError, match="shape"):
        to_mnist(np.zeros((30, 30, 2)))
    with pytest.raises(UserError, match="PIL image or a NumPy array"):
        to_mnist([[0, 1], [1, 0]])


@pytest.mark.parametrize("picture", [
    np.zeros((280, 280), dtype=np.uint8),              # empty dark canvas
    np.full((280, 280), 255, dtype=np.uint8),          # empty white paper
    np.full((100, 100), 128, dtype=np.uint8),          # uniform grey
], ids=["black", "white", "grey"])
def test_empty_canvas_has_no_ink(picture):
    with pytest.raises(NoInkError, match="no ink"):
        to_mnist(picture)


def test_faint_noise_and_a_speck_have_no_ink():
    noise = np.random.default_rng(0).integers(0, 20, size=(200, 200)).astype(np.uint8)
    with pytest.raises(NoInkError):
        to_mnist(noise)
    speck = np.zeros((200, 200), dtype=np.uint8)
    speck[50, 60] = 255
    with pytest.raises(NoInkError):
        to_mnist(speck)


def test_no_ink_is_a_user_error():
    assert issubclass(NoInkError, UserError)


def test_load_image_names_the_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(png_bytes(Image.new("L", (50, 50), 255)))
    with pytest.raises(NoInkError, match=r"empty\.png: no ink"):
        load_image(p)
    q = tmp_path / "seven.jpg"
    Image.fromarray(255 - seven()).save(q, quality=90)
    assert_mnist_style(load_image(q))


# --------------------------------------------------------------------------- strokes


def test_strokes_are_rendered_and_normalised():
    out = render_strokes(SEVEN, CANVAS, CANVAS, 16)
    assert_mnist_style(out)
    # the same drawing wherever and however big it is drawn on the canvas
    small = [[(x / 4 + 190, y / 4 + 200) for x, y in s] for s in SEVEN]
    assert np.abs(out.astype(int) - render_strokes(small, CANVAS, CANVAS, 4).astype(int)).mean() < 12


def test_strokes_match_the_same_drawing_as_a_picture():
    out = render_strokes(SEVEN, CANVAS, CANVAS, 24)  # a pen of MNIST's width: drawn as it is
    img = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(img)
    draw.line(SEVEN[0], fill=255, width=24, joint="curve")
    for x, y in SEVEN[0]:
        draw.ellipse((x - 12, y - 12, x + 12, y + 12), fill=255)
    assert np.abs(out.astype(int) - to_mnist(np.asarray(img)).astype(int)).mean() < 12


def test_mnist_stroke_widths_from_any_pen_and_canvas_scale():
    widths = [stroke_width(render_strokes(SEVEN, CANVAS, CANVAS, pen) / 255.0) for pen in (1, 8, 40)]
    small = [[(x / 5, y / 5) for x, y in s] for s in SEVEN]  # drawn small with a huge pen
    widths.append(stroke_width(render_strokes(small, CANVAS, CANVAS, 14) / 255.0))
    assert all(MNIST_WIDTHS[0] <= w <= MNIST_WIDTHS[1] for w in widths), widths


def test_strokes_are_cut_off_at_the_canvas_edge():
    # a 7 whose bar runs far off the canvas on both sides: only the part on the canvas is drawn
    out = render_strokes([[(-2000, 40), (2280, 40), (140, 250)]], CANVAS, CANVAS, 16)
    assert_mnist_style(out)
    assert bbox(out)[1] >= 19  # the bar is as wide as the canvas: the digit is wider than tall


def test_no_strokes_and_a_dot_have_no_ink():
    with pytest.raises(NoInkError, match="no strokes"):
        render_strokes([], CANVAS, CANVAS, 10)
    with pytest.raises(NoInkError, match="no ink"):
        render_strokes([[(100, 100)]], CANVAS, CANVAS, 10)
    with pytest.raises(NoInkError, match="outside the canvas"):
        render_strokes([[(-500, -500), (-400, -400)]], CANVAS, CANVAS, 10)


@pytest.mark.parametrize(("strokes", "width", "height", "pen", "message"), [
    ([[(0, 0), (float("nan"), 5)]], 280, 280, 10, "non-finite"),
    ([[(0, 0), (float("inf"), 5)]], 280, 280, 10, "non-finite"),
    ([[(0, 0, 0)]], 280, 280, 10, "shape"),
    ([[("a", "b")]], 280, 280, 10, "number pairs"),
    ("1,2,3", 280, 280, 10, "list of strokes"),
    ([[(0, 0), (1e9, 5)]], 280, 280, 10, "far outside"),
    (SEVEN, 280, 280, 0, "pen_width"),
    (SEVEN, 280, 280, float("nan"), "pen_width must be finite"),
    (SEVEN, 280, 280, 1000, "pen_width"),
    (SEVEN, MAX_SIDE + 1, 280, 10, "canvas width"),
    (SEVEN, 280, 4, 10, "canvas height"),
    (SEVEN, "wide", 280, 10, "width must be a number"),
])
def test_bad_strokes_are_user_errors(strokes, width, height, pen, message):
    with pytest.raises(UserError, match=message):
        render_strokes(strokes, width, height, pen)


def test_absurd_point_counts_are_refused():
    pts = np.random.default_rng(0).uniform(0, 280, size=(MAX_POINTS + 1, 2)).tolist()
    with pytest.raises(UserError, match=f"at most {MAX_POINTS} points"):
        render_strokes([pts], CANVAS, CANVAS, 5)
    with pytest.raises(UserError, match="strokes are accepted"):
        render_strokes([[(1, 1), (2, 2)]] * 5000, CANVAS, CANVAS, 5)


def test_every_stroke_bound_comes_from_the_limits():
    from digitlab.errors import TooLargeError

    limits = Limits(max_strokes=2, max_stroke_points=5, max_canvas_side=300, max_pen_width=12)
    with pytest.raises(TooLargeError, match="at most 2 strokes"):
        render_strokes([[(1, 1)]] * 3, CANVAS, CANVAS, 5, limits=limits)
    with pytest.raises(TooLargeError, match="at most 5 points"):
        render_strokes([[(1, 1)] * 3, [(2, 2)] * 3], CANVAS, CANVAS, 5, limits=limits)
    with pytest.raises(TooLargeError, match=r"canvas width must lie in 8\.\.300 px, got 301"):
        render_strokes(SEVEN, 301, CANVAS, 5, limits=limits)
    with pytest.raises(UserError, match="pen_width must be > 0 and at most 12"):
        render_strokes(SEVEN, CANVAS, CANVAS, 13, limits=limits)
    with pytest.raises(UserError, match="pen_width must be > 0 and at most 200"):  # DEFAULT_LIMITS.max_pen_width
        render_strokes(SEVEN, 1000, 1000, 201)
    assert_mnist_style(render_strokes(SEVEN, CANVAS, CANVAS, 12, limits=limits))


def test_check_drawing_converts_once_and_render_drawing_draws_it():
    from digitlab.preprocess import check_drawing, default_pen_width, render_drawing

    arrays = [np.asarray(s, dtype=np.float64) for s in SEVEN]
    drawing = check_drawing([*arrays, []], CANVAS, CANVAS)
    assert len(drawing.strokes) == 1 and drawing.strokes[0] is arrays[0]  # float64 (n, 2) arrays are not copied
    assert drawing.pen_width == default_pen_width(CANVAS, CANVAS) == CANVAS / 14
    assert default_pen_width(4000, 100) == DEFAULT_LIMITS.max_pen_width  # the default pen is capped too
    assert np.array_equal(render_drawing(drawing), render_strokes(SEVEN, CANVAS, CANVAS, CANVAS / 14))
    with pytest.raises(UserError, match="stroke 0 must be a list of"):
        check_drawing([[(True, False)]], CANVAS, CANVAS)


# --------------------------------------------------------------------------- recognition

# name -> (size in px or None for random 70-250, placement, pen, picture style)
VARIANTS = {
    "corner quarter": (70, "corner", "normal", "L"),
    "random place and size": (None, "random", "normal", "L"),
    "inverted": (None, "random", "normal", "inverted"),
    "transparent": (None, "random", "normal", "rgba"),
    "thin": (None, "random", "thin", "L"),
    "thick": (None, "random", "thick", "L"),
}


def _variant(x: np.ndarray, name: str, seed: int) -> list[Image.Image]:
    size0, where, pen, style = VARIANTS[name]
    rng = np.random.default_rng(seed)
    out = []
    for img in x:
        size = size0 or int(rng.integers(70, 250))
        if where == "corner":
            pos = (int(rng.choice([5, CANVAS - size - 5])), int(rng.choice([5, CANVAS - size - 5])))
        else:
            pos = (int(rng.integers(0, CANVAS - size)), int(rng.integers(0, CANVAS - size)))
        out.append(redraw(img, size, pos, pen, style))
    return out


@pytest.mark.parametrize("name", list(VARIANTS))
def test_redrawn_mnist_digits_are_recognised(name, centroid, sample):
    x, y = sample
    base = np.mean(centroid.predict(x) == y)
    pictures = _variant(x, name, seed=len(name))
    norm = np.stack([to_mnist(p) for p in pictures])
    plain = np.stack([np.asarray(p.convert("L").resize((28, 28))) for p in pictures])
    acc = np.mean(centroid.predict(norm) == y)
    acc_plain = np.mean(centroid.predict(plain) == y)
    # a 1-px skeleton or a blob of a stroke has lost some of the shape MNIST strokes have
    floor = 0.08 if name in ("thin", "thick") else 0.03
    assert acc >= base - floor, (name, acc, base)
    assert acc >= acc_plain + 0.4, (name, acc, acc_plain)


def test_stroke_widths_normalisation_helps_thin_and_thick_pens(centroid, sample):
    x, y = sample
    for name in ("thin", "thick"):
        pictures = _variant(x[:150], name, seed=7)
        with_w = np.mean(centroid.predict(np.stack([to_mnist(p) for p in pictures])) == y[:150])
        without = np.mean(centroid.predict(np.stack([to_mnist(p, strokes=False) for p in pictures])) == y[:150])
        assert with_w >= without + 0.05, (name, with_w, without)


def test_image_folder_of_drawings_gives_normalised_digits(tmp_path, centroid, sample):
    from digitlab.data import read_image_folder

    x, y = sample
    n = 60
    kinds = ["corner quarter", "inverted", "transparent", "thick"]
    for i, (img, lab) in enumerate(zip(x[:n], y[:n], strict=True)):
        pic = _variant(img[None], kinds[i % len(kinds)], seed=i)[0]
        (tmp_path / str(lab)).mkdir(exist_ok=True)
        pic.save(tmp_path / str(lab) / f"{i:03d}.png")
    xs, ys = read_image_folder(tmp_path)
    assert xs.shape == (n, 28, 28) and sorted(ys.tolist()) == sorted(y[:n].tolist())
    for a in xs:
        assert_mnist_style(a)
    assert np.mean(centroid.predict(xs) == ys) >= np.mean(centroid.predict(x[:n]) == y[:n]) - 0.1


def test_only_mnist_style_28x28_pictures_are_left_as_they_are(mnist_test) -> None:
    """Issue 12: a small picture is not trusted to be MNIST-ready; MNIST itself is left unchanged."""
    from PIL import Image

    from digitlab.preprocess import mnist_ready, to_mnist

    x, _ = mnist_test
    assert all(mnist_ready(a) for a in x[:500])
    assert np.array_equal(to_mnist(x[0]), x[0])
    # a user's own 28x28 "seven.bmp": dark ink on white, in greyscale, is normalised as the RGB one is
    seven = Image.fromarray((255 - x[0]).astype(np.uint8), mode="L")
    assert not mnist_ready(np.asarray(seven))
    assert np.array_equal(to_mnist(seven), to_mnist(seven.convert("RGB")))
    # white on black but off centre, or filling the frame: normalised (centred by mass, in the 20 px box)
    corner = np.zeros((28, 28), np.uint8)
    corner[:20, :20] = x[0][4:24, 4:24]
    big = np.asarray(Image.fromarray(x[0][4:24, 4:24]).resize((28, 28), Image.Resampling.BILINEAR))
    for picture in (corner, big):
        assert not mnist_ready(picture)
        out = to_mnist(picture)
        assert mnist_ready(out) and not np.array_equal(out, picture)
