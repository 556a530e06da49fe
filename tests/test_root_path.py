"""ROOT_PATH: served under /backprop behind a proxy, every URL the site hands out keeps the prefix.

Two proxies: nginx's `proxy_pass http://127.0.0.1:8000/;` strips the prefix (the app is asked
for `/me` and answers as `/backprop/me`); one that keeps it passes `/backprop/me` on. The client
of `proxied` sees the site as a browser does, at http://testserver/backprop/, so its cookies
(scoped to the prefix) come back; tests/browser/test_root_path.py drives the same through
Chromium and a real prefix-stripping proxy.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from .accounts_util import PASSWORD, SEED, answers, browser_login, csrf, ids_of, register

ROOT = "/backprop"
#: Every URL in a page: href, src, action, and the data-root the scripts build theirs from.
URL_ATTRIBUTES = re.compile(r'\b(href|src|action)="([^"]*)"')


@pytest.fixture
def proxied(make_app):
    """The site as a browser sees it through the proxy: every request under the prefix."""
    with TestClient(make_app(root_path=ROOT), base_url=f"http://testserver{ROOT}") as client:
        yield client


@pytest.fixture
def stripped(make_app):
    """Requests as a prefix-stripping proxy passes them on: `/me` for `/backprop/me`."""
    with TestClient(make_app(root_path=ROOT)) as client:
        yield client


def site_urls(html: str) -> list[str]:
    """The page's URLs that point into this site (not `#anchors`, not other hosts)."""
    found = [url for _, url in URL_ATTRIBUTES.findall(html)]
    return [u for u in found if not u.startswith(("#", "https://", "http://", "data:"))]


def assert_all_under_root(path: str, html: str) -> None:
    urls = site_urls(html)
    assert urls, path
    outside = [u for u in urls if not u.startswith(ROOT + "/")]
    assert not outside, f"{path} links outside {ROOT}: {outside}"


def test_a_trailing_slash_on_root_path_is_the_same_prefix(make_settings):
    assert make_settings(root_path="/backprop/").root_path == "/backprop"
    assert make_settings(root_path="/").root_path == ""


@pytest.mark.parametrize("bad", ["backprop", "/back prop", "/a//b", "/x?y"])
def test_a_root_path_that_is_not_a_plain_path_is_refused(make_settings, bad):
    with pytest.raises(ValueError, match="root_path"):
        make_settings(root_path=bad)


def test_every_link_form_script_and_stylesheet_of_a_guests_pages_is_under_the_prefix(stripped):
    pages = ["/", f"/lessons/{SEED}", "/playground", "/login", "/register", "/docs", "/nowhere"]
    for path in pages:
        response = stripped.get(path)
        assert response.status_code in (200, 404), path
        assert_all_under_root(path, response.text)
        assert f'data-root="{ROOT}"' in response.text, path


def test_every_url_of_a_learners_pages_and_quiz_review_is_under_the_prefix(proxied):
    register(proxied, "ada")
    login = browser_login(proxied, "ada")
    assert login.headers["location"] == f"{ROOT}/"
    quiz = proxied.app.state.course.get(SEED).quiz
    review = proxied.post(
        f"/lessons/{SEED}/quiz",
        data={**answers(quiz, right=5, ids=ids_of(proxied, quiz)), "csrf_token": csrf(proxied)},
    )
    assert "Saved to" in review.text
    assert_all_under_root("quiz review", review.text)
    for path in ["/", f"/lessons/{SEED}", "/me"]:
        page = proxied.get(path)
        assert page.status_code == 200 and f'action="{ROOT}/logout"' in page.text, path
        assert_all_under_root(path, page.text)


def test_a_page_that_needs_a_login_redirects_within_the_prefix_and_comes_back(proxied, stripped):
    assert stripped.get("/me", follow_redirects=False).headers["location"] == (
        f"{ROOT}/login?next=/me"
    )
    to_login = proxied.get("/me", follow_redirects=False)
    assert (to_login.status_code, to_login.headers["location"]) == (
        303,
        f"{ROOT}/login?next=/me",
    )
    register(proxied, "ada")
    form = {"username": "ada", "password": PASSWORD, "csrf_token": csrf(proxied), "next": "/me"}
    back = proxied.post("/login", data=form, follow_redirects=False)
    assert back.headers["location"] == f"{ROOT}/me"
    logout = proxied.post(
        "/logout", data={"csrf_token": csrf(proxied, "/")}, follow_redirects=False
    )
    assert logout.headers["location"] == f"{ROOT}/"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_next_still_refuses_other_sites_under_a_prefix(proxied, target):
    register(proxied, "ada")
    form = {"username": "ada", "password": PASSWORD, "csrf_token": csrf(proxied), "next": target}
    response = proxied.post("/login", data=form, follow_redirects=False)
    assert response.headers["location"] == f"{ROOT}/"


def test_the_cookies_are_scoped_to_the_prefix(proxied):
    register(proxied, "ada")
    response = browser_login(proxied, "ada")
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("bp_session="))
    assert f"Path={ROOT}/" in session
    # the visitor cookie (issued by the login form), sent back under the prefix: no new one
    assert proxied.get(f"/lessons/{SEED}").headers.get("set-cookie") is None
    with TestClient(proxied.app) as fresh:
        issued = fresh.get(f"/lessons/{SEED}").headers["set-cookie"]
    assert issued.startswith("bp_visitor=") and f"Path={ROOT}/" in issued


@pytest.mark.parametrize("client_fixture", ["proxied", "stripped"])
def test_static_files_favicon_and_api_urls_carry_the_prefix(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    assert client.get("/static/css/site.css").status_code == 200
    favicon = client.get("/favicon.ico", follow_redirects=False)
    assert favicon.headers["location"] == f"{ROOT}/static/favicon.svg"
    lessons = client.get("/api/lessons").json()
    assert {lesson["url"] for lesson in lessons} == {
        f"{ROOT}/lessons/{lesson['id']}" for lesson in lessons
    }
    assert f"{ROOT}/lessons/{SEED}" in {lesson["url"] for lesson in lessons}
    assert client.get(f"/api/lessons/{SEED}").json()["url"] == f"{ROOT}/lessons/{SEED}"


def test_openapi_under_a_prefix_names_it_as_the_server_and_in_the_token_url(proxied, client):
    schema = proxied.get("/openapi.json").json()
    assert schema["servers"] == [{"url": ROOT}]
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == f"{ROOT}/api/auth/token"
    plain = client.get("/openapi.json").json()  # the same app at the top of a host: untouched
    assert "servers" not in plain
    assert (
        plain["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"][
            "tokenUrl"
        ]
        == "/api/auth/token"
    )


def test_under_a_prefix_api_errors_are_json_and_private_pages_are_not_cached(proxied):
    missing = proxied.get("/api/lessons/nope")
    assert missing.status_code == 404 and missing.json() == {"detail": "no lesson with id 'nope'"}
    register(proxied, "ada")
    issued = proxied.post("/api/auth/token", data={"username": "ada", "password": PASSWORD})
    assert issued.status_code == 200 and issued.headers["cache-control"] == "private, no-store"
    browser_login(proxied, "ada")
    assert proxied.get("/me").headers["cache-control"] == "private, no-store"
    assert proxied.get("/api/me").headers["cache-control"] == "private, no-store"


def test_under_a_prefix_an_api_write_by_session_cookie_still_needs_the_csrf_header(proxied):
    register(proxied, "ada")
    browser_login(proxied, "ada")
    refused = proxied.delete("/api/me")
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    assert proxied.get("/api/me").status_code == 200  # still there
