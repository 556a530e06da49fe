"""Without Chromium the browser tests skip with a reason; with BACKPROP_REQUIRE_BROWSER=1 (CI)
that same situation fails, so CI can never pass without running them."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT


def run_browser_tests(**env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "BACKPROP_CHROMIUM": "/nonexistent/chromium"}
    environment.pop("BACKPROP_REQUIRE_BROWSER", None)  # .ci/run sets it for the outer run
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
         "tests/browser/test_guard.py"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_browser_tests_skip_with_a_reason_where_chromium_is_missing():
    result = run_browser_tests()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "browser tests need Chromium: no Chromium at /nonexistent/chromium" in result.stdout


def test_browser_tests_fail_where_chromium_is_missing_but_required():
    result = run_browser_tests(BACKPROP_REQUIRE_BROWSER="1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BACKPROP_REQUIRE_BROWSER=1 but no Chromium at /nonexistent/chromium" in result.stdout
