"""The page's correction flow, profile and compare view in headless Chromium (issue 15).

uvicorn serves the centroid model (default) and the bundled CNN, compared side by side, over a store of
its own; the digits are drawn with the mouse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from _browser import chromium, uvicorn_thread

from .test_e2e import SEVEN, THREE, _draw, _predicted, _wait

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def server(settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from digitlab.serve import create_app

    learn = replace(settings, store_path=tmp_path_factory.mktemp("page-store") / "digitlab.duckdb",
                    models=("default",))
    with uvicorn_thread(create_app(learn)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})  # its own local storage
    yield ctx
    ctx.close()


def _open(context, server: str):
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server + "/")
    _wait(page, "document.querySelectorAll('#model option').length > 0")
    return page


def _choose_profile(page, name: str) -> None:
    page.fill("#profile", name)
    page.press("#profile", "Enter")  # blurs the field: its change event chooses the profile


def test_a_correction_is_stored_counted_and_then_read_right_under_the_profile(context, server: str) -> None:
    page = _open(context, server)
    _choose_profile(page, "page-ann")
    _wait(page, "document.getElementById('profile-info').textContent === 'new'")
    _draw(page, SEVEN)
    said = _predicted(page)
    label = str((int(said) + 3) % 10)  # a digit the model did not say
    assert page.locator(f"#correct-digits button[data-digit='{said}']").get_attribute("class") == "said"
    page.click(f"#correct-digits button[data-digit='{label}']")
    _wait(page, "document.getElementById('profile-info').dataset.count === '1'")
    assert f"stored as a {label}" in page.locator("#correct-done").text_content()
    assert "page-ann now has 1 drawing" in page.locator("#status").text_content()
    assert httpx.get(f"{server}/v1/profiles/page-ann").json()["count"] == 1  # in the store
    # the page reads the same drawing again, under the profile: it has learnt it
    _wait(page, f"document.body.dataset.busy === '0' && document.getElementById('digit').textContent === '{label}'")
    assert "adapted to page-ann (1)" in page.locator("#timing").text_content()
    # a second correction raises the count again
    page.click("#clear")
    _draw(page, THREE)
    said = _predicted(page)
    page.click(f"#correct-digits button[data-digit='{(int(said) + 1) % 10}']")
    _wait(page, "document.getElementById('profile-info').dataset.count === '2'")
    assert httpx.get(f"{server}/v1/profiles/page-ann").json()["count"] == 2
    page.close()


def test_the_profile_is_kept_in_local_storage_and_can_be_forgotten(context, server: str) -> None:
    page = _open(context, server)
    _choose_profile(page, "page-bob")
    _draw(page, SEVEN)
    said = _predicted(page)
    page.click(f"#correct-digits button[data-digit='{said}']")
    _wait(page, "document.getElementById('profile-info').dataset.count === '1'")
    page.close()

    page = _open(context, server)  # the next visit remembers the profile
    assert page.input_value("#profile") == "page-bob"
    _wait(page, "document.getElementById('profile-info').dataset.count === '1'")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#forget")
    _wait(page, "document.getElementById('profile-info').textContent === 'new'")
    assert "page-bob forgotten (1 drawings deleted)" in page.locator("#status").text_content()
    assert httpx.get(f"{server}/v1/profiles/page-bob").status_code == 404
    _choose_profile(page, "bad name!")  # refused, said so, and the profile stays as it was
    assert "1-64 letters" in page.locator("#status").text_content()
    assert page.evaluate("localStorage.getItem('mlpaint.profile')") == "page-bob"
    _choose_profile(page, "")  # none
    assert page.evaluate("localStorage.getItem('mlpaint.profile')") is None
    page.close()


def test_the_compare_view_shows_every_models_answer_live(context, server: str) -> None:
    page = _open(context, server)
    assert page.locator("#compare").is_hidden()
    page.click("#compare-toggle")
    assert page.locator("#compare").is_visible()
    assert page.eval_on_selector_all(".cmp", "els => els.map(e => e.dataset.model)") == ["centroid", "default"]
    _draw(page, SEVEN)
    _wait(page, "[...document.querySelectorAll('.cmp')].every(e => e.dataset.digit !== undefined "
                "&& e.dataset.busy === '0')")
    cards = page.eval_on_selector_all(".cmp", "els => els.map(e => ({model: e.dataset.model, "
                                               "digit: e.querySelector('.digit').textContent, "
                                               "p: e.querySelector('.p').textContent}))")
    assert {c["model"] for c in cards} == {"centroid", "default"}
    for c in cards:
        assert c["digit"] in "0123456789" and c["p"].endswith("%") and 0 < float(c["p"][:-1]) <= 100
    default = next(c for c in cards if c["model"] == "default")
    assert default["digit"] == "7"  # the bundled CNN reads the seven
    # updated live: a new drawing gives new answers; clearing blanks them
    page.click("#clear")
    _wait(page, "[...document.querySelectorAll('.cmp .digit')].every(e => e.textContent === '–')")
    _draw(page, THREE)
    _wait(page, "[...document.querySelectorAll('.cmp')].every(e => e.dataset.digit !== undefined "
                "&& e.dataset.busy === '0')")
    assert page.eval_on_selector(".cmp[data-model='default']", "e => e.dataset.digit") == "3"
    page.click("#compare-toggle")
    assert page.locator("#compare").is_hidden()
    page.close()
