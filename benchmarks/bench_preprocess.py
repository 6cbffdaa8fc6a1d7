"""Digits that are not MNIST: accuracy with :mod:`digitlab.preprocess` against a plain resize to 28x28.

Test sets (none of them is MNIST-style):

* **sklearn 8x8**: scikit-learn's 1,797 digits (8x8, 0-16), upscaled to 64x64.
* **MNIST re-drawn**: MNIST test digits re-placed on a 280x280 canvas (a
  drawing app's size) at other scales and positions, with other pens: drawn
  at a quarter of the canvas in a corner, at a random size (25-90 %) and place,
  dark-on-light, blue ink on white RGB, black ink on a transparent background
  (RGBA), a 1-px pen (skeleton) and a very thick pen (dilated).
* **strokes**: hand-written stroke lists for each digit (two or three styles
  each), randomly scaled, slanted, moved and drawn with pens of 2-40 px on a
  280x280 canvas, rendered by :func:`digitlab.preprocess.render_strokes`.

Each is classified after a **plain resize** (grey, Pillow's default bicubic
resize of the whole picture to 28x28), after **normalisation without stroke
width** (``to_mnist(..., strokes=False)``) and after **full normalisation**
(``to_mnist``), by digitlab's logistic regression (``logreg``) fitted here on the 60,000
MNIST training digits and, with ``--cnn PATH`` (or once the bundled model exists), by
the CNN.

    python benchmarks/bench_preprocess.py --n 1000 --seed 0

About 3 minutes on the shared 2-core machine (the logistic regression fit is
20-45 s of it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report
from digitlab.data import load_mnist
from digitlab.models.cnn.views import thin  # Zhang-Suen thinning, as the CNN's stroke-style views use it
from digitlab.preprocess import NoInkError, render_strokes, to_mnist

CANVAS = 280

# --------------------------------------------------------------------------- re-drawing MNIST digits


def redraw(img28: np.ndarray, size: int, pos: tuple[int, int], pen: str = "normal") -> np.ndarray:
    """An MNIST digit cropped to its ink, scaled to ``size`` px (longer side) and put at ``pos`` on a canvas.

    Returns a float32 (CANVAS, CANVAS) light-on-dark picture on 0-255. ``pen``:
    ``normal`` (the digit's own strokes, scaled), ``thin`` (1-px skeleton) or
    ``thick`` (binarised and dilated by ``size / 12`` px).
    """
    rows = np.flatnonzero(img28.max(1) > 0)
    cols = np.flatnonzero(img28.max(0) > 0)
    crop = img28[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    k = size / max(h, w)
    nh, nw = max(1, round(h * k)), max(1, round(w * k))
    big = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.BILINEAR), dtype=np.float32)
    if pen == "thin":
        big = thin(big > 96).astype(np.float32) * 255.0
    elif pen == "thick":
        big = (ndi.distance_transform_edt(big <= 96) <= max(1.0, size / 12)) * np.float32(255)
    canvas = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    y, x = pos
    canvas[y:y + nh, x:x + nw] = big[:CANVAS - y, :CANVAS - x]
    return canvas


def _place(rng: np.random.Generator, size: int) -> tuple[int, int]:
    return int(rng.integers(0, CANVAS - size + 1)), int(rng.integers(0, CANVAS - size + 1))


def _corner(rng: np.random.Generator, size: int) -> tuple[int, int]:
    m = 10
    return (int(rng.choice([m, CANVAS - size - m])), int(rng.choice([m, CANVAS - size - m])))


def as_picture(canvas: np.ndarray, style: str) -> Image.Image:
    """A light-on-dark canvas (float 0-255) as a picture of the given style."""
    ink = np.clip(canvas, 0, 255).astype(np.uint8)
    if style == "L":
        return Image.fromarray(ink, mode="L")
    if style == "inverted":
        return Image.fromarray(255 - ink, mode="L")
    if style == "rgb":  # blue ink on white paper
        a = ink.astype(np.float32)[..., None] / 255.0
        blue = np.array([20, 40, 160], dtype=np.float32)
        rgb = 255.0 * (1 - a) + blue * a
        return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")
    if style == "rgba":  # black ink, transparent background
        rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
        rgba[..., 3] = ink
        return Image.fromarray(rgba, mode="RGBA")
    raise ValueError(style)


#: name -> (size, placement, pen, picture style); size None = random 25-90 % of the canvas.
VARIANTS: dict[str, tuple[int | None, Callable, str, str]] = {
    "full canvas, centred": (240, lambda rng, s: ((CANVAS - s) // 2,) * 2, "normal", "L"),
    "quarter size, in a corner": (70, _corner, "normal", "L"),
    "random size and place": (None, _place, "normal", "L"),
    "dark on light": (None, _place, "normal", "inverted"),
    "blue on white RGB": (None, _place, "normal", "rgb"),
    "transparent RGBA": (None, _place, "normal", "rgba"),
    "1-px pen": (None, _place, "thin", "L"),
    "very thick pen": (None, _place, "thick", "L"),
}


def mnist_variant(x: np.ndarray, name: str, rng: np.random.Generator) -> list[Image.Image]:
    size0, place, pen, style = VARIANTS[name]
    out = []
    for img in x:
        size = size0 or int(rng.integers(CANVAS // 4, int(CANVAS * 0.9)))
        out.append(as_picture(redraw(img, size, place(rng, size), pen), style))
    return out


# --------------------------------------------------------------------------- strokes

# Hand-written strokes of each digit in a 100x100 box, a few styles each.
STROKES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[[(50, 5), (25, 15), (15, 50), (25, 85), (50, 95), (75, 85), (85, 50), (75, 15), (50, 5)]],
        [[(55, 8), (30, 20), (22, 55), (35, 90), (60, 92), (78, 60), (72, 20), (55, 8)]]],
    1: [[[(50, 5), (50, 95)]],
        [[(35, 20), (55, 5), (55, 95)]],
        [[(40, 20), (55, 5), (55, 95)], [(35, 95), (75, 95)]]],
    2: [[[(20, 25), (35, 8), (60, 5), (78, 20), (75, 45), (20, 95), (85, 95)]],
        [[(22, 30), (45, 8), (72, 15), (70, 45), (25, 92), (85, 90)]]],
    3: [[[(20, 15), (50, 5), (75, 20), (70, 42), (45, 50), (75, 60), (80, 82), (50, 95), (20, 85)]],
        [[(25, 8), (75, 8), (45, 45), (75, 58), (78, 82), (50, 95), (22, 88)]]],
    4: [[[(60, 5), (15, 65), (85, 65)], [(65, 35), (65, 95)]],
        [[(30, 5), (22, 55), (80, 55)], [(70, 10), (70, 95)]]],
    5: [[[(75, 5), (30, 5), (25, 45), (55, 40), (78, 60), (72, 85), (45, 95), (20, 85)]],
        [[(30, 8), (25, 45), (55, 40), (75, 62), (68, 88), (40, 95), (20, 82)], [(30, 8), (78, 8)]]],
    6: [[[(70, 8), (40, 25), (22, 60), (30, 88), (55, 95), (75, 78), (68, 55), (40, 52), (24, 65)]],
        [[(60, 5), (30, 45), (25, 80), (50, 95), (72, 80), (65, 58), (35, 60)]]],
    7: [[[(15, 8), (85, 8), (40, 95)]],
        [[(15, 10), (85, 10), (45, 95)], [(35, 52), (72, 52)]]],
    8: [[[(70, 15), (50, 5), (28, 15), (30, 38), (70, 62), (75, 85), (50, 95), (25, 85), (30, 62), (70, 38),
          (72, 20)]],
        [[(50, 50), (28, 35), (35, 10), (65, 10), (72, 35), (50, 50), (25, 70), (35, 93), (65, 93), (75, 70),
          (50, 50)]]],
    9: [[[(75, 30), (60, 8), (35, 8), (22, 30), (35, 50), (62, 48), (75, 30), (70, 95)]],
        [[(72, 25), (50, 8), (28, 20), (30, 45), (55, 48), (72, 25), (60, 95)]]],
}


def stroke_set(n_per_style: int, rng: np.random.Generator) -> tuple[list[tuple], np.ndarray]:
    """Random drawings of the hand-written strokes: (strokes, width, height, pen) tuples and labels."""
    items, labels = [], []
    for digit, styles in STROKES.items():
        for style in styles:
            for _ in range(n_per_style):
                size = rng.uniform(0.25, 0.9) * CANVAS
                slant = rng.uniform(-0.25, 0.25)
                sx = size / 100 * rng.uniform(0.8, 1.1)
                sy = size / 100
                x0 = rng.uniform(0, CANVAS - size * 1.1)
                y0 = rng.uniform(0, CANVAS - size)
                pen = float(np.exp(rng.uniform(np.log(2), np.log(40))))
                jit = rng.normal(0, 1.5, size=(64, 2))
                strokes = []
                for s in style:
                    pts = []
                    for j, (px, py) in enumerate(s):
                        px, py = px + jit[j % 64, 0], py + jit[j % 64, 1]
                        pts.append((x0 + sx * (px + slant * (50 - py)), y0 + sy * py))
                    strokes.append(pts)
                items.append((strokes, CANVAS, CANVAS, pen))
                labels.append(digit)
    return items, np.asarray(labels)


def plain_strokes(strokes: list, width: int, height: int, pen: float) -> Image.Image:
    """The canvas as a plain app draws it (white on black), before any resize."""
    img = Image.new("L", (width, height), 0)
    d = ImageDraw.Draw(img)
    for s in strokes:
        d.line(s, fill=255, width=max(1, round(pen)), joint="curve")
        for x, y in s:
            d.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
    return img


# --------------------------------------------------------------------------- measuring


def plain(img: Image.Image) -> np.ndarray:
    """The naive way: grey, resize the whole picture to 28x28."""
    return np.asarray(img.convert("L").resize((28, 28)), dtype=np.uint8)


def normalised(img: Image.Image | np.ndarray, strokes: bool = True) -> np.ndarray:
    try:
        return to_mnist(img, force=True, strokes=strokes)
    except NoInkError:
        return np.zeros((28, 28), dtype=np.uint8)  # counted as a miss unless the model guesses right


def examples(path: str, xs: np.ndarray, items: list[tuple], rng: np.random.Generator) -> None:
    """A figure: for a few inputs, the picture, its plain resize and its normalisation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from digitlab._io import atomic_path

    names = ["quarter size, in a corner", "dark on light", "transparent RGBA", "1-px pen", "very thick pen"]
    pics = [mnist_variant(xs[i:i + 1], n, rng)[0] for i, n in enumerate(names)]
    strokes, w, h, _ = items[len(items) // 3]
    drawn = plain_strokes(strokes, w, h, 3.0)
    rows = [(n, p, plain(p), to_mnist(p)) for n, p in zip(names, pics, strict=True)]
    rows.append(("strokes, 3 px pen", drawn, plain(drawn), render_strokes(strokes, w, h, 3.0)))
    fig, axes = plt.subplots(3, len(rows), figsize=(1.6 * len(rows), 5.2))
    for j, (name, pic, pl, nm) in enumerate(rows):
        shown = pic if pic.mode != "RGBA" else Image.alpha_composite(
            Image.new("RGBA", pic.size, (200, 200, 200, 255)), pic)
        first = "gray" if shown.mode == "L" else None
        for i, (im, cmap) in enumerate([(shown, first), (pl, "gray"), (nm, "gray")]):
            ax = axes[i, j]
            ax.imshow(im, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(name, fontsize=7)
    for i, label in enumerate(["input", "plain resize", "normalised"]):
        axes[i, 0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="MNIST test digits per variant")
    ap.add_argument("--strokes-per-style", type=int, default=20)
    ap.add_argument("--train-n", type=int, default=60000, help="MNIST training digits for logistic regression")
    ap.add_argument("--cnn", default=None, help="CNN model folder (default: the bundled model, if any)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    ap.add_argument("--figure", default=None, help="also draw examples (input, plain resize, normalised) to this PNG")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    data = os.environ.get("DIGITLAB_DATA", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
    xtr, ytr = load_mnist(data, "train")
    xte, yte = load_mnist(data, "test")

    from digitlab.models import make_model

    t = time.perf_counter()
    idx = rng.permutation(len(xtr))[:args.train_n]
    logreg = make_model("logreg").fit(xtr[idx], ytr[idx])
    print(f"logistic regression fitted on {len(idx)} digits in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    models: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "logistic regression": lambda X: np.asarray(logreg.predict(X.reshape(-1, 784)))}
    cnn_note = "CNN: not measured (no bundled model and no --cnn given)."
    from digitlab.models.io import bundled_dir

    cnn_path = args.cnn
    if cnn_path is None and (bundled_dir() / "card.json").exists():
        cnn_path = str(bundled_dir())
    if cnn_path:
        from digitlab.models.io import load_model
        loaded = load_model(cnn_path)
        cnn = loaded.estimator
        models["CNN"] = lambda X: np.asarray(cnn.predict(X.reshape(-1, 28, 28).astype(np.float32)))
        test_acc = loaded.card.get("metrics", {}).get("test", {}).get("accuracy")
        where = "the bundled model" if Path(cnn_path) == bundled_dir() else f"the model in `{cnn_path}`"
        cnn_note = (f"CNN: {where} (trained by `{loaded.card.get('command', '?')}`"
                    + (f", {100 * test_acc:.2f} % on the MNIST test set" if test_acc else "") + ").")

    sel = rng.choice(len(xte), size=min(args.n, len(xte)), replace=False)
    xs, ys = xte[sel], yte[sel]
    sets: list[tuple[str, list, np.ndarray, Callable, Callable, Callable]] = []
    # MNIST as it is (the reference), then re-drawn
    ident = [Image.fromarray(im) for im in xs]
    sets.append(("MNIST test, as is", ident, ys, plain, lambda im: normalised(im, False), normalised))
    for name in VARIANTS:
        sets.append((f"MNIST re-drawn: {name}", mnist_variant(xs, name, rng), ys, plain,
                     lambda im: normalised(im, False), normalised))
    from sklearn.datasets import load_digits
    dig = load_digits()
    sk = [Image.fromarray((im * (255 / 16)).astype(np.uint8)).resize((64, 64), Image.Resampling.BILINEAR)
          for im in dig.images]
    sets.append(("sklearn 8x8 digits, upscaled", sk, dig.target, plain, lambda im: normalised(im, False),
                 normalised))
    items, ylab = stroke_set(args.strokes_per_style, rng)
    sets.append(("strokes (hand-written, random pen 2-40 px)", items, ylab,
                 lambda it: plain(plain_strokes(*it)),
                 lambda it: normalised(plain_strokes(*it), False),
                 lambda it: render_strokes(*it)))

    if args.figure:
        examples(args.figure, xs, items, rng)
    rows = []
    timing: list[float] = []
    for name, inputs, labels, f_plain, f_nostroke, f_norm in sets:
        xp = np.stack([f_plain(i) for i in inputs])
        xn0 = np.stack([f_nostroke(i) for i in inputs])
        t = time.perf_counter()
        xn = np.stack([f_norm(i) for i in inputs])
        timing.append((time.perf_counter() - t) / len(inputs) * 1000)
        row: list[object] = [name, len(labels)]
        for predict in models.values():
            for X in (xp, xn0, xn):
                row.append(f"{100 * np.mean(predict(X) == labels):.1f}")
        rows.append(row)
        print(" | ".join(map(str, row)), file=sys.stderr)
    cols = ["test set", "n"]
    for mname in models:
        cols += [f"{mname}: plain resize %", f"{mname}: normalised, no stroke width %", f"{mname}: normalised %"]

    # speed of one 280x280 canvas
    canvas = np.asarray(mnist_variant(xs[:1], "random size and place", rng)[0])
    for _ in range(5):
        to_mnist(canvas)
    t = time.perf_counter()
    for _ in range(200):
        to_mnist(canvas)
    ms_canvas = (time.perf_counter() - t) / 200 * 1000
    big = np.asarray(Image.fromarray(canvas).resize((4000, 4000)))
    t = time.perf_counter()
    for _ in range(3):
        to_mnist(big)
    ms_big = (time.perf_counter() - t) / 3 * 1000
    st = items[0]
    t = time.perf_counter()
    for _ in range(200):
        render_strokes(*st)
    ms_strokes = (time.perf_counter() - t) / 200 * 1000

    body = (
        "Accuracy (%) on digits that are not MNIST-style, after a plain resize of the whole picture to 28x28 "
        "(grey, Pillow bicubic), after normalisation without the stroke-width step "
        "(`to_mnist(img, strokes=False)`), and after full normalisation (`to_mnist(img)`; strokes via "
        "`render_strokes`). Logistic regression: `make_model(\"logreg\")` (multinomial) fitted on "
        f"{len(idx)} MNIST training digits. {cnn_note} "
        f"MNIST rows use the same {len(sel)} random test digits re-drawn on a {CANVAS}x{CANVAS} canvas; "
        "pictures with no ink after normalisation count as errors.\n\n"
        + _report.table(cols, rows)
        + f"\n\nSpeed (one core, load shared with other jobs): a {CANVAS}x{CANVAS} canvas normalises in "
        f"{ms_canvas:.2f} ms, a 4000x4000 picture in {ms_big:.0f} ms, strokes render and normalise in "
        f"{ms_strokes:.2f} ms; mean over each test set's pictures: "
        + ", ".join(f"{t:.2f}" for t in timing) + " ms.\n")
    print(body)
    if not args.no_write:
        _report.write_section("preprocess", "Drawings are not MNIST: normalisation (preprocess)", body)


if __name__ == "__main__":
    main()
