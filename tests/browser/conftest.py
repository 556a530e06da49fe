"""Chromium through Playwright against a real uvicorn on 127.0.0.1 with a fresh SQLite file.

Every page is watched: a request to any host but 127.0.0.1 is blocked and recorded, and console
errors (CSP violations included) are recorded; either fails the test at teardown. A failed test
leaves a screenshot and the page's HTML under test-artifacts/.

Where Chromium is missing these tests skip with the reason, unless BACKPROP_REQUIRE_BROWSER=1
(set by .ci/run), where that is a failure: CI cannot pass without running them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ..conftest import FIXTURE_COURSE, ROOT, SEED
from ..live import CHROMIUM, CHROMIUM_ARGS, LiveServer, server_env

ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery"
#: Reports the CSP violations a page sees to the console, where the guard collects them.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


def _unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser():
    reason = _unavailable()
    if reason:
        if os.environ.get("BACKPROP_REQUIRE_BROWSER") == "1":
            pytest.fail(f"BACKPROP_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(f"browser tests need Chromium: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Iterator[LiveServer]:
    """One server for the browser tests: the fixture course plus the seed lesson, a fresh SQLite
    file (whatever TEST_DATABASE_URL says: this is the embedded default a learner runs)."""
    tmp = tmp_path_factory.mktemp("browser-site")
    content = tmp / "content"
    shutil.copytree(FIXTURE_COURSE, content)
    shutil.copy(SEED / "dl-intro-neural-networks.md", content)
    env = {
        **server_env(tmp / "data", content),
        "SECRET_KEY": "browser-tests-secret-key-0123456789",
        "TRAIN_WORKERS": "2",
    }
    server = LiveServer(env, log_path=tmp / "server.log").start()
    yield server
    server.stop()


def create_user(site: LiveServer, name: str, role: str = "learner") -> str:
    """`backprop user create` against the site's database; returns the username."""
    subprocess.run(
        [sys.executable, "-m", "app.cli", "user", "create", name, "--role", role,
         "--password-stdin"],
        input=PASSWORD, text=True, check=True, capture_output=True, cwd=ROOT,
        env={**os.environ, **site.env},
    )  # fmt: skip
    return name


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname == "127.0.0.1"


@dataclass
class Guard:
    """What a browser context did that it must not: requests off 127.0.0.1, console errors."""

    foreign: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    requests: int = 0
    #: Console errors a test provokes on purpose (e.g. an expected 4xx), matched by regex.
    allowed: list[str] = field(default_factory=list)

    def on_request(self, request) -> None:
        self.requests += 1
        if not is_local(request.url):
            self.foreign.append(request.url)

    def on_console(self, message) -> None:
        text = message.text
        if message.type == "error" or "Content Security Policy" in text:
            if not any(re.search(p, text) for p in self.allowed):
                self.console.append(f"{message.type}: {text} ({message.location.get('url')})")

    def on_page_error(self, error) -> None:
        self.console.append(f"uncaught: {error}")

    def problems(self) -> list[str]:
        return [f"request left 127.0.0.1: {u}" for u in self.foreign] + [
            f"console {c}" for c in self.console
        ]


class Session:
    """A fresh browser context (its own cookies) and page, watched by a Guard."""

    def __init__(self, browser, base_url: str, **options) -> None:
        self.guard = Guard()
        self.context = browser.new_context(base_url=base_url, **options)
        self.context.set_default_timeout(15_000)
        self.context.add_init_script(CSP_REPORTER)
        self.context.on("request", self.guard.on_request)
        self.context.route(lambda url: not is_local(url), lambda route: route.abort())
        self.context.on("page", self._watch)
        self.page = self.context.new_page()

    def _watch(self, page) -> None:
        page.on("console", self.guard.on_console)
        page.on("pageerror", self.guard.on_page_error)

    def save_artifacts(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[-150:]
        for index, page in enumerate(self.context.pages):
            suffix = f"-{index}" if index else ""
            try:
                page.screenshot(path=ARTIFACTS / f"{stem}{suffix}.png")
                (ARTIFACTS / f"{stem}{suffix}.html").write_text(page.content())
            except Exception as exc:  # a crashed page must not hide the test's own failure
                (ARTIFACTS / f"{stem}{suffix}.txt").write_text(f"could not save: {exc}\n")


@pytest.fixture
def open_session(browser, site, request) -> Iterator:
    """`open_session(**context_options)` → a watched Session; checked and closed at teardown."""
    sessions: list[Session] = []

    def factory(**options) -> Session:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        session = Session(browser, site.url, **options)
        sessions.append(session)
        return session

    yield factory
    failed = any(
        getattr(request.node, f"report_{when}", None) is not None
        and getattr(request.node, f"report_{when}").failed
        for when in ("setup", "call")
    )
    problems = [p for s in sessions for p in s.guard.problems()]
    if failed or problems:
        for index, session in enumerate(sessions):
            session.save_artifacts(f"{request.node.nodeid}-{index}")
    for session in sessions:
        session.context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture
def session(open_session) -> Session:
    return open_session()


@pytest.fixture
def page(session):
    return session.page
