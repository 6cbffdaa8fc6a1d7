"""Issue 13's server items, each reproduced: cheap refusals, lanes, bounded decoding, bad files, bad models, paths."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from ._helpers import TEST_SETTINGS, b64, png_bytes

PIXELS = [0.0] * 783 + [10.0]


def _alive(client, mnist_test) -> None:  # type: ignore[no-untyped-def]
    x, y = mnist_test
    assert client.get("/healthz").status_code == 200
    r = client.post("/v1/predict", json={"pixels": x[0].reshape(-1).tolist()})
    assert r.status_code == 200 and r.json()["digit"] == int(y[0])


def progressive_jpeg(scans: int, side: int = 512) -> bytes:
    """A progressive JPEG whose last scan is repeated until it has ``scans`` scans (a decoder's worst case)."""
    img = Image.new("L", (side, side), 250)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
    end = data.rindex(b"\xff\xd9")
    last = data[starts[-1]:end]
    return data[:end] + last * (scans - len(starts)) + data[end:]


def digit_picture(x: np.ndarray, side: int = 112) -> Image.Image:
    """MNIST digit ``x`` (28, 28) as dark ink on white, ``side`` px."""
    return Image.fromarray(255 - x).resize((side, side), Image.Resampling.BILINEAR)


# ---------------------------------------------------------------- High 2: oversized strokes refused cheaply


def test_oversized_strokes_are_refused_from_the_raw_bytes_before_any_list_is_built(client, mnist_test,
                                                                                   monkeypatch) -> None:
    from digitlab.serve import schemas

    body = json.dumps({"strokes": [[[1, 2]]] * 240_000, "width": 280, "height": 280}, separators=(",", ":")).encode()
    assert len(body) < 2 * 1024 * 1024  # under the body limit: only the drawing rule refuses it
    parsed = []
    real = schemas.PredictRequest.model_validate_json.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(schemas.PredictRequest, "model_validate_json",
                        classmethod(lambda cls, *a, **k: parsed.append(1) or real(cls, *a, **k)))
    r = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "max_strokes" in r.json()["detail"], r.text
    assert parsed == []  # refused before pydantic built 240,000 lists
    _alive(client, mnist_test)


def test_the_stroke_limit_is_enforced_at_the_api(client, mnist_test) -> None:
    r = client.post("/v1/predict", json={"strokes": [[[i % 200, 5]] for i in range(1001)], "width": 280,
                                         "height": 280})
    assert r.status_code == 413 and "at most 1000 strokes" in r.json()["detail"]
    _alive(client, mnist_test)


def test_json_counts_bound_arrays_and_values() -> None:
    from digitlab.errors import TooLargeError
    from digitlab.limits import Limits
    from digitlab.serve.inputs import check_json_counts

    limits = Limits(max_strokes=10, max_stroke_points=50)
    ok = json.dumps({"strokes": [[[1, 2]] * 5] * 10, "width": 280, "height": 280}).encode()
    check_json_counts(ok, limits)
    check_json_counts(json.dumps({"pixels": [[0] * 28] * 28}).encode(), limits)  # 29 arrays, 783 commas
    with pytest.raises(TooLargeError, match="JSON arrays"):
        check_json_counts(json.dumps({"strokes": [[[1, 2]]] * 200}).encode(), limits)
    with pytest.raises(TooLargeError, match="JSON values"):
        check_json_counts(json.dumps({"pixels": [0] * 5000}).encode(), limits)


# ---------------------------------------------------------------- High 2 and 3: lanes, never decode on the loop


@pytest.fixture
def app(settings):  # type: ignore[no-untyped-def]
    from digitlab.serve import create_app

    return create_app(settings)


def _run_with_app(app, coro_fn):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30) as ac:
            return await coro_fn(ac)

    return asyncio.run(main())


def test_pictures_are_never_decoded_on_the_event_loop(app, mnist_test, monkeypatch) -> None:
    from digitlab import preprocess

    x, y = mnist_test
    decoded_in = []
    real = preprocess.load_pixels
    monkeypatch.setattr(preprocess, "load_pixels", lambda img: decoded_in.append(threading.current_thread()) or
                        real(img))
    small = {"image": b64(png_bytes(x[0]))}  # a 28x28 PNG: the cheapest picture there is
    big = Image.new("L", (1200, 900), 255)
    big.paste(digit_picture(x[1], 280), (100, 100))
    buf = io.BytesIO()
    big.save(buf, format="PNG")

    async def go(ac):  # type: ignore[no-untyped-def]
        loop_thread = threading.current_thread()
        rs = [await ac.post("/v1/predict", json=small),
              await ac.post("/v1/predict", json={"image": b64(buf.getvalue())})]
        return loop_thread, rs

    loop_thread, rs = _run_with_app(app, go)
    assert [r.status_code for r in rs] == [200, 200] and [r.json()["digit"] for r in rs] == [int(y[0]), int(y[1])]
    assert len(decoded_in) == 2 and all(t is not loop_thread for t in decoded_in)
    names = [t.name for t in decoded_in]
    assert names[0].startswith("digitlab-fast") and names[1].startswith("digitlab-heavy")


def test_small_requests_are_answered_while_the_heavy_lane_is_full(app, mnist_test) -> None:
    from digitlab.serve import state_of

    x, y = mnist_test
    state = state_of(app)
    release = threading.Event()

    async def go(ac):  # type: ignore[no-untyped-def]
        blockers = [asyncio.ensure_future(state.on_heavy(release.wait, 20))
                    for _ in range(state.settings.heavy_threads + state.settings.heavy_queue)]
        await asyncio.sleep(0.2)
        try:
            png = await asyncio.wait_for(ac.post("/v1/predict", json={"image": b64(png_bytes(x[2]))}), 10)
            strokes = await asyncio.wait_for(ac.post("/v1/predict", json={
                "strokes": [[[140, 40], [141, 140], [142, 240]]], "width": 280, "height": 280}), 10)
            big = {"image": b64(png_bytes(np.kron(255 - x[3], np.ones((40, 40), np.uint8))))}  # 1120x1120: heavy
            busy = await asyncio.wait_for(ac.post("/v1/predict", json=big), 10)
        finally:
            release.set()
            await asyncio.gather(*blockers)
        return png, strokes, busy

    png, strokes, busy = _run_with_app(app, go)
    assert png.status_code == 200 and png.json()["digit"] == int(y[2])
    assert strokes.status_code == 200 and strokes.json()["digit"] == 1
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and "heavy_queue" in busy.json()["detail"]


def test_a_jpeg_of_many_scans_is_refused_before_decoding(client, mnist_test, monkeypatch) -> None:
    from digitlab import preprocess

    crafted = progressive_jpeg(600)
    assert len(crafted) < 64 * 1024 and preprocess.jpeg_scans(crafted) >= 600
    loads = []
    real = preprocess.load_pixels
    monkeypatch.setattr(preprocess, "load_pixels", lambda img: loads.append(1) or real(img))
    r = client.post("/v1/predict", json={"image": b64(crafted)})
    assert r.status_code == 413 and "scans" in r.json()["detail"] and loads == []
    ordinary = progressive_jpeg(0)  # an encoder's own progression: a handful of scans
    assert client.post("/v1/predict", json={"image": b64(ordinary)}).status_code == 200
    _alive(client, mnist_test)


@pytest.mark.parametrize(("width", "height", "rule"), [
    (4001, 40, "the largest accepted side is 4000 px"),  # a side over the limit
    (20000, 20000, "decompression bomb"),  # 400 megapixels declared by a 100-byte file
])
def test_the_cli_and_the_server_refuse_the_same_picture_by_the_same_limit(client, tmp_path, width: int,
                                                                          height: int, rule: str) -> None:
    """Low: the CLI decoded a 16-megapixel bomb that the server refused; both read one Limits."""
    import struct
    import zlib

    from typer.testing import CliRunner

    from digitlab.cli import app as cli

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    served = client.post("/v1/predict", files={"image": ("big.png", png, "image/png")})
    assert served.status_code == 413 and rule in served.json()["detail"], served.text
    path = tmp_path / "big.png"
    path.write_bytes(png)
    out = CliRunner().invoke(cli, ["predict", "default", str(path)])
    assert out.exit_code == 2 and rule in out.stderr and "Traceback" not in out.output, out.output


# ---------------------------------------------------------------- Medium 4: pictures that gave 500


def _tiff(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="TIFF")
    return buf.getvalue()


def test_a_lab_tiff_is_read_by_its_lightness(client, mnist_test, tmp_path) -> None:
    from typer.testing import CliRunner

    from digitlab.cli import app as cli

    x, y = mnist_test
    rgb = digit_picture(x[5]).convert("RGB")
    lab = Image.merge("LAB", (rgb.convert("L"), Image.new("L", rgb.size, 128), Image.new("L", rgb.size, 128)))
    r = client.post("/v1/predict", json={"image": b64(_tiff(lab))})
    assert r.status_code == 200 and r.json()["digit"] == int(y[5]), r.text
    path = tmp_path / "lab.tiff"
    path.write_bytes(_tiff(lab))
    out = CliRunner().invoke(cli, ["predict", "default", str(path), "--format", "json"])
    assert out.exit_code == 0, out.output


def test_a_picture_in_a_mode_that_cannot_be_read_is_a_clear_422(client, mnist_test, monkeypatch) -> None:
    from PIL import TiffImagePlugin

    def refuse(self, mode=None, *a, **k):  # type: ignore[no-untyped-def]
        raise ValueError(f"conversion from {self.mode} to {mode} not supported")

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "convert", refuse)
    r = client.post("/v1/predict", json={"image": b64(_tiff(Image.new("RGB", (40, 40), (0, 0, 0))))})
    assert r.status_code == 422 and "colour mode 'RGB'" in r.json()["detail"], r.text
    _alive(client, mnist_test)


def test_a_float_tiff_on_0_1_is_read_as_ink(client, mnist_test) -> None:
    x, y = mnist_test
    floats = np.asarray(digit_picture(x[6]), dtype=np.float32) / 255.0  # dark ink on white, on 0-1
    r = client.post("/v1/predict", json={"image": b64(_tiff(Image.fromarray(floats, mode="F")))})
    assert r.status_code == 200 and r.json()["no_ink"] is False and r.json()["digit"] == int(y[6]), r.text


# ---------------------------------------------------------------- Medium 4 and Low: bad model folders


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_weights(folder: Path, change) -> None:  # type: ignore[no-untyped-def]
    from safetensors.numpy import load_file, save

    arrays = load_file(str(folder / "weights.safetensors"))
    change(arrays)
    (folder / "weights.safetensors").write_bytes(save(arrays))


def _edit_card(folder: Path, change) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((folder / "card.json").read_text())
    change(doc)
    (folder / "card.json").write_text(json.dumps(doc))


BROKEN = {
    "wrong-shape": lambda d: _edit_weights(d, lambda a: a.update(centroids=a["centroids"][:, :100].copy())),
    "nan-weights": lambda d: _edit_weights(d, lambda a: a["centroids"].__setitem__((3, 5), np.nan)),
    "inf-weights": lambda d: _edit_weights(d, lambda a: a["centroids"].__setitem__((0, 0), np.inf)),
    "param-type": lambda d: _edit_card(d, lambda c: c["params"].update(temperature="hot")),
    "model-dict": lambda d: _edit_card(d, lambda c: c.update(model={"name": "centroid"})),
    "nested-card": lambda d: (d / "card.json").write_text("[" * 3000 + "]" * 3000),
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, model_home: Path, mnist_dir: Path, small_train):  # type: ignore[no-untyped-def]
    """A server whose models folder holds the good centroid, each broken folder and three non-ten-digit models."""
    from fastapi.testclient import TestClient

    from digitlab.models import make_model
    from digitlab.models.io import save_model
    from digitlab.serve import create_app, serve_settings

    home = tmp_path_factory.mktemp("zoo")
    models = home / "models"
    good = _copy(model_home / "models" / "centroid", models / "centroid")
    for name, breaks in BROKEN.items():
        breaks(_copy(good, models / name))
    x, y = small_train
    pair = np.isin(y, (2, 3))
    save_model(make_model("centroid").fit(x[pair], y[pair]), models / "two-class")
    save_model(make_model("sgd", max_iter=2).fit(x[:500], y[:500]), models / "zero-or-not")
    save_model(make_model("dpmm", chains=1, iters=2, seed=0).fit(x[pair][:300], y[pair][:300]), models / "twos-threes")
    settings = serve_settings(data_dir=mnist_dir, home=home, default_model="centroid", **TEST_SETTINGS)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_model_folder_is_refused_with_one_clear_message(zoo, mnist_test, name: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="digitlab.serve"):
        r = zoo.post("/v1/predict", json={"pixels": PIXELS, "model": name})
    assert r.status_code == 500, r.text
    detail = r.json()["detail"]
    assert detail.startswith(f"model {name!r} cannot be used: ") and "internal error" not in detail
    assert "/" not in detail.split("cannot be used: ", 1)[1].replace("0-9", "")  # no path
    again = zoo.post("/v1/predict", json={"pixels": PIXELS, "model": name})
    assert again.json() == r.json()  # remembered, not reloaded at every request
    _alive(zoo, mnist_test)


def test_broken_folders_are_left_out_of_the_list_and_others_say_why_they_do_not_predict(zoo, caplog) -> None:
    from digitlab.serve import state_of

    state_of(zoo.app).registry._reported.clear()
    with caplog.at_level(logging.WARNING, logger="digitlab.serve"):
        r = zoo.get("/v1/models")
    assert r.status_code == 200
    by_name = {m["name"]: m for m in r.json()["models"]}
    assert not set(BROKEN) & set(by_name)
    logged = " ".join(rec.getMessage() for rec in caplog.records)
    assert all(f"'{name}'" in logged for name in BROKEN)
    assert by_name["centroid"]["predicts"] is True and by_name["centroid"]["reason"] is None
    for name, classes in (("two-class", "[2, 3]"), ("zero-or-not", "[0, 1]"), ("twos-threes", "[2, 3]")):
        assert by_name[name]["predicts"] is False and classes in by_name[name]["reason"], by_name[name]
        answer = zoo.post("/v1/predict", json={"pixels": PIXELS, "model": name})
        assert answer.status_code == 422 and "not the ten digits" in answer.json()["detail"]


def test_an_unknown_model_is_404_even_beside_a_deeply_nested_card(zoo) -> None:
    r = zoo.post("/v1/predict", json={"pixels": PIXELS, "model": "nosuchmodel"})
    assert r.status_code == 404 and "nosuchmodel" in r.json()["detail"]


def test_the_lock_table_stays_bounded_whatever_names_are_asked_for(zoo) -> None:
    from digitlab.serve import state_of

    registry = state_of(zoo.app).registry
    cache = registry._models
    for i in range(300):
        assert zoo.post("/v1/predict", json={"pixels": PIXELS, "model": f"ghost{i}"}).status_code == 404
    assert len(cache._stripes) == 64 and not any(n.startswith("ghost") for n in [*cache._items, *cache._refused])


# ---------------------------------------------------------------- Medium 9: no absolute paths


def test_answers_never_hold_absolute_paths(zoo, tmp_path, model_home) -> None:
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app, serve_settings

    answers = [zoo.post("/v1/complete", json={"pixels": PIXELS, "keep": "top", "model": "nosuchmixture"}),
               zoo.post("/v1/predict", json={"pixels": PIXELS, "model": "wrong-shape"})]
    missing = serve_settings(data_dir=tmp_path / "no-mnist", home=model_home, default_model="centroid",
                             **TEST_SETTINGS)
    with TestClient(create_app(missing)) as c:
        answers.append(c.get("/v1/samples", params={"digit": 1}))
        answers.append(c.post("/v1/complete", json={"pixels": PIXELS, "keep": "top"}))
    assert [r.status_code for r in answers] == [404, 500, 404, 404]
    for r in answers:
        detail = r.json()["detail"]
        assert str(tmp_path) not in detail and str(model_home) not in detail and "/tmp/" not in detail, detail


# ---------------------------------------------------------------- 17.1: pixels on 0-1 need "scale": "unit"


def test_pixels_on_0_1_are_refused_without_a_scale_and_read_with_one(client, mnist_test) -> None:
    x, y = mnist_test
    unit = (x[7].reshape(-1) / 255.0).tolist()
    r = client.post("/v1/predict", json={"pixels": unit})
    assert r.status_code == 422 and '"scale": "unit"' in r.json()["detail"]
    scaled = client.post("/v1/predict", json={"pixels": unit, "scale": "unit"}).json()
    plain = client.post("/v1/predict", json={"pixels": x[7].reshape(-1).tolist()}).json()
    assert scaled["digit"] == plain["digit"] == int(y[7])
    np.testing.assert_allclose(scaled["probabilities"], plain["probabilities"], atol=1e-5)
    over = client.post("/v1/predict", json={"pixels": [2.0, *unit[1:]], "scale": "unit"})
    assert over.status_code == 422 and "between 0 and 1" in over.json()["detail"]
    assert client.post("/v1/predict", json={"pixels": [0] * 784}).json()["no_ink"] is True  # blank is no scale
    with_image = client.post("/v1/predict", json={"image": b64(png_bytes(x[0])), "scale": "unit"})
    assert with_image.status_code == 422 and "'scale' only goes with 'pixels'" in with_image.json()["detail"]
    byte = client.post("/v1/predict", json={"pixels": [1] * 784, "scale": "byte"})  # 0-255 as said: nothing seen
    assert byte.status_code == 200 and byte.json()["no_ink"] is True
    faint = client.post("/v1/predict", json={"pixels": [0.003] * 784, "scale": "unit"})  # under 1 of 255
    assert faint.status_code == 200 and faint.json()["no_ink"] is True


def test_a_faint_picture_does_not_fail_the_requests_batched_with_it(settings) -> None:
    """Models refuse a picture whose brightest pixel is at most 1 (it looks 0-1): one batch would fail them all."""
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app

    async def both() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as ac:
            bodies = [{"pixels": [1] * 784, "scale": "byte"}, {"pixels": [0] * 700 + [200] * 84}] * 4
            return list(await asyncio.gather(*(ac.post("/v1/predict", json=b) for b in bodies)))

    app = create_app(settings)
    with TestClient(app):
        answers = asyncio.run(both())
    assert [r.status_code for r in answers] == [200] * 8
    assert [r.json()["no_ink"] for r in answers] == [True, False] * 4


def test_a_model_fitted_on_0_1_pixels_is_given_its_own_scale(tmp_path, small_train, mnist_test) -> None:
    from fastapi.testclient import TestClient

    from digitlab.models import make_model
    from digitlab.models.card import ModelCard
    from digitlab.models.io import save_model
    from digitlab.serve import create_app, serve_settings

    x, y = small_train
    est = make_model("centroid").fit(x / 255.0, y)
    save_model(est, tmp_path / "models" / "unit", ModelCard(model="centroid"))
    xt, yt = mnist_test
    with TestClient(create_app(serve_settings(home=tmp_path, default_model="unit", **TEST_SETTINGS))) as c:
        assert "unit" in [m["name"] for m in c.get("/v1/models").json()["models"] if m["predicts"]]
        digits = [c.post("/v1/predict", json={"pixels": xt[i].reshape(-1).tolist(), "explain": i == 0}).json()
                  for i in range(20)]
    want = est.predict(xt[:20].reshape(20, -1) / 255.0)
    assert [d["digit"] for d in digits] == want.tolist()
    assert np.mean(want == yt[:20]) >= 0.6
    assert len(digits[0]["explanation"]) == 784


def test_non_finite_scores_at_request_time_are_a_500_never_null_probabilities(settings, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from digitlab.serve import create_app, state_of

    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        est = state_of(app).registry.get("centroid").estimator
        real = est.scores_and_proba

        def overflowing(X):  # type: ignore[no-untyped-def]
            scores, probs = real(X)
            return scores, np.where(X[:, :1] > 100, np.nan, probs)  # NaN for pictures whose first pixel is bright

        monkeypatch.setattr(est, "scores_and_proba", overflowing)
        bad = c.post("/v1/predict", json={"pixels": [200.0, *PIXELS[1:]]})
        good = c.post("/v1/predict", json={"pixels": PIXELS})
    assert bad.status_code == 500 and "non-finite" in bad.json()["detail"] and "null" not in bad.text
    assert good.status_code == 200 and None not in good.json()["probabilities"]
