"""Session control: listing and ending sessions and tokens, changing the password, deleting the
account with the password, and CSRF tokens bound to the session once signed in."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.models import ApiToken, utcnow

from .accounts_util import PASSWORD, bearer, browser_login, csrf, register

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
CURL = {"User-Agent": "curl/8.14"}


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def api_token(client, username: str = "ada", password: str = PASSWORD) -> dict[str, str]:
    response = client.post(
        "/api/auth/token", data={"username": username, "password": password}, headers=CURL
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def signed_in_browser(app, username: str = "ada") -> TestClient:
    browser = TestClient(app, headers=BROWSER)
    assert browser_login(browser, username).status_code == 303
    return browser


def test_i_can_list_my_sessions_and_tokens_with_their_client_and_times(client):
    register(client, "ada")
    browser = signed_in_browser(client.app)
    token = api_token(client)
    listed = client.get("/api/me/sessions", headers=token)
    assert listed.status_code == 200
    rows = listed.json()
    assert [r["kind"] for r in rows] == ["token", "session"]  # newest first
    assert [r["user_agent"] for r in rows] == [CURL["User-Agent"], BROWSER["User-Agent"]]
    assert [r["current"] for r in rows] == [True, False]
    assert all(re.fullmatch(r"(session|token)-\d+", r["id"]) for r in rows)
    for row in rows:
        assert when(row["created_at"]) <= when(row["last_used_at"]) < when(row["expires_at"])
        assert utcnow() - when(row["last_used_at"]) < timedelta(minutes=1)
    # seen from the browser, its own session is the current one
    seen = browser.get("/api/me/sessions").json()
    assert [r["current"] for r in seen] == [False, True]
    # nobody else's sessions are listed
    register(client, "bob")
    bobs = client.get("/api/me/sessions", headers=api_token(client, "bob")).json()
    assert [(r["kind"], r["user_agent"]) for r in bobs] == [("token", CURL["User-Agent"])]


def test_ending_one_session_or_token_by_id_signs_that_client_out(client):
    register(client, "ada")
    browser = signed_in_browser(client.app)
    token = api_token(client)
    other = api_token(client)
    rows = client.get("/api/me/sessions", headers=token).json()
    session_id = next(r["id"] for r in rows if r["kind"] == "session")
    other_id = next(r["id"] for r in rows if r["kind"] == "token" and not r["current"])
    assert client.delete(f"/api/me/sessions/{session_id}", headers=token).status_code == 204
    assert browser.get("/api/me").status_code == 401
    assert client.delete(f"/api/me/sessions/{other_id}", headers=token).status_code == 204
    assert client.get("/api/me", headers=other).status_code == 401  # the cache does not keep it
    assert client.get("/api/me", headers=token).status_code == 200
    # gone, someone else's, or not an id at all: 404 alike
    register(client, "bob")
    bob = api_token(client, "bob")
    mine = client.get("/api/me/sessions", headers=token).json()[0]["id"]
    for name in (session_id, mine, "token-99999999999", "session-x", "cookie-1", "-1"):
        assert client.delete(f"/api/me/sessions/{name}", headers=bob).status_code == 404
    assert client.get("/api/me", headers=token).status_code == 200


def test_ending_every_other_session_keeps_the_one_asking(client):
    register(client, "ada")
    browser = signed_in_browser(client.app)
    tokens = [api_token(client) for _ in range(2)]
    response = client.delete("/api/me/sessions", headers=tokens[0])
    assert response.status_code == 200 and response.json() == {"ended": 2}
    assert browser.get("/api/me").status_code == 401
    assert client.get("/api/me", headers=tokens[1]).status_code == 401
    assert client.get("/api/me", headers=tokens[0]).status_code == 200


def test_changing_the_password_needs_the_current_one_and_ends_every_other_session(client):
    register(client, "ada")
    browser = signed_in_browser(client.app)
    other, mine = api_token(client), api_token(client)
    wrong = {"current_password": "not my password", "new_password": "a brand new password"}
    assert client.post("/api/me/password", json=wrong, headers=mine).status_code == 403
    assert client.get("/api/me", headers=other).status_code == 200  # nothing changed
    short = {"current_password": PASSWORD, "new_password": "short"}
    assert client.post("/api/me/password", json=short, headers=mine).status_code == 422
    right = {"current_password": PASSWORD, "new_password": "a brand new password"}
    response = client.post("/api/me/password", json=right, headers=mine)
    assert response.status_code == 200 and response.json() == {"ended": 2}
    assert browser.get("/api/me").status_code == 401
    assert client.get("/api/me", headers=other).status_code == 401
    assert client.get("/api/me", headers=mine).status_code == 200
    old = {"username": "ada", "password": PASSWORD}
    assert client.post("/api/auth/token", data=old).status_code == 401
    api_token(client, password="a brand new password")


def test_deleting_the_account_needs_the_password_again(client):
    register(client, "ada")
    token = api_token(client)
    assert client.request("DELETE", "/api/me", headers=token).status_code == 422
    wrong = client.request("DELETE", "/api/me", json={"password": "guess"}, headers=token)
    assert wrong.status_code == 403
    assert client.get("/api/me", headers=token).status_code == 200
    right = client.request("DELETE", "/api/me", json={"password": PASSWORD}, headers=token)
    assert right.status_code == 204
    assert client.get("/api/me", headers=token).status_code == 401


def test_last_used_is_kept_up_to_date_within_a_few_minutes(client):
    register(client, "ada")
    token = api_token(client)
    db = client.app.state.db
    an_hour_ago = utcnow() - timedelta(hours=1)
    with db.session() as session:
        session.execute(sa.update(ApiToken).values(last_used_at=an_hour_ago))
        session.commit()
    assert client.get("/api/me", headers=token).status_code == 200
    [row] = client.get("/api/me/sessions", headers=token).json()
    assert utcnow() - when(row["last_used_at"]) < timedelta(minutes=1)


# --- the /me page ---------------------------------------------------------------------------


def test_the_me_page_lists_sessions_and_ends_them(client):
    register(client, "ada")
    browser = signed_in_browser(client.app)
    token = api_token(client)
    page = browser.get("/me").text
    assert "Where you are signed in" in page and "Firefox/140.0" in page and "curl/8.14" in page
    token_id = client.get("/api/me/sessions", headers=token).json()[0]["id"]
    assert f'action="/me/sessions/{token_id}/end"' in page
    form = {"csrf_token": csrf(browser, "/me")}
    ended = browser.post(f"/me/sessions/{token_id}/end", data=form, follow_redirects=False)
    assert ended.status_code == 303
    assert client.get("/api/me", headers=token).status_code == 401
    assert browser.get("/api/me").status_code == 200
    # without the page's token, nothing ends
    token = api_token(client)
    assert browser.post("/me/sessions/others/end", data={}).status_code == 403
    assert client.get("/api/me", headers=token).status_code == 200
    browser.post("/me/sessions/others/end", data={"csrf_token": csrf(browser, "/me")})
    assert client.get("/api/me", headers=token).status_code == 401


def test_the_me_page_changes_the_password_and_deletes_only_with_it(client):
    register(client, "ada")
    browser = signed_in_browser(client.app)
    token = api_token(client)
    form = {"csrf_token": csrf(browser, "/me"), "current_password": "wrong password",
            "new_password": "a brand new password"}  # fmt: skip
    assert browser.post("/me/password", data=form).status_code == 403
    form["current_password"] = PASSWORD
    changed = browser.post("/me/password", data=form)
    assert changed.status_code == 200 and "Your password is changed" in changed.text
    assert client.get("/api/me", headers=token).status_code == 401
    delete = {"csrf_token": csrf(browser, "/me"), "confirm": "ada", "password": PASSWORD}
    assert browser.post("/me/delete", data=delete).status_code == 403  # the old password
    delete["password"] = "a brand new password"
    assert browser.post("/me/delete", data=delete, follow_redirects=False).status_code == 303
    assert browser.get("/api/me").status_code == 401


# --- CSRF tokens bound to the session -------------------------------------------------------


def test_a_csrf_token_from_one_session_does_not_work_in_the_next(client):
    register(client, "ada")
    guest = csrf(client, "/login")
    assert browser_login(client, "ada").status_code == 303
    first = csrf(client, "/me")
    assert client.post("/logout", data={"csrf_token": first}).status_code == 200
    assert browser_login(client, "ada").status_code == 303
    # same browser, same year-long visitor cookie, a new session: the old form is void
    response = client.post("/logout", data={"csrf_token": first}, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/api/me").status_code == 200
    for header in (first, guest):
        api_write = client.post("/api/auth/logout", headers={"X-CSRF-Token": header})
        assert api_write.status_code == 403
    assert client.post("/logout", data={"csrf_token": csrf(client, "/me")}).status_code == 200


def test_the_signed_in_csrf_token_is_not_the_guests_one(client):
    register(client, "ada")
    guest_token = csrf(client, "/login")
    assert browser_login(client, "ada").status_code == 303
    assert csrf(client, "/me") != guest_token
    form = {"csrf_token": guest_token, "current_password": PASSWORD,
            "new_password": "a brand new password"}  # fmt: skip
    assert client.post("/me/password", data=form).status_code == 403


def test_export_has_each_sessions_client_and_last_use(client):
    register(client, "ada")
    signed_in_browser(client.app)
    data = client.get("/api/me/export", headers=api_token(client)).json()
    assert data["sessions"][0]["user_agent"] == BROWSER["User-Agent"]
    assert data["api_tokens"][0]["user_agent"] == CURL["User-Agent"]
    assert data["sessions"][0]["last_used_at"] is not None


def test_a_user_agent_is_stored_printable_and_cut(client):
    register(client, "ada")
    long_agent = "Agent\t" + "x" * 500
    client.post("/api/auth/token", data={"username": "ada", "password": PASSWORD},
                headers={"User-Agent": long_agent})  # fmt: skip
    with client.app.state.db.session() as session:
        [stored] = session.scalars(sa.select(ApiToken.user_agent))
        assert stored == ("Agent" + "x" * 500)[:200]
