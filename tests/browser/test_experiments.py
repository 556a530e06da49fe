"""An experiment question in Chromium: labelled inputs per free field, the form round trip
without JavaScript, the review's curves, terms and playground link, and axe on both pages."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..live import LiveServer, server_env
from .test_accessibility import axe_violations

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).parent.parent / "fixtures" / "experiments" / "experiment.md"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[LiveServer]:
    """A server of its own serving only the experiment lesson."""
    tmp = tmp_path_factory.mktemp("experiments-site")
    content = tmp / "content"
    content.mkdir()
    shutil.copy(FIXTURE, content / FIXTURE.name)
    env = {
        **server_env(tmp / "data", content),
        "SECRET_KEY": "browser-experiments-secret-0123456789",
        "TRAIN_WORKERS": "1",
    }
    server = LiveServer(env, log_path=tmp / "server.log").start()
    yield server
    server.stop()


def test_without_javascript_an_experiment_is_chosen_by_label_trained_and_reviewed(open_session):
    page = open_session(java_script_enabled=False).page
    page.goto("/lessons/experiment")
    question = page.locator("form.quiz fieldset").first
    expect(question.locator(".run-config")).to_contain_text("Fixed by the lesson")
    question.get_by_label("Hidden layers").fill("8")
    question.get_by_label("Activation").select_option("tanh")
    question.get_by_label("Learning rate").fill("0.5")
    with page.expect_navigation():
        page.get_by_role("button", name="Check my answers").click()
    review = page.locator(".experiment-review")
    expect(review).to_contain_text("Status: completed after 30 epochs")
    expect(review.locator("svg.run-chart")).to_have_count(2)
    expect(review.locator(".goal-terms li.term-held")).to_have_count(2)
    link = review.get_by_role("link", name="Try it in the playground")
    with page.expect_navigation():
        link.click()
    assert "hidden_layers=8" in page.url and "learning_rate=0.5" in page.url


def test_an_experiment_form_and_its_review_have_no_serious_accessibility_findings(open_session):
    page = open_session(bypass_csp=True).page  # only so that axe can be injected
    page.goto("/lessons/experiment")
    page.wait_for_load_state("load")
    assert axe_violations(page) == []
    unlabelled = page.eval_on_selector_all(
        "form.quiz input:not([type=hidden]), form.quiz select",
        "cs => cs.filter(c => !(c.labels && c.labels.length)).map(c => c.outerHTML)",
    )
    assert unlabelled == []
    question = page.locator("form.quiz fieldset").first
    question.get_by_label("Hidden layers").fill("2")
    question.get_by_label("Activation").select_option("relu")
    question.get_by_label("Learning rate").fill("0.01")
    with page.expect_navigation():
        page.get_by_role("button", name="Check my answers").click()
    expect(page.locator(".goal-terms li.term-missed")).to_have_count(1)
    assert axe_violations(page) == []
