"""Server-rendered MathML in Chromium: drawn natively under the CSP, readable on a phone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..live import LiveServer, server_env
from .conftest import Session
from .test_accessibility import axe_violations

pytestmark = pytest.mark.browser

LESSON = r"""---
id: maths
title: Softmax and the Chain Rule
duration: 5 min
section: basics
---

Scores $z \in \mathbb{R}^K$ become probabilities:

$$
\operatorname{softmax}(z)_i = \frac{e^{z_i}}{\sum_{j=1}^{K} e^{z_j}}
$$

## The chain rule

$$
\frac{\partial L}{\partial w} = \frac{\partial L}{\partial a} \cdot \frac{\partial a}{\partial z}
\cdot \frac{\partial z}{\partial w} + \lambda \sum_{k=1}^{K} \left( W^{(k)}_{ij} - \bar{W}_{ij}
\right)^2 + \mu \, v_{t-1} - \eta \, \nabla_W L(W^{(1)}, W^{(2)}, W^{(3)}, b^{(1)}, b^{(2)})
$$

Prose amounts stay prose: between $5 and $10.
"""


@pytest.fixture(scope="module")
def math_site(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("math-site")
    content = tmp / "content"
    content.mkdir()
    (content / "maths.md").write_text(LESSON, encoding="utf-8")
    server = LiveServer(server_env(tmp / "data", content), log_path=tmp / "server.log").start()
    yield server
    server.stop()


@pytest.fixture
def phone(browser, math_site, request) -> Iterator[Session]:
    scheme = getattr(request, "param", "light")
    # bypass_csp only lets axe be injected; CSP violations are still reported to the guard
    session = Session(
        browser,
        math_site.url,
        viewport={"width": 390, "height": 844},
        color_scheme=scheme,
        bypass_csp=True,
    )
    yield session
    problems = session.guard.problems()
    session.context.close()
    assert not problems, "\n".join(problems)


def test_chromium_draws_the_mathml_itself_a_fraction_stacked_and_no_script_loaded(phone):
    page = phone.page
    page.goto("/lessons/maths")
    assert page.locator("math").count() == 3
    assert page.locator("script[src*=math], script[src*=katex]").count() == 0
    numerator, denominator = page.locator(".math-display mfrac").first.locator(":scope > *").all()
    top, bottom = numerator.bounding_box(), denominator.bounding_box()
    assert top and bottom and top["y"] + top["height"] <= bottom["y"] + 1  # one above the other
    assert "between $5 and $10" in page.locator(".lesson-body").inner_text()


def test_a_wide_display_formula_scrolls_in_its_box_and_the_phone_page_keeps_its_width(phone):
    page = phone.page
    page.goto("/lessons/maths")
    widths = page.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            viewport: window.innerWidth,
            box: [...document.querySelectorAll('.math-display')].map(
                (el) => [el.scrollWidth, el.clientWidth]),
        })"""
    )
    assert widths["page"] <= widths["viewport"]
    (softmax_scroll, softmax_width), (chain_scroll, chain_width) = widths["box"]
    assert softmax_scroll <= softmax_width  # fits: no scrollbar
    assert chain_scroll > chain_width  # too wide for a phone: scrolls by itself


@pytest.mark.parametrize("phone", ["light", "dark"], indirect=True)
def test_a_lesson_with_mathematics_has_no_serious_accessibility_violation(phone):
    page = phone.page
    page.goto("/lessons/maths")
    page.wait_for_load_state("load")
    assert axe_violations(page) == []
