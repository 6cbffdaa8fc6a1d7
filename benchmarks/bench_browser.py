"""MLPaint in the browser: how long one drawing takes to normalise and predict in headless Chromium.

The static site of ``digitlab export-page`` (bundled CNN, int8) is served by Python's ``http.server`` on
127.0.0.1 and opened in Debian's headless Chromium. In one page evaluation, each drawing is handled as the
page handles it in its in-browser mode (``browser.js``'s ``predictHere``: ``normalise.js``, then ONNX Runtime
Web's wasm backend on one thread), one drawing at a time, after 20 warm-up drawings, each run after a 30 ms
pause as between the page's live predictions (at most one per 60 ms while drawing); the normalisation and
the model are also timed apart. Side by side, in the same run, the same drawings go through
``digitlab.preprocess.render_strokes`` and ONNX Runtime (Python, one thread), the server's path without
HTTP. The first prediction of a fresh page (importing ONNX Runtime Web, compiling its wasm, making the
session) is timed on its own.

Drawings: UNIPEN pen digits placed on the 280x280 canvas as users draw, and MNIST-like synthetic strokes
(``tests/serve/_drawings.py``).

    python benchmarks/bench_browser.py --n 400 --seed 0
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))
import _drawings  # noqa: I001 (found through the path above)
import _report

CHROMIUM = "/usr/bin/chromium"
WARMUP = 20
REPEATS = 3
GAP_MS = 30  # a pause before each timed run, as between the page's live predictions (at most one per 60 ms)

_MEASURE = """async ({drawings, warmup, repeats, gapMs}) => {
    const { BrowserModel, predictHere } = await import('/static/js/browser.js');
    const { renderStrokes } = await import('/static/js/normalise.js');
    const t0 = performance.now();
    const model = await BrowserModel.load('/model.onnx', 'default');
    const body = (d) => ({ strokes: d.strokes, width: d.width, height: d.height, pen_width: d.pen });
    const first = await predictHere(model, body(drawings[0]));
    const cold = performance.now() - t0;
    for (const d of drawings.slice(0, warmup)) await predictHere(model, body(d));
    const pause = () => new Promise((resolve) => setTimeout(resolve, gapMs));
    const total = [], norm = [], infer = [], digits = [];   // per drawing: the times of each repeat
    for (const d of drawings.slice(warmup)) {
        const t = [], n = [], m = [];
        for (let r = 0; r < repeats; r++) {
            await pause();
            const a = performance.now();
            const answer = await predictHere(model, body(d));
            t.push(performance.now() - a);
            if (r === 0) digits.push(answer.digit);
            await pause();
            const b = performance.now();
            let px = null;
            try { px = renderStrokes(d.strokes, d.width, d.height, d.pen); } catch (err) { /* no ink */ }
            const c = performance.now();
            n.push(c - b);
            if (px) {
                await pause();
                const e = performance.now();
                await model.predict(px);
                m.push(performance.now() - e);
            }
        }
        total.push(t); norm.push(n); if (m.length) infer.push(m);
    }
    const burst = [];   // the same drawings back to back, with no pause between them
    for (const d of drawings.slice(warmup)) {
        const a = performance.now();
        await predictHere(model, body(d));
        burst.push(performance.now() - a);
    }
    return { cold, first: first.digit, total, norm, infer, burst, digits, agent: navigator.userAgent };
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _stats(runs: list[list[float]]) -> list[str]:
    """Per drawing ``repeats`` times: the median and p90 over drawings of the fastest repeat (the cost without
    other processes' interruptions), then the median and p90 of all single runs (what a user on this shared
    machine saw)."""
    best = np.array([min(r) for r in runs])
    every = np.concatenate([np.asarray(r) for r in runs])
    return [f"{np.median(best):.2f}", f"{np.percentile(best, 90):.2f}", f"{np.median(every):.2f}",
            f"{np.percentile(every, 90):.2f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=400, help="drawings measured (half pen digits, half synthetic)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dry-run", action="store_true", help="20 drawings, nothing written to BENCHMARKS.md")
    args = ap.parse_args()
    n = 20 if args.dry_run else args.n

    import onnxruntime as ort
    from playwright.sync_api import sync_playwright

    from digitlab.export_page import export_page
    from digitlab.preprocess import NoInkError, render_strokes

    drawings = (_drawings.pen_digits((n + WARMUP) // 2, seed=args.seed)
                + _drawings.synthetic_digits(n + WARMUP - (n + WARMUP) // 2, seed=args.seed))
    np.random.default_rng(args.seed).shuffle(drawings)  # type: ignore[arg-type]
    payload = [{k: d[k] for k in ("strokes", "width", "height", "pen")} for d in drawings]

    with tempfile.TemporaryDirectory() as tmp:
        site = export_page(Path(tmp) / "site")
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site.path)))
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                page = browser.new_page()
                page.set_default_timeout(600_000)
                page.goto(f"http://127.0.0.1:{srv.server_address[1]}/static/js/")
                got = page.evaluate(_MEASURE, {"drawings": payload, "warmup": WARMUP, "repeats": REPEATS,
                                               "gapMs": GAP_MS})
                browser.close()
        finally:
            srv.shutdown()
            srv.server_close()
        model_bytes = (site.path / "model.onnx").read_bytes()
        sizes = site.files

    # Python, side by side: the server's path without HTTP
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    py_total: list[list[float]] = []
    py_norm: list[list[float]] = []
    py_digits: list[int | None] = []
    for d in drawings[:WARMUP]:
        with contextlib.suppress(NoInkError):
            session.run(["label"], {"pixels": render_strokes(d["strokes"], d["width"], d["height"], d["pen"])
                                    .reshape(1, 784)})
    for d in drawings[WARMUP:]:
        t, m = [], []
        digit = None
        for _ in range(REPEATS):
            a = time.perf_counter()
            try:
                px = render_strokes(d["strokes"], d["width"], d["height"], d["pen"]).reshape(1, 784)
            except NoInkError:
                break
            b = time.perf_counter()
            digit = int(session.run(["label"], {"pixels": px})[0][0])
            c = time.perf_counter()
            m.append((b - a) * 1000)
            t.append((c - a) * 1000)
        py_digits.append(digit)
        if t:
            py_total.append(t)
            py_norm.append(m)

    same = float(np.mean([a == b for a, b in zip(got["digits"], py_digits, strict=True)]))
    rows = [["in Chromium: one drawing, as the page does it", *_stats(got["total"])],
            ["  the same, back to back (no pauses, one run each)", *_stats([[v] for v in got["burst"]])],
            ["  normalise.js", *_stats(got["norm"])],
            ["  ONNX Runtime Web (wasm, 1 thread)", *_stats(got["infer"])],
            ["Python: render_strokes + ONNX Runtime (1 thread)", *_stats(py_total)],
            ["  render_strokes", *_stats(py_norm)]]
    median = float(np.median([min(r) for r in got["total"]]))
    seen = float(np.median(np.concatenate(got["total"])))
    body = (f"{len(got['total'])} drawings ({n // 2} UNIPEN pen digits placed on the canvas, the rest MNIST-like "
            f"synthetic strokes), one at a time after {WARMUP} warm-up drawings, each {REPEATS} times; "
            f"milliseconds per drawing, each run after a {GAP_MS} ms pause as between the page's live "
            f"predictions (Python's runs back to back). \"Every run\" is what was seen; the \"fastest of "
            f"{REPEATS}\" columns are the cost of the work without the interruptions of the machine's other "
            "jobs.\n\n"
            + _report.table(["path", f"median (fastest of {REPEATS})", f"p90 (fastest of {REPEATS})",
                             "median (every run)", "p90 (every run)"], rows)
            + f"\n\n**Target (issue 16): <= 10 ms per drawing in headless Chromium: "
            f"{'met' if seen <= 10 else 'NOT met'}** (median {seen:.2f} ms over every run on the shared machine, "
            f"{median:.2f} ms for the fastest of {REPEATS}). Back to back, "
            f"the same work shows a median of {np.median(got['burst']):.2f} ms: on this loaded machine a busy "
            "browser process loses its share of the cores, where the page's pauses between predictions keep it. "
            "The first prediction of a fresh page, importing ONNX Runtime Web, compiling its wasm and making the "
            f"session, took {got['cold']:.0f} ms. The browser and "
            f"Python gave the same digit on {same:.1%} of the drawings.\n\n"
            f"The static site is {sum(sizes.values()) / 1e6:.1f} MB, of which the wasm is "
            f"{sizes['static/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm'] / 1e6:.1f} MB and the model "
            f"{sizes['model.onnx'] / 1e3:.0f} kB. Browser: {got['agent'].split(') ')[-1]}. The machine (2 cores) "
            "was shared with other engineers' jobs while this ran.")
    print(body)
    if not args.dry_run:
        _report.write_section("browser", "MLPaint in the browser: normalise and predict in headless Chromium", body)
    print(json.dumps({"median_ms": median, "median_every_run_ms": seen, "cold_ms": got["cold"],
                      "same_digit": same}))


if __name__ == "__main__":
    main()
