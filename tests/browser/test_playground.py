"""The playground in Chromium: a live digits run that Stop stops, a 2-D decision boundary, and a
configuration that travels in the URL."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

CHART = "#chart canvas"
#: The epoch the page shows ("12/1000" → 12; "–" → NaN, which compares false).
EPOCH = "parseInt(document.getElementById('m-epoch').textContent)"


def chart_pixels(page: Page) -> str:
    return page.locator(CHART).first.evaluate("c => c.toDataURL()")


def epoch_shown(page: Page) -> int:
    text = page.locator("#m-epoch").text_content()
    return int(text.split("/")[0]) if "/" in text else 0


def test_a_digits_run_draws_its_loss_live_and_stop_stops_it(page: Page):
    # small batches, many epochs: about ten seconds of training, still going when we press Stop
    page.goto("/playground?dataset=digits&hidden_layers=64,32&epochs=1000&batch_size=8")
    expect(page.locator("#f-dataset")).to_have_value("digits")
    blank = chart_pixels(page)
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    expect(page.locator("#status")).to_contain_text("Training… epoch", timeout=30_000)

    page.wait_for_function(f"() => ({EPOCH}) >= 2")
    early, early_pixels = epoch_shown(page), chart_pixels(page)
    assert early_pixels != blank
    page.wait_for_function(f"() => ({EPOCH}) >= {early + 2}")
    # The chart redraws on the next animation frame, which a busy machine may run late: wait
    # (bounded) for the canvas to move on, then check that training was still going.
    page.wait_for_function(
        f"before => document.querySelector('{CHART}').toDataURL() !== before",
        arg=early_pixels,
        timeout=15_000,
    )
    expect(page.locator("#status")).to_contain_text("Training… epoch")
    assert page.locator("#m-loss").text_content() not in ("–", "not finite")

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#status")).to_have_text(re.compile("^Stopped"))
    expect(page.get_by_role("button", name="Start training")).to_be_enabled()
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    stopped_at = epoch_shown(page)
    assert 2 <= stopped_at < 1000
    page.wait_for_timeout(1000)
    assert epoch_shown(page) == stopped_at  # nothing arrives after Stop


def test_a_two_dimensional_run_draws_its_decision_boundary(page: Page):
    page.goto("/playground?dataset=moons&hidden_layers=16,16&epochs=60&batch_size=32")
    expect(page.locator("#boundary-card")).to_be_hidden()
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#status")).to_contain_text("Done in", timeout=60_000)
    expect(page.locator("#boundary-card")).to_be_visible()
    expect(page.locator("#m-epoch")).to_have_text("60/60")
    colours = page.locator("#boundary").evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);
        return seen.size; }"""
    )
    assert colours >= 3  # two class regions and the points, not a blank canvas
    test_accuracy = float(page.locator("#m-test").text_content().rstrip("%"))
    assert test_accuracy >= 80
    expect(page.locator("#confusion tbody tr")).to_have_count(2)


def test_a_shared_playground_url_restores_the_whole_configuration(open_session):
    page = open_session().page
    page.goto("/playground")
    page.locator("#f-dataset").select_option("spiral")
    page.locator("#f-noise").fill("0.15")
    page.locator("#f-hidden").fill("24, 12")
    page.locator("#f-activation").select_option("tanh")
    page.locator("#f-init").select_option("xavier")
    page.locator("#f-epochs").fill("77")
    page.locator("#f-lr").fill("0.3")
    page.locator("#f-batch").fill("full")
    page.locator("#f-momentum").fill("0.5")
    page.locator("#f-seed").fill("7")
    # the address bar, as the page's own script left it (Playwright's page.url lags
    # history.replaceState by an event)
    shared = page.evaluate("location.href")
    query = parse_qs(urlsplit(shared).query)
    assert query["dataset"] == ["spiral"] and query["hidden_layers"] == ["24,12"]
    assert query["batch_size"] == ["full"] and query["epochs"] == ["77"]

    other = open_session().page  # someone else opens the link
    other.goto(shared)
    expected = {
        "#f-dataset": "spiral",
        "#f-noise": "0.15",
        "#f-hidden": "24,12",
        "#f-activation": "tanh",
        "#f-init": "xavier",
        "#f-epochs": "77",
        "#f-lr": "0.3",
        "#f-batch": "full",
        "#f-momentum": "0.5",
        "#f-seed": "7",
    }
    for selector, value in expected.items():
        expect(other.locator(selector)).to_have_value(value)
    expect(other.locator("#network title")).to_contain_text("2 → 24 → 12 → 3")
    assert other.evaluate("location.href") == shared
