"""End to end: the sketchpad in real JupyterLab and Notebook 7, in headless Chromium, digits drawn with the mouse.

The module starts ``jupyter lab`` on 127.0.0.1 on a free port with a token and its own config, data, runtime and
settings folders (no extension manager, no news, no update check, no language servers: nothing leaves the
machine). Each test opens a notebook that shows ``Sketchpad(model="default")``, runs it, draws digits on the
widget's canvas with the mouse, and reads the kernel's prediction back from the file the notebook's
``observe`` callback writes. Every request the page makes is checked to go to the local server. The same
server serves Notebook 7's interface (``/notebooks/...``) when the ``notebook`` package is installed.

Set ``DIGITLAB_SCREENSHOT=docs/sketchpad.png`` to save a screenshot of the notebook (used by the README).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from _browser import chromium, free_port

pytest.importorskip("anywidget", reason="the notebook extra is not installed: pip install 'digitlab[notebook]'")

SRC = Path(__file__).resolve().parents[2] / "src"
pytestmark = pytest.mark.timeout(300)

# The lab's own settings: everything that would reach the internet is off.
CONFIG = """
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.open_browser = False
c.ServerApp.allow_root = True  # CI runs as root
c.ServerApp.terminals_enabled = False
c.ServerApp.jpserver_extensions = {"jupyter_lsp": False}
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
c.LabApp.expose_app_in_browser = True
c.JupyterNotebookApp.expose_app_in_browser = True
"""


def _cell(source: str) -> dict[str, object]:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """``jupyter lab`` on a free port of 127.0.0.1 with a token; a notebook with the sketchpad in its root."""
    root = tmp_path_factory.mktemp("lab")
    work, conf, data, runtime, settings, home = (root / n for n in ("work", "config", "data", "runtime",
                                                                     "settings", "home"))
    for d in (work, conf, data, runtime, settings, home):
        d.mkdir()
    (conf / "jupyter_server_config.py").write_text(CONFIG)
    # no "would you like to get notified about official Jupyter news?" (and so no fetch of them)
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    outs = {}
    for name in ("lab", "notebook7"):
        out = outs[name] = root / f"{name}.json"
        notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, "cells": [
                {"cell_type": "markdown", "metadata": {}, "source": "Draw a digit: the kernel predicts as you draw."},
                _cell("from digitlab.notebook import Sketchpad\n\npad = Sketchpad(model='default')\npad"),
                _cell("import json, pathlib\n\n"
                      f"out = pathlib.Path({str(out)!r})\n\n"
                      "def save(change):\n"
                      "    if change.new is not None:\n"
                      "        out.write_text(json.dumps({'prediction': change.new, 'strokes': pad.strokes}))\n"
                      "pad.observe(save, names='prediction')")]}
        (work / f"{name}.ipynb").write_text(json.dumps(notebook))
    token = secrets.token_hex(16)
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(conf), "JUPYTER_DATA_DIR": str(data),
           "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(settings), "IPYTHONDIR": str(root / "ipython"),
           "DIGITLAB_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]),
           # the kernel is the python of this test (its kernel.json says "python")
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           "OMP_NUM_THREADS": "1"}
    log = (root / "lab.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", f"--port={port}", "--port-retries=0",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--no-browser"],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"jupyter lab exited: {(root / 'lab.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"jupyter lab did not start: {(root / 'lab.log').read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        yield {"base": base, "token": token, "outs": outs, "log": root / "lab.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by playwright."""
    with chromium() as b:
        yield b


def _draw(page, canvas, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw strokes given in 0-1 canvas coordinates with the mouse."""
    box = canvas.bounding_box()
    for stroke in strokes:
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=4)
        page.mouse.up()


ONE = [[(0.52, 0.15), (0.51, 0.5), (0.5, 0.85)]]
SEVEN = [[(0.3, 0.22), (0.7, 0.22), (0.58, 0.5), (0.47, 0.8)]]
ZERO = [[(0.5 + 0.22 * math.sin(t / 24 * 2 * math.pi), 0.5 - 0.32 * math.cos(t / 24 * 2 * math.pi))
         for t in range(25)]]


def _answered(page, out: Path) -> dict[str, object]:
    """Once the widget has its answer to the finished drawing: the prediction the kernel's observer wrote last.

    The page sends the strokes once more when a stroke ends and is busy until the kernel answers that
    update; the kernel's observer writes the file before it answers.
    """
    page.wait_for_function("document.querySelector('.digitlab-sketchpad').dataset.busy === '0'", polling=100)
    assert out.exists(), "the kernel's observer wrote no prediction"
    written: dict[str, object] = json.loads(out.read_text())
    return written


def _open_and_run(page, lab, url: str, outside: list[str]):
    """Open a notebook in the browser, wait for its kernel, run every cell; the sketchpad's root element."""
    page.set_default_timeout(120_000)  # the machine is shared: the first load of the interface can be slow
    page.on("request", lambda req: None if req.url.startswith((lab["base"], "data:", "blob:"))
            else outside.append(req.url))
    page.goto(f"{lab['base']}{url}?token={lab['token']}")
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                           polling=250)
    page.wait_for_function("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status "
                           "=== 'idle'", polling=250)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.locator(".digitlab-sketchpad canvas.dl-canvas").wait_for(state="visible")
    return page.locator(".digitlab-sketchpad")


def _lit(page, cls: str) -> int:
    """Pixels of the widget's 28x28 canvas ``cls`` that are not dark."""
    lit: int = page.evaluate(f"""() => {{
        const c = document.querySelector('.digitlab-sketchpad canvas.{cls}');
        const d = c.getContext('2d').getImageData(0, 0, 28, 28).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 150) n++;
        return n; }}""")
    return lit


def test_digits_drawn_in_jupyterlab_are_predicted_by_the_kernel(lab, browser) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    outside: list[str] = []
    try:
        pad = _open_and_run(page, lab, "/lab/tree/lab.ipynb", outside)
        canvas = pad.locator("canvas.dl-canvas")
        assert pad.locator(".dl-bar").count() == 10
        assert pad.locator(".dl-status").text_content() == "Draw a digit"

        _draw(page, canvas, ONE)
        one = _answered(page, lab["outs"]["lab"])
        assert one["prediction"]["digit"] == 1, one
        assert pad.get_attribute("data-digit") == "1"
        assert pad.locator(".dl-digit").text_content() == "1"
        assert pad.locator(".dl-bar.dl-win").get_attribute("data-digit") == "1"
        probs = one["prediction"]["probabilities"]
        assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-6
        # the stroke as the kernel got it: points on the 280x280 canvas, top to bottom near the middle
        (stroke,) = one["strokes"]
        assert len(stroke) >= 3 and stroke[0][1] < 80 and stroke[-1][1] > 200
        assert all(100 < x < 180 for x, _ in stroke)

        pad.locator("button.dl-clear").click()
        page.wait_for_function("document.querySelector('.digitlab-sketchpad').dataset.digit === ''", polling=100)
        _draw(page, canvas, ZERO)
        zero = _answered(page, lab["outs"]["lab"])
        assert zero["prediction"]["digit"] == 0, zero
        assert len(zero["strokes"]) == 1 and len(zero["strokes"][0]) >= 20
        assert pad.get_attribute("data-digit") == "0"
        # the 28x28 input and the explanation are drawn: neither canvas is all black
        assert _lit(page, "dl-seen") > 20 and _lit(page, "dl-heat") > 20
        shot = os.environ.get("DIGITLAB_SCREENSHOT")
        if shot:
            page.evaluate("window.jupyterapp.shell.collapseLeft()")
            page.mouse.move(0, 0)
            page.wait_for_timeout(500)
            page.screenshot(path=shot, clip={"x": 0, "y": 0, "width": 1100, "height": 690})
        assert outside == [], f"the page reached outside the machine: {outside}"
    finally:
        page.close()


def test_a_digit_drawn_in_notebook_7_is_predicted_by_the_kernel(lab, browser) -> None:
    pytest.importorskip("notebook", reason="Notebook 7 is not installed")
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    outside: list[str] = []
    try:
        pad = _open_and_run(page, lab, "/notebooks/notebook7.ipynb", outside)
        _draw(page, pad.locator("canvas.dl-canvas"), SEVEN)
        seven = _answered(page, lab["outs"]["notebook7"])
        assert seven["prediction"]["digit"] == 7, seven
        assert pad.get_attribute("data-digit") == "7" and pad.locator(".dl-digit").text_content() == "7"
        assert _lit(page, "dl-seen") > 20
        assert outside == [], f"the page reached outside the machine: {outside}"
    finally:
        page.close()
