"""Headers on every response: the security set on a 500 too, no-store wherever a credential, a
signed-in learner's data or a visitor's own cookie or CSRF token is in the response, and HSTS
over https when configured."""

from __future__ import annotations

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from starlette.routing import Route

from app.web.security import HEADERS

from .accounts_util import PASSWORD, SEED, browser_login, learner, register

#: `private` too, for caches that do not heed no-store
NO_STORE = "private, no-store"


def assert_security_headers(response) -> None:
    for name, value in HEADERS:
        assert response.headers.get(name.decode()) == value.decode(), name


# --- 500 --------------------------------------------------------------------------------------


@pytest.fixture
def failing_app(make_app):
    """The real app with two routes of its own that fail the way a bug would."""
    app = make_app(hsts_seconds=600)

    @app.get("/api/boom")
    async def api_boom() -> None:
        raise RuntimeError("a bug in an API route")

    @app.get("/boom")
    async def page_boom() -> None:
        raise RuntimeError("a bug in a page")

    return app


@pytest.mark.parametrize(
    ("path", "content_type"), [("/api/boom", "application/json"), ("/boom", "text/html")]
)
def test_an_unhandled_error_is_a_500_with_every_security_header(failing_app, path, content_type):
    with TestClient(failing_app, raise_server_exceptions=False) as client:
        response = client.get(path)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(content_type)
    assert "a bug in" not in response.text  # no traceback or message leaks out
    assert_security_headers(response)
    assert "strict-transport-security" not in response.headers  # plain http


def test_a_500_over_https_carries_hsts_too(failing_app):
    with TestClient(
        failing_app, base_url="https://testserver", raise_server_exceptions=False
    ) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert_security_headers(response)
    assert response.headers["strict-transport-security"] == "max-age=600"


# --- Cache-Control: no-store ------------------------------------------------------------------


def test_the_token_endpoint_is_never_cached_whatever_it_answers(client):
    register(client, "ada")
    right = client.post("/api/auth/token", data={"username": "ada", "password": PASSWORD})
    wrong = client.post("/api/auth/token", data={"username": "ada", "password": "nope" * 3})
    assert (right.status_code, wrong.status_code) == (200, 401)
    assert right.headers["cache-control"] == wrong.headers["cache-control"] == NO_STORE


@pytest.mark.parametrize(
    "path", ["/api/me", "/api/me/progress", "/api/me/attempts", "/api/me/export"]
)
def test_every_api_me_response_is_never_cached(client, path):
    headers = learner(client, "ada")
    client.cookies.clear()
    signed_in = client.get(path, headers=headers)
    anonymous = client.get(path)
    assert (signed_in.status_code, anonymous.status_code) == (200, 401)
    assert signed_in.headers["cache-control"] == anonymous.headers["cache-control"] == NO_STORE


def page_paths(app) -> list[str]:
    """Every GET route that answers HTML, lesson ids filled in with the seed lesson."""
    paths = []
    for route in app.routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()):
            continue
        if route.path.startswith(("/api/", "/healthz", "/openapi", "/favicon")):
            continue
        paths.append(route.path.replace("{lesson_id}", SEED))
    return paths


def test_every_page_rendered_for_a_signed_in_learner_is_never_cached(client):
    register(client, "ada")
    browser_login(client, "ada")
    paths = [*page_paths(client.app), "/no-such-page", "/lessons/no-such-lesson"]
    assert {"/", f"/lessons/{SEED}", "/me", "/playground", "/docs"} <= set(paths)
    shown_to_ada = set()
    for path in paths:
        response = client.get(path, follow_redirects=False)
        if response.headers["content-type"].startswith("text/html"):
            assert response.headers["cache-control"] == NO_STORE, path
            if 'action="/logout"' in response.text:  # the nav rendered for ada
                shown_to_ada.add(path)
    assert {"/", f"/lessons/{SEED}", "/me", "/playground", "/no-such-page"} <= shown_to_ada


def test_a_page_for_a_bearer_token_holder_is_never_cached(client):
    headers = learner(client, "ada")
    client.cookies.clear()
    response = client.get(f"/lessons/{SEED}", headers=headers)
    assert 'action="/logout"' in response.text
    assert response.headers["cache-control"] == NO_STORE


def test_me_is_never_cached_even_as_the_redirect_a_guest_gets(client):
    response = client.get("/me", follow_redirects=False)
    assert response.status_code == 303 and response.headers["cache-control"] == NO_STORE


@pytest.mark.parametrize("path", [f"/lessons/{SEED}", "/login", "/register"])
def test_a_guests_page_with_a_form_is_never_cached_first_visit_or_not(client, path):
    first = client.get(path)  # sets the visitor cookie its form's CSRF token is bound to
    assert "bp_visitor=" in first.headers["set-cookie"]
    again = client.get(path)  # carries that visitor's token
    assert "set-cookie" not in again.headers
    for response in (first, again):
        assert 'name="csrf_token"' in response.text
        assert response.headers.get_list("cache-control") == [NO_STORE], path


def test_a_guests_quiz_in_their_own_option_order_is_never_cached(client):
    first = client.get(f"/api/lessons/{SEED}/quiz")
    again = client.get(f"/api/lessons/{SEED}/quiz")
    assert "set-cookie" in first.headers and "set-cookie" not in again.headers
    assert first.headers["cache-control"] == again.headers["cache-control"] == NO_STORE


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/static/css/site.css", "/api/lessons", f"/api/lessons/{SEED}", "/", "/docs"],
)
def test_a_guest_response_without_a_form_or_a_cookie_stays_cacheable(client, path):
    client.get(f"/lessons/{SEED}")  # a returning visitor, whose cookie these do not use
    for cookies in ("returning", "none"):
        if cookies == "none":
            client.cookies.clear()
        response = client.get(path)
        assert response.status_code == 200
        assert "set-cookie" not in response.headers, (path, cookies)
        assert "cache-control" not in response.headers, (path, cookies)


def test_no_store_replaces_any_cache_control_a_private_route_sets(make_app):
    app = make_app()

    @app.get("/api/me/cacheable")
    async def cacheable() -> Response:
        return Response("mine", headers={"Cache-Control": "public, max-age=3600"})

    with TestClient(app) as client:
        response = client.get("/api/me/cacheable")
    assert response.headers.get_list("cache-control") == [NO_STORE]


# --- HSTS -------------------------------------------------------------------------------------


def test_hsts_is_off_by_default_and_sent_only_over_https_when_set(make_app):
    with TestClient(make_app(), base_url="https://testserver") as client:
        assert "strict-transport-security" not in client.get("/").headers
    app = make_app(hsts_seconds=31536000)
    with TestClient(app, base_url="https://testserver") as client:
        for path in ("/", "/healthz", "/static/css/site.css", "/nowhere"):
            assert client.get(path).headers["strict-transport-security"] == "max-age=31536000"
        # past even /train's own limit, which takes a learner's points (app/training/takeaway.py)
        too_large = client.post("/train", content=b"x" * 400_000)
        assert too_large.status_code == 413
        assert too_large.headers["strict-transport-security"] == "max-age=31536000"
    with TestClient(app) as client:
        assert "strict-transport-security" not in client.get("/").headers
