"""End to end: uvicorn on 127.0.0.1, the MLPaint page in headless Chromium, digits drawn with the mouse.

Set ``DIGITLAB_SCREENSHOT=docs/mlpaint.png`` to save a screenshot of the page (used by the README).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from _browser import chromium, free_port, uvicorn_thread

pytestmark = pytest.mark.timeout(120)
_free_port = free_port  # the name the other browser tests import


@pytest.fixture(scope="module")
def server(settings) -> Iterator[str]:
    """The app served by uvicorn in a thread on a free port; stopped at the end."""
    from digitlab.models.io import bundled_dir
    from digitlab.serve import create_app

    if (bundled_dir() / "card.json").is_file():  # show the bundled CNN when it is there
        from dataclasses import replace
        settings = replace(settings, default_model="default")
    with uvicorn_thread(create_app(settings), start_timeout=30) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by playwright."""
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, server):
    """A fresh desktop-sized page on MLPaint, models listed."""
    pg = browser.new_page(viewport={"width": 1200, "height": 760})
    pg.set_default_timeout(60_000)  # the machine may be busy; waits end as soon as the page is ready
    pg.goto(server + "/")
    _wait(pg, "document.querySelectorAll('#model option').length > 0")
    yield pg
    pg.close()


def _wait(page, condition: str) -> None:
    """Wait for a JS condition, polling on a timer (not animation frames); on timeout say what the page shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, polling=100)
    except PlaywrightTimeout:
        status = page.locator("#status").text_content()
        raise AssertionError(f"page never reached {condition!r}; status line: {status!r}, digit: "
                             f"{page.locator('#digit').text_content()!r}") from None


def _draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw strokes given in 0-1 canvas coordinates with the mouse."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=3)
        page.mouse.up()


ONE = [[(0.52, 0.18), (0.51, 0.5), (0.5, 0.82)]]
ZERO = [[(0.5 + 0.2 * math.sin(t / 24 * 2 * math.pi), 0.5 - 0.3 * math.cos(t / 24 * 2 * math.pi))
         for t in range(25)]]
SEVEN = [[(0.3, 0.22), (0.7, 0.22), (0.58, 0.5), (0.47, 0.8)]]
THREE = [[(0.32, 0.22), (0.5, 0.17), (0.66, 0.25), (0.62, 0.4), (0.48, 0.48), (0.64, 0.56), (0.68, 0.7),
          (0.52, 0.82), (0.32, 0.78)]]


def _predicted(page) -> str:
    """The digit shown once the last request (sent when the stroke ended) has been answered."""
    _wait(page, "document.body.dataset.busy === '0' && document.querySelector('.bar.win') !== null")
    return page.locator("#digit").text_content()


@pytest.mark.parametrize("strokes, digit", [(ONE, "1"), (ZERO, "0")], ids=["one", "zero"])
def test_drawn_digit_is_recognised_and_bars_appear(page, strokes, digit) -> None:
    _draw(page, strokes)
    assert _predicted(page) == digit
    assert page.locator(".bar.win .d").text_content() == digit
    widths = page.eval_on_selector_all(".bar .fill", "els => els.map(e => e.getBoundingClientRect().width)")
    assert len(widths) == 10 and max(widths) == widths[int(digit)] and max(widths) > 20
    # the 28x28 view shows ink
    ink = page.evaluate("(() => { const d = document.querySelector('#seen').getContext('2d')"
                        ".getImageData(0, 0, 28, 28).data; let s = 0; for (let i = 0; i < d.length; i += 4) "
                        "s += d[i]; return s; })()")
    assert ink > 0


def test_live_predictions_never_have_two_requests_in_flight(page) -> None:
    page.evaluate("""() => {
        window.__live = {inFlight: 0, maxInFlight: 0, sent: 0};
        const orig = window.fetch;
        window.fetch = async (...args) => {
            if (!String(args[0]).includes('/v1/predict')) return orig(...args);
            const l = window.__live; l.sent++; l.inFlight++; l.maxInFlight = Math.max(l.maxInFlight, l.inFlight);
            try { return await orig(...args); } finally { l.inFlight--; }
        };
    }""")
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    for i in range(40):  # a slow stroke: ~1.2 s of drawing
        page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + (0.15 + 0.7 * i / 39) * box["height"])
        page.wait_for_timeout(30)
    sent_while_drawing = page.evaluate("window.__live.sent")
    page.mouse.up()
    assert _predicted(page) == "1"
    live = page.evaluate("window.__live")
    assert sent_while_drawing >= 2 and live["sent"] > sent_while_drawing  # live updates, then once more at the end
    assert live["maxInFlight"] == 1


def test_click_a_bar_explains_that_digit_then_undo_and_clear(page) -> None:
    _draw(page, SEVEN)
    _predicted(page)
    page.locator('.bar[data-digit="3"]').click()
    _wait(page, "document.querySelector('#heat-caption').textContent.includes('Why 3')")
    assert page.locator(".bar.explained .d").text_content() == "3"
    page.locator("#undo").click()
    _wait(page, "document.querySelector('#digit').textContent === '?'")
    _draw(page, ONE)
    assert _predicted(page) == "1"
    page.locator("#clear").click()
    assert page.locator("#digit").text_content() == "?"


def test_random_mnist_digit_is_shown_and_classified(page) -> None:
    page.locator("#random").click()
    _wait(page, "document.querySelector('#status').textContent.includes('MNIST test image')")
    assert _predicted(page) in list("0123456789")


def test_phone_screen_draws_without_scrolling(browser, server) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(server + "/")
    assert pg.eval_on_selector("#pad", "e => getComputedStyle(e).touchAction") == "none"
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    _draw(pg, ONE)
    assert _predicted(pg) == "1"
    ctx.close()


def test_screenshot_for_the_readme(page) -> None:
    """Draw a 3 and save a screenshot when DIGITLAB_SCREENSHOT names a file."""
    _draw(page, THREE)
    assert _predicted(page) == "3"
    _wait(page, "document.querySelector('#heat-caption').textContent.includes('Why 3')")
    target = os.environ.get("DIGITLAB_SCREENSHOT")
    if target:
        page.screenshot(path=target, full_page=True)
        assert Path(target).stat().st_size > 10_000


# ---- issue 12: the kept-out writers' pen digits drawn on the page, as mouse and as touch movements ----------
#: Every 5th digit of the 3 kept-out writers (150 of 749), so each hand and every digit are drawn.
_DRAWN_STEP = 5
#: The page must read at least this share right (the API reads the same strokes; BENCHMARKS.md has both).
_PAGE_FLOOR = 0.95


def _kept_out_canvas_strokes(pen_digits) -> tuple[list[list[list[float]]], list[int]]:
    """The kept-out writers' digits as canvas strokes (280 px canvas, 70 % high, centred: digitlab.pen)."""
    import numpy as np

    from digitlab.pen import KEPT_OUT_WRITERS, Placement, to_canvas

    rows = np.flatnonzero(np.isin(pen_digits.writers, KEPT_OUT_WRITERS))[::_DRAWN_STEP]
    return ([[c.tolist() for c in to_canvas(pen_digits.strokes[i], Placement())] for i in rows],
            [int(pen_digits.labels[i]) for i in rows])


def _read_after_clear(page) -> str:
    digit = _predicted(page)
    page.locator("#clear").click()
    _wait(page, "document.querySelector('.bar.win') === null && document.body.dataset.busy === '0'")
    return digit


@pytest.mark.timeout(600)
@pytest.mark.parametrize("pointer", ["mouse", "touch"])
def test_kept_out_writers_digits_drawn_on_the_page_are_read(browser, server, pen_digits, pointer) -> None:
    strokes, labels = _kept_out_canvas_strokes(pen_digits)
    context = browser.new_context(viewport={"width": 1200, "height": 760}, has_touch=pointer == "touch")
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(server + "/")
    _wait(pg, "document.querySelectorAll('#model option').length > 0")
    assert pg.locator("#pen").input_value() == "20"                # the page's default pen
    assert pg.evaluate("[document.querySelector('#pad').width, document.querySelector('#pad').height]") == [280, 280]
    box = pg.locator("#pad").bounding_box()
    scale_x, scale_y = box["width"] / 280, box["height"] / 280     # canvas px -> CSS px: the canvas is scaled
    cdp = context.new_cdp_session(pg) if pointer == "touch" else None
    right = 0
    for digit_strokes, label in zip(strokes, labels, strict=True):
        for stroke in digit_strokes:
            points = [(box["x"] + x * scale_x, box["y"] + y * scale_y) for x, y in stroke]
            if cdp is None:
                pg.mouse.move(*points[0])
                pg.mouse.down()
                for p in points[1:]:
                    pg.mouse.move(*p)
                pg.mouse.up()
            else:
                cdp.send("Input.dispatchTouchEvent",
                         {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
                for x, y in points[1:]:
                    cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
                cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        right += _read_after_clear(pg) == str(label)
    context.close()
    assert right / len(labels) >= _PAGE_FLOOR, f"{pointer}: {right} of {len(labels)} read right"
