"""MLPaint in the browser: the JS normaliser against digitlab.preprocess, ONNX Runtime Web against ONNX Runtime,
the page's in-browser mode, and the static site of ``digitlab export-page`` with no digitlab server at all.

Browser tests run in Debian's headless Chromium (playwright); the static site is served by Python's plain
``http.server`` on 127.0.0.1, started and stopped here. The comparisons run hundreds of drawings or images in
one page evaluation each.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import _browser

from . import _drawings

pytestmark = [pytest.mark.timeout(240), pytest.mark.torchfree]  # no torch needed: .ci/run runs these without it

ONE = [[(0.52, 0.18), (0.51, 0.5), (0.5, 0.82)]]
ZERO = [[(0.5 + 0.2 * math.sin(t / 24 * 2 * math.pi), 0.5 - 0.3 * math.cos(t / 24 * 2 * math.pi))
         for t in range(25)]]


# --------------------------------------------------------------------------- fixtures


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def static_host(folder: Path) -> Iterator[tuple[str, http.server.ThreadingHTTPServer]]:
    """A plain static file server (Python's http.server) for ``folder`` on a free 127.0.0.1 port."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def bundled():
    """The bundled CNN and the ONNX model the page runs."""
    from digitlab.export_page import browser_model_bytes
    from digitlab.models.io import bundled_dir, load_model

    est = load_model(bundled_dir()).estimator
    return est, browser_model_bytes(est)


@pytest.fixture(scope="module")
def onnx_session(bundled):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(bundled[1], opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Path:
    """The static site of the bundled model, as ``digitlab export-page`` writes it."""
    from digitlab.export_page import export_page
    from digitlab.settings import get_settings

    out = tmp_path_factory.mktemp("site") / "mlpaint"
    export_page(out, settings=get_settings(home=model_home))
    return out


@pytest.fixture(scope="module")
def site_url(site: Path) -> Iterator[str]:
    with static_host(site) as (url, _):
        yield url


@pytest.fixture(scope="module")
def chromium():
    with _browser.chromium() as b:
        yield b


@pytest.fixture
def blank(chromium, site_url: str):
    """A page on the static site's origin (a folder listing), from which its modules can be imported."""
    pg = chromium.new_page()
    pg.set_default_timeout(120_000)
    pg.goto(site_url + "/static/js/")
    yield pg
    pg.close()


def _wait(page, condition: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, polling=100)
    except PlaywrightTimeout:
        raise AssertionError(f"page never reached {condition!r}; status line: "
                             f"{page.locator('#status').text_content()!r}") from None


def _draw(page, strokes) -> None:
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=3)
        page.mouse.up()


def _predicted(page) -> str:
    _wait(page, "document.body.dataset.busy === '0' && document.querySelector('.bar.win') !== null")
    return page.locator("#digit").text_content()


# --------------------------------------------------------------------------- the JS normaliser


def _python_pixels(d: dict) -> list[int] | str:
    from digitlab.preprocess import render_strokes

    try:
        return render_strokes(d["strokes"], d["width"], d["height"], d["pen"]).ravel().tolist()
    except Exception as exc:  # the kind of refusal is compared with the JS one
        return type(exc).__name__


_RENDER_ALL = """async (drawings) => {
    const m = await import('/static/js/normalise.js');
    return drawings.map((d) => {
        try { return Array.from(m.renderStrokes(d.strokes, d.width, d.height, d.pen)); }
        catch (err) { return err.name; }
    });
}"""


def test_js_normaliser_gives_pythons_pixels(blank, onnx_session) -> None:
    drawings = (_drawings.pen_digits(200, seed=1) + _drawings.synthetic_digits(150, seed=2)
                + _drawings.edge_cases())
    js = blank.evaluate(_RENDER_ALL, [{k: d[k] for k in ("strokes", "width", "height", "pen")} for d in drawings])
    py = [_python_pixels(d) for d in drawings]
    refusals = [(i, p, j) for i, (p, j) in enumerate(zip(py, js, strict=True))
                if isinstance(p, str) or isinstance(j, str)]
    assert all(p == j for _, p, j in refusals), [r for r in refusals if r[1] != r[2]]
    assert {p for _, p, _ in refusals} == {"NoInkError"}  # the edge cases refuse dots and specks
    both = [i for i, p in enumerate(py) if not isinstance(p, str)]
    assert len(both) > 350
    a = np.array([py[i] for i in both], dtype=np.int16)
    b = np.array([js[i] for i in both], dtype=np.int16)
    per_drawing = np.abs(a - b).mean(axis=1)
    exact = float((per_drawing == 0).mean())
    assert per_drawing.mean() <= 1.0, f"mean |difference| {per_drawing.mean():.3f} grey levels; {exact:.1%} exact"
    pa = onnx_session.run(["label"], {"pixels": a.astype(np.uint8)})[0]
    pb = onnx_session.run(["label"], {"pixels": b.astype(np.uint8)})[0]
    same = float((pa == pb).mean())
    assert same >= 0.995, f"same digit on {same:.1%} of {len(both)} drawings ({exact:.1%} pixel-exact)"


def test_js_normaliser_refuses_what_python_refuses(blank) -> None:
    from dataclasses import asdict

    from digitlab.limits import DEFAULT_LIMITS

    limits = blank.evaluate("async () => ({...(await import('/static/js/normalise.js')).DEFAULT_LIMITS})")
    py = asdict(DEFAULT_LIMITS)
    assert limits == {re.sub(r"_(\w)", lambda m: m.group(1).upper(), k): py[k] for k in (
        "min_canvas_side", "max_canvas_side", "max_strokes", "max_stroke_points", "max_pen_width")}
    one = [[[140.0, 40.0], [140.0, 240.0]]]
    bad = [
        {"strokes": "12", "width": 280, "height": 280, "pen": None},
        {"strokes": [[[1, 2, 3]]], "width": 280, "height": 280, "pen": None},
        {"strokes": [[[float("nan"), 2]]], "width": 280, "height": 280, "pen": None},
        {"strokes": one, "width": 4001, "height": 280, "pen": None},
        {"strokes": one, "width": 4, "height": 280, "pen": None},
        {"strokes": one, "width": 280, "height": 280, "pen": 0},
        {"strokes": one, "width": 280, "height": 280, "pen": 281},
        {"strokes": [[[1e9, 2]]], "width": 280, "height": 280, "pen": None},
        {"strokes": [[[1, 2]]] * 1001, "width": 280, "height": 280, "pen": None},
        {"strokes": [[[1, 2]] * 20001], "width": 280, "height": 280, "pen": None},
    ]
    # NaN does not survive JSON: the page is handed it by a replacement
    js = blank.evaluate("""async (drawings) => {
        const m = await import('/static/js/normalise.js');
        return drawings.map((d) => {
            const strokes = d.strokes === 'NaN' ? [[[NaN, 2]]] : d.strokes;
            try { m.renderStrokes(strokes, d.width, d.height, d.pen); return 'accepted'; }
            catch (err) { return err.name; }
        });
    }""", [dict(d, strokes="NaN") if d is bad[2] else d for d in bad])
    py = [_python_pixels(d) for d in bad]
    assert js == py
    assert set(py) == {"UserError", "TooLargeError"}


# --------------------------------------------------------------------------- ONNX Runtime Web


def test_vendored_onnxruntime_web_is_what_its_readme_says() -> None:
    from digitlab.export_page import static_dir

    vendor = static_dir() / "vendor" / "onnxruntime-web"
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"\| `([\w.-]+)` \| [\d,]+ \| `([0-9a-f]{64})` \|", readme))
    assert set(table) == {"ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"}
    for name, digest in table.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (vendor / "LICENSE").read_text(encoding="utf-8")


def test_browser_model_is_the_estimators_int8_graph(bundled, onnx_session, mnist_test) -> None:
    est, onx = bundled
    x = mnist_test[0][:500].reshape(-1, 784)
    proba, label = onnx_session.run(["probabilities", "label"], {"pixels": x})
    assert proba.dtype == np.float32 and proba.shape == (500, 10) and label.dtype == np.int64
    np.testing.assert_array_equal(label, est.predict(x))
    np.testing.assert_allclose(proba, est.predict_proba(x), atol=1e-5)
    import onnx

    meta = {p.key: p.value for p in onnx.load_from_string(onx).metadata_props}
    assert meta["precision"] == "int8" and "MNIST-style" in meta["preprocessing"]


def test_onnxruntime_web_predicts_what_onnxruntime_does(blank, onnx_session, mnist_test) -> None:
    """The int8 (QDQ) graph in ONNX Runtime Web's wasm backend, 300 MNIST test digits in one batch and one by one."""
    x = mnist_test[0][:300].reshape(-1, 784)
    got = blank.evaluate("""async (flat) => {
        const { BrowserModel } = await import('/static/js/browser.js');
        const model = await BrowserModel.load('/model.onnx', 'default');
        const batch = await model.predict(Uint8Array.from(flat));
        const one = await model.predict(Uint8Array.from(flat.slice(0, 784)));
        return { p: Array.from(batch.probabilities), labels: batch.labels, first: Array.from(one.probabilities),
                 layout: model.layout };
    }""", x.ravel().tolist())
    proba, label = onnx_session.run(["probabilities", "label"], {"pixels": x})
    assert got["layout"] == "flat"
    np.testing.assert_array_equal(np.array(got["labels"]), label)
    np.testing.assert_allclose(np.array(got["p"]).reshape(300, 10), proba, atol=1e-5)
    np.testing.assert_allclose(np.array(got["first"]), proba[0], atol=1e-5)


# --------------------------------------------------------------------------- the page on the server


@pytest.fixture(scope="module")
def server(settings) -> Iterator[str]:
    """digitlab's app served by uvicorn on a free port (the bundled CNN is the default); stopped at the end."""
    from dataclasses import replace

    from digitlab.serve import create_app

    with _browser.uvicorn_thread(create_app(replace(settings, default_model="default")), start_timeout=30) as url:
        yield url


@pytest.fixture
def served_page(chromium, server: str):
    pg = chromium.new_page(viewport={"width": 1200, "height": 760})
    pg.set_default_timeout(120_000)
    calls: list[str] = []
    pg.on("request", lambda r: calls.append(r.url))
    pg.goto(server + "/")
    _wait(pg, "document.querySelectorAll('#model option').length > 1")
    yield pg, calls
    pg.close()


def test_the_onnx_route_serves_the_browser_model(client, bundled) -> None:
    r = client.get("/v1/models/default/onnx")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.content == bundled[1]
    r = client.get("/v1/models/centroid/onnx")
    assert r.status_code == 422 and "cannot run in the browser" in r.json()["detail"]
    assert client.get("/v1/models/nope/onnx").status_code == 404


def test_page_predicts_in_the_browser_when_asked(served_page) -> None:
    pg, calls = served_page
    assert pg.evaluate("document.body.dataset.where") == "server"
    pg.locator('input[name="where"][value="browser"]').check()
    _draw(pg, ONE)
    assert _predicted(pg) == "1"
    assert "in this browser" in pg.locator("#timing").text_content()
    assert not [u for u in calls if u.endswith("/v1/predict")]
    assert any(u.endswith("/v1/models/default/onnx") for u in calls)
    # the same drawing on the server gets the same digit, and the choice is remembered
    pg.locator('input[name="where"][value="server"]').check()
    _wait(pg, "document.querySelector('#timing').textContent.includes('server')")
    assert _predicted(pg) == "1"
    pg.locator('input[name="where"][value="browser"]').check()
    pg.reload()
    _wait(pg, "document.querySelectorAll('#model option').length > 1")
    assert pg.evaluate("document.body.dataset.where") == "browser"


def test_a_model_that_cannot_run_in_the_browser_is_answered_by_the_server(served_page) -> None:
    pg, _ = served_page
    pg.locator('input[name="where"][value="browser"]').check()
    pg.select_option("#model", "centroid")
    _draw(pg, ZERO)
    _wait(pg, "document.querySelector('#status').textContent.includes('answering from the server')")
    assert "cannot run in the browser" in pg.locator("#status").text_content()
    assert _predicted(pg) in list("0123456789")
    assert pg.evaluate("document.body.dataset.where") == "server"


# --------------------------------------------------------------------------- the static site


def test_static_site_predicts_with_no_server(chromium, site: Path) -> None:
    files = json.loads((site / "digitlab-page.json").read_text())["files"]
    assert {"index.html", "model.onnx", "static/js/normalise.js",
            "static/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm"} <= set(files)
    with static_host(site) as (url, host):
        pg = chromium.new_page(viewport={"width": 1200, "height": 760})
        pg.set_default_timeout(120_000)
        requests: list[str] = []
        pg.on("request", lambda r: requests.append(r.url))
        pg.goto(url + "/")
        _wait(pg, "document.querySelectorAll('#model option').length === 1")
        assert pg.evaluate("document.body.dataset.where") == "browser"
        assert pg.locator('input[name="where"][value="server"]').is_disabled()
        assert not pg.locator(".samples").is_visible()
        _draw(pg, ZERO)
        assert _predicted(pg) == "0"
        host.shutdown()  # nothing more is fetched: the page keeps predicting on its own
        pg.locator("#clear").click()
        _draw(pg, ONE)
        assert _predicted(pg) == "1"
    assert all(u.startswith(url) for u in requests), [u for u in requests if not u.startswith(url)]
    assert not [u for u in requests if "/v1/" in u]
    pg.close()


def test_export_page_cli(cli, tmp_path: Path) -> None:
    out = tmp_path / "site"
    r = cli("export-page", "--out", out, "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["model"] == "default" and doc["files"]["model.onnx"] == (out / "model.onnx").stat().st_size
    assert doc["bytes"] == sum(doc["files"].values())
    html = (out / "index.html").read_text()
    assert 'src="static/js/main.js"' in html and '"mode": "static"' in html and "/static/" not in html
    assert cli("export-page", "--out", out).exit_code == 0  # an earlier export is replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    r = cli("export-page", "--out", mine)
    assert r.exit_code == 2 and "not empty" in r.stderr and (mine / "notes.txt").read_text() == "keep me"
    r = cli("export-page", "--out", tmp_path / "x", "--model", "nope")
    assert r.exit_code == 2 and "no model named" in r.stderr
