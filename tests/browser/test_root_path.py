"""A learner's whole journey in Chromium under /backprop, through a proxy that strips the prefix
(nginx `proxy_pass http://127.0.0.1:PORT/;`): every link, form, redirect, stylesheet, script and
fetch must stay under the prefix; the proxy answers anything else with a 404 and records it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from app.content import load_course

from ..conftest import SEED
from ..live import LiveServer, server_env
from ..proxy import PrefixProxy
from .conftest import PASSWORD, Session
from .test_journeys import _text

pytestmark = pytest.mark.browser

PREFIX = "/backprop"
SEED_ID = "dl-intro-neural-networks"
SEED_QUIZ = load_course(SEED).get(SEED_ID).quiz


@pytest.fixture(scope="module")
def proxied_site(tmp_path_factory) -> Iterator[PrefixProxy]:
    """uvicorn with ROOT_PATH=/backprop on the seed course, reached only through the proxy."""
    tmp = tmp_path_factory.mktemp("root-path-site")
    env = {
        **server_env(tmp / "data", SEED),
        "SECRET_KEY": "root-path-tests-secret-key-0123456789",
        "ROOT_PATH": PREFIX,
        "TRAIN_WORKERS": "1",
    }
    server = LiveServer(env, log_path=tmp / "server.log").start()
    proxy = PrefixProxy(server.port, PREFIX).start()
    yield proxy
    proxy.stop()
    server.stop()


def test_a_learner_registers_reads_answers_trains_and_logs_out_under_a_sub_path(
    browser, proxied_site: PrefixProxy, request
):
    site = proxied_site.url
    session = Session(browser, site + "/", viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    failed: list[str] = []
    session.context.on("request", lambda r: requested.append(r.url))
    session.context.on(
        "response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    page = session.page
    try:
        page.goto(site + "/")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Learn neural networks by building one"
        )
        page.get_by_role("link", name="Register").first.click()
        expect(page).to_have_url(f"{site}/register")
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("link", name="ada")).to_be_visible()
        expect(page).to_have_url(f"{site}/")

        page.get_by_role("link", name="Introduction to Neural Networks").click()
        expect(page).to_have_url(f"{site}/lessons/{SEED_ID}")
        keyword = page.locator(".highlight .k").first  # the stylesheets came through the prefix
        plain = page.locator(".lesson-body p").first.evaluate("e => getComputedStyle(e).color")
        assert keyword.evaluate("e => getComputedStyle(e).color") != plain
        fieldsets = page.locator("form.quiz fieldset").all()
        for question, fieldset in zip(SEED_QUIZ.questions, fieldsets, strict=True):
            # by label: the inputs carry this learner's own option ids, not the content's
            fieldset.get_by_label(_text(question.correct_option.html), exact=True).check()
        page.get_by_role("button", name="Check my answers").click()
        expect(page).to_have_url(f"{site}/lessons/{SEED_ID}/quiz")
        expect(page.get_by_role("status")).to_contain_text("5 of 5 correct")

        page.get_by_role("link", name="your attempt history").click()
        expect(page).to_have_url(f"{site}/me")
        expect(page.locator("main")).to_contain_text("Introduction to Neural Networks")

        page.get_by_role("link", name="Playground").click()
        expect(page).to_have_url(re.compile(f"^{re.escape(site)}/playground"))
        page.locator("#f-dataset").select_option("moons")
        page.locator("#f-hidden").fill("8")
        page.locator("#f-epochs").fill("20")
        page.get_by_role("button", name="Start training").click()
        expect(page.locator("#status")).to_contain_text("Done in", timeout=60_000)
        expect(page.locator("#m-epoch")).to_have_text("20/20")
        assert page.url.startswith(f"{site}/playground?dataset=moons")  # the shared URL too

        page.get_by_role("link", name="API").first.click()
        expect(page).to_have_url(f"{site}/docs")
        expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)  # openapi.json

        page.go_back()  # /docs has no site nav: back to the playground's
        expect(page).to_have_url(re.compile(f"^{re.escape(site)}/playground"))
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("link", name="Log in").first).to_be_visible()
        expect(page).to_have_url(f"{site}/")
    except BaseException:
        session.save_artifacts(request.node.nodeid)
        raise
    finally:
        problems = session.guard.problems()
        session.context.close()

    assert f"{site}/train" in requested
    assert proxied_site.outside == []
    outside = [u for u in requested if not u.startswith(site + "/")]
    assert outside == [], outside
    assert failed == []
    assert problems == []
