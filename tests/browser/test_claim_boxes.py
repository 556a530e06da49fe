"""A lesson's claim boxes in Chromium: not yet verified, then verified by `check --run` against
the running server's data folder; accessible in both schemes, and linking to the playground."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..conftest import ROOT
from ..live import LiveServer, server_env
from .conftest import Session
from .test_accessibility import axe_violations

pytestmark = pytest.mark.browser

FIXTURE = ROOT / "tests" / "fixtures" / "claims"


@pytest.fixture
def claim_site(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A server for the claims fixture alone, and the environment it runs in."""
    content = tmp_path / "content"
    shutil.copytree(FIXTURE, content)
    env = {**server_env(tmp_path / "data", content), "SECRET_KEY": "claims-" + "k" * 32}
    server = LiveServer(env, log_path=tmp_path / "server.log").start()
    yield server, {**os.environ, **env}
    server.stop()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_claim_boxes_read_well_before_and_after_verification(browser, claim_site, scheme):
    server, env = claim_site
    session = Session(
        browser,
        server.url,
        color_scheme=scheme,
        bypass_csp=True,  # only so that axe can be injected
        viewport={"width": 1280, "height": 900},
    )
    try:
        page = session.page
        page.goto("/lessons/claims-demo")
        boxes = page.get_by_role("note", name="Claim checked by training")
        expect(boxes).to_have_count(2)
        expect(boxes.first).to_contain_text("Not yet verified")
        assert axe_violations(page) == []

        # the same data folder and environment as the server: its engine, its store
        check = subprocess.run(
            [sys.executable, "-m", "app.cli", "check", "--run"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        page.reload()
        expect(boxes.first).to_contain_text("holds. Verified")
        expect(boxes.nth(1)).to_contain_text("status diverged == diverged")
        expect(page.locator(".claim-holds")).to_have_count(2)
        assert axe_violations(page) == []

        boxes.first.get_by_role("link", name="Try it in the playground").click()
        page.wait_for_url("**/playground?*")
        assert "dataset=xor" in page.url and "hidden_layers=8" in page.url
        assert "learning_rate=0.5" in page.url and "epochs=8" in page.url
        assert session.guard.problems() == []
    finally:
        session.context.close()
