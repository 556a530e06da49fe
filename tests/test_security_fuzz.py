"""Any cookie, header or query value gets a page or a 4xx, never a 500: the visitor and session
cookies, the Authorization, Accept, X-CSRF-Token, Content-Type and Host headers, a header of any
name, and query strings, as bytes a real server lets through."""

from __future__ import annotations

from urllib.parse import quote_from_bytes

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .accounts_util import SEED, browser_login, csrf, learner, register

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Header bytes HTTP/1.1 servers pass on: anything but CR and LF (which end the header line),
#: non-ASCII bytes (obs-text, decoded as latin-1) included; NUL and other controls too, since
#: an ASGI server in front may be laxer than h11.
header_bytes = st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
#: A real credential with one character replaced by an arbitrary one (non-ASCII too; at times the
#: same one, which is fine: only a 5xx is wrong here, so this is no tampering that must differ).
near_miss = st.tuples(st.integers(0, 200), st.characters(codec="latin-1"))

PAGES = [f"/lessons/{SEED}", "/login", "/", "/me", "/api/me", "/api/me/progress", "/docs"]
QUERY_ROUTES = [
    ("/login", "next"),
    ("/register", "next"),
    ("/playground", "hidden_layers"),
    ("/playground", "batch_size"),
    ("/api/me/attempts", "lesson_id"),
    (f"/lessons/{SEED}", "next"),
]


#: Header names a server passes on: tokens (RFC 9110), lower case as ASGI has them. The two
#: that frame the body are left to the client, which sets them from what it sends.
header_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~", min_size=1, max_size=24
).filter(lambda name: name not in ("content-length", "transfer-encoding"))
#: Well-formed values of the named headers, to be sent whole or with one character changed.
PLAUSIBLE = {
    "accept": ["text/event-stream", "application/json", "text/html,*/*;q=0.8", "*/*"],
    "content-type": [
        "application/json",
        "application/json; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "text/plain",
    ],
    "host": ["testserver", "127.0.0.1:8000", "[::1]:8000", "example.org"],
}
#: Every route that reads a body, with one that is valid for it (a tiny run for /train).
POSTS = [
    (f"/lessons/{SEED}/quiz", {"data": {"q1": "q1-o1"}}),
    (f"/api/lessons/{SEED}/quiz/attempts", {"json": {"answers": {}}}),
    (f"/api/lessons/{SEED}/complete", {}),
    ("/login", {"data": {"username": "ada", "password": "wrong password"}}),
    ("/api/auth/token", {"data": {"username": "ada", "password": "wrong password"}}),
    ("/train", {"json": {"dataset": "xor", "hidden_layers": [2], "epochs": 1}}),
]


@pytest.fixture
def signed_in(client):
    """A client with a real session cookie, a real visitor cookie and a real bearer token."""
    headers = learner(client, "ada")
    browser_login(client, "ada")
    register(client, "bob")  # bob has no session: guessing at his does not matter
    return client, {
        "bp_visitor": client.cookies["bp_visitor"],
        "bp_session": client.cookies["bp_session"],
        "authorization": headers["Authorization"],
        "x-csrf-token": csrf(client, "/"),  # the signed-in session's token
    }


def mutate(value: str, change: tuple[int, str]) -> bytes:
    """`value` with the character at a position replaced, as latin-1 bytes on the wire."""
    at, char = change
    at %= len(value)
    return (value[:at] + char + value[at + 1 :]).encode("latin-1")


def value_for(name: str, real: dict[str, str], draw) -> bytes:
    return draw(
        st.one_of(
            header_bytes,
            st.just(real[name].encode()),
            near_miss.map(lambda change: mutate(real[name], change)),
            header_bytes.map(lambda b: b"Bearer " + b),
        )
    )


def fresh_get(client: TestClient, path: str, headers: dict[str, bytes]):
    client.cookies.clear()  # only the header this example sends
    return client.get(path, headers=headers)


@FUZZ
@given(data=st.data())
def test_any_cookie_or_authorization_value_gets_a_page_or_a_4xx_never_a_500(signed_in, data):
    client, real = signed_in
    visitor = value_for("bp_visitor", real, data.draw)
    session = value_for("bp_session", real, data.draw)
    authorization = value_for("authorization", real, data.draw)
    cookie = b"bp_visitor=" + visitor + b"; bp_session=" + session
    for headers in (
        {"cookie": cookie},
        {"cookie": b"bp_visitor=" + visitor},
        {"cookie": b"bp_session=" + session},
        {"authorization": authorization},
        {"cookie": cookie, "authorization": authorization},
    ):
        for path in PAGES:
            response = fresh_get(client, path, headers)
            assert response.status_code < 500, (path, headers, response.text)
        # a form post and an API write read the same cookies with a token to check
        form = {"csrf_token": data.draw(st.text(max_size=40))}
        client.cookies.clear()
        response = client.post(f"/lessons/{SEED}/quiz", data=form, headers=headers)
        assert response.status_code < 500, (headers, response.text)
        client.cookies.clear()
        response = client.post(
            f"/api/lessons/{SEED}/complete", headers={**headers, "x-csrf-token": visitor}
        )
        assert response.status_code < 500, (headers, response.text)


def plausible_or_any(name: str, real: dict[str, str], draw) -> bytes:
    """A value for header `name`: a real or well-formed one (whole or one character off), or any
    bytes at all."""
    good = [*PLAUSIBLE.get(name, []), *([real[name]] if name in real else [])]
    return draw(
        st.one_of(
            header_bytes,
            st.sampled_from(good).map(str.encode),
            st.tuples(st.sampled_from(good), near_miss).map(lambda pair: mutate(*pair)),
        )
    )


@FUZZ
@given(data=st.data())
def test_any_accept_csrf_content_type_host_or_other_header_gets_a_page_or_a_4xx(signed_in, data):
    client, real = signed_in
    cookie = f"bp_visitor={real['bp_visitor']}; bp_session={real['bp_session']}".encode()
    name, value = data.draw(header_names), data.draw(header_bytes)
    for headers in (
        {"accept": plausible_or_any("accept", real, data.draw)},
        {"x-csrf-token": plausible_or_any("x-csrf-token", real, data.draw), "cookie": cookie},
        {"host": plausible_or_any("host", real, data.draw)},
        {name: value},
        {name: value, "cookie": cookie, "authorization": real["authorization"].encode()},
    ):
        # one page and one form or API write an example: 100 examples cover each many times
        path = data.draw(st.sampled_from(PAGES))
        response = fresh_get(client, path, headers)
        assert response.status_code < 500, (path, headers, response.text)
    content_type = plausible_or_any("content-type", real, data.draw)
    for path, body in POSTS:  # every body-reading route gets the odd Content-Type
        client.cookies.clear()
        response = client.post(path, headers={"content-type": content_type}, **body)
        assert response.status_code < 500, (path, content_type, response.text)
    path, body = data.draw(st.sampled_from(POSTS))
    accept = plausible_or_any("accept", real, data.draw)
    for headers in (
        {"content-type": content_type, "accept": accept, "cookie": cookie},
        {"x-csrf-token": real["x-csrf-token"].encode(), "cookie": cookie, name: value},
    ):
        client.cookies.clear()
        response = client.post(path, headers=headers, **body)
        assert response.status_code < 500, (path, headers, response.text)


@FUZZ
@given(route=st.sampled_from(QUERY_ROUTES), raw=st.binary(max_size=60), text=st.text(max_size=60))
def test_any_query_value_gets_a_page_or_a_4xx_never_a_500(signed_in, route, raw, text):
    client, real = signed_in
    path, name = route
    # raw: any bytes percent-encoded (invalid UTF-8 included); text: any characters, encoded
    for query in (f"{name}={quote_from_bytes(raw)}", f"{name}={quote_from_bytes(text.encode())}"):
        for headers in ({}, {"authorization": real["authorization"].encode()}):
            response = fresh_get(client, f"{path}?{query}", headers)
            assert response.status_code < 500, (path, query, response.text)
