"""Login throttling per (username, address) and per address, a username under attack, sign-ups
per address, the password-hashing cap, and the one place the client address comes from."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.requests import Request

from app.accounts import limits, service
from app.config import Settings
from app.web.clients import UNTRUSTED_PROXY, client_address

from .accounts_util import PASSWORD, browser_login, register

WRONG = {"username": "ada", "password": "wrong-password"}
RIGHT = {"username": "ada", "password": PASSWORD}


def at(app, address: str) -> TestClient:
    """A client of `app` whose requests come from `address`."""
    return TestClient(app, client=(address, 5000))


def failures(app, **where) -> int:
    query = "SELECT count(*) FROM login_failures"
    if where:
        query += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
    with app.state.db.engine.connect() as conn:
        return conn.execute(sa.text(query), where).scalar()


def age_failures(app, seconds: float) -> None:
    """Move every recorded failure `seconds` into the past."""
    with app.state.db.session() as session:
        for row in session.scalars(sa.select(limits.LoginFailure)):
            row.created_at -= timedelta(seconds=seconds)
        session.commit()


# --- per (username, address) and per address -----------------------------------------------


def test_ten_wrong_passwords_from_one_address_do_not_lock_the_user_out_from_another(make_app):
    app = make_app()
    attacker, home = at(app, "10.0.0.1"), at(app, "10.0.0.2")
    register(home, "ada")
    for _ in range(limits.PAIR_LIMIT):
        assert attacker.post("/api/auth/token", data=WRONG).status_code == 401
    refused = attacker.post("/api/auth/token", data=RIGHT)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
    assert "this username from your address" in refused.json()["detail"]
    assert browser_login(attacker, "ada").status_code == 429
    # the right password from an address that has not failed still signs in, by API and form
    assert home.post("/api/auth/token", data=RIGHT).status_code == 200
    assert browser_login(home, "ada").status_code == 303


def test_failures_from_one_address_count_for_every_username(make_app):
    app = make_app()
    sprayer = at(app, "10.0.0.3")
    register(at(app, "10.0.0.9"), "ada")
    for i in range(limits.ADDRESS_LIMIT):
        wrong = {"username": f"guess{i}", "password": "wrong-password"}
        assert sprayer.post("/api/auth/token", data=wrong).status_code == 401
    refused = sprayer.post("/api/auth/token", data=RIGHT)
    assert refused.status_code == 429 and "from your address" in refused.json()["detail"]
    assert at(app, "10.0.0.4").post("/api/auth/token", data=RIGHT).status_code == 200


def test_failures_older_than_the_window_do_not_count(make_app):
    app = make_app()
    client = at(app, "10.0.0.5")
    register(client, "ada")
    for _ in range(limits.PAIR_LIMIT):
        client.post("/api/auth/token", data=WRONG)
    assert client.post("/api/auth/token", data=RIGHT).status_code == 429
    age_failures(app, limits.WINDOW.total_seconds() + 1)
    assert client.post("/api/auth/token", data=RIGHT).status_code == 200


def test_the_right_password_clears_that_addresses_failures_for_the_user(make_app):
    app = make_app()
    client = at(app, "10.0.0.6")
    register(client, "ada")
    for _ in range(limits.PAIR_LIMIT - 1):
        client.post("/api/auth/token", data=WRONG)
    client.post("/api/auth/token", data={"username": "bob", "password": "wrong-password"})
    assert client.post("/api/auth/token", data=RIGHT).status_code == 200
    # ada's failures from here are gone with the attempt that succeeded; bob's one stays
    assert failures(app) == 1 and failures(app, username_key="bob") == 1
    for _ in range(limits.PAIR_LIMIT - 1):
        assert client.post("/api/auth/token", data=WRONG).status_code == 401


# --- a username under attack from many addresses --------------------------------------------


def test_a_username_under_attack_slows_down_for_failing_addresses_only(make_app):
    app = make_app()
    register(at(app, "10.1.0.1"), "ada")
    extra = 3  # failures past USERNAME_ALERT: a failed address now waits 2**3 s
    attackers = [f"10.2.0.{i}" for i in range(limits.USERNAME_ALERT + extra)]
    for address in attackers:
        assert at(app, address).post("/api/auth/token", data=WRONG).status_code == 401
    # an address that failed waits before its next guess, whatever it sends
    again = at(app, attackers[-1]).post("/api/auth/token", data=RIGHT)
    assert again.status_code == 429 and "under attack" in again.json()["detail"]
    assert 1 <= int(again.headers["retry-after"]) <= 2**extra
    # an address that has not failed is not refused: the right password signs in at once
    assert at(app, "10.1.0.1").post("/api/auth/token", data=RIGHT).status_code == 200
    # the wait doubles with every further failure against the name
    assert at(app, "10.3.0.1").post("/api/auth/token", data=WRONG).status_code == 401
    waited = at(app, "10.3.0.1").post("/api/auth/token", data=WRONG)
    assert waited.status_code == 429
    assert 2**extra < int(waited.headers["retry-after"]) <= 2 ** (extra + 1)
    # once its wait has passed, that address may guess again
    age_failures(app, 2 ** (extra + 1) + 1)
    assert at(app, "10.3.0.1").post("/api/auth/token", data=WRONG).status_code == 401


def test_a_password_check_on_me_is_throttled_like_a_login(make_app):
    app = make_app()
    client = at(app, "10.0.0.7")
    register(client, "ada")
    access = client.post("/api/auth/token", data=RIGHT).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    wrong = {"current_password": "not-my-password", "new_password": "a new password"}
    for _ in range(limits.PAIR_LIMIT):
        assert client.post("/api/me/password", json=wrong, headers=headers).status_code == 403
    refused = client.post("/api/me/password", json=wrong, headers=headers)
    assert refused.status_code == 429 and "retry-after" in refused.headers


# --- sign-ups -------------------------------------------------------------------------------


def test_sign_ups_are_limited_per_address_by_register_per_hour(make_app):
    app = make_app(register_per_hour=3)
    client, other = at(app, "10.0.1.1"), at(app, "10.0.1.2")
    for name in ("ada", "bob", "cyd"):
        register(client, name)
    refused = client.post("/api/auth/register", json={"username": "dee", "password": PASSWORD})
    assert refused.status_code == 429
    assert 3500 < int(refused.headers["retry-after"]) <= 3600
    assert "3 sign-ups an hour" in refused.json()["detail"]
    # the form counts too, and says so on its page
    form = {"username": "eve", "password": PASSWORD, "csrf_token": _csrf(client, "/register")}
    page = client.post("/register", data=form)
    assert page.status_code == 429 and "Too many attempts" in page.text
    register(other, "dee")  # another address is not affected


def test_probing_taken_names_counts_against_the_sign_up_limit(make_app):
    app = make_app(register_per_hour=2)
    client = at(app, "10.0.1.3")
    register(client, "ada")
    taken = client.post("/api/auth/register", json={"username": "ADA", "password": PASSWORD})
    assert taken.status_code == 409
    probe = client.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    assert probe.status_code == 429


def _csrf(client, path: str) -> str:
    from .accounts_util import csrf

    return csrf(client, path)


# --- the password-hashing cap ---------------------------------------------------------------


def test_the_hash_gate_runs_at_most_its_slots_at_once_and_turns_away_the_overflow():
    gate = limits.HashGate(2, waiting=2, wait_s=30)
    inside, most, refused = 0, 0, 0
    lock = threading.Lock()
    start = threading.Barrier(8)

    def work() -> None:
        nonlocal inside, most, refused
        start.wait()
        try:
            with gate.slot():
                with lock:
                    inside += 1
                    most = max(most, inside)
                service._hasher.hash("a password to hash")  # real argon2id, ~0.1 s
                with lock:
                    inside -= 1
        except limits.HashingBusy:
            with lock:
                refused += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most == 2  # two at once, never more
    # two hashing and two waiting are admitted; the rest are turned away at once (a thread
    # that only got going once the first hashes were done may have found room)
    assert 1 <= refused <= 4


def test_a_waiter_gives_up_after_wait_s():
    gate = limits.HashGate(1, waiting=5, wait_s=0.2)
    with gate.slot():
        started = time.monotonic()
        waiter_result = []

        def wait() -> None:
            try:
                with gate.slot():
                    waiter_result.append("ran")
            except limits.HashingBusy:
                waiter_result.append("busy")

        thread = threading.Thread(target=wait)
        thread.start()
        thread.join(5)
    assert waiter_result == ["busy"] and time.monotonic() - started < 2


# --- where the address comes from -----------------------------------------------------------


def request(peer: tuple[str, int] | None, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "client": peer, "headers": headers})


def settings(allow: str = "") -> Settings:
    return Settings(_env_file=None, forwarded_allow_ips=allow)


@pytest.mark.parametrize(
    ("peer", "forwarded", "allow", "expected"),
    [
        # no trusted proxy (the default): the peer, whatever the header says
        (("203.0.113.7", 4321), ["198.51.100.1"], "", "203.0.113.7"),
        (("127.0.0.1", 4321), ["198.51.100.1"], "", "127.0.0.1"),
        # uvicorn's ProxyHeadersMiddleware put a header entry in place of the peer
        (("198.51.100.1", 0), ["198.51.100.1"], "", UNTRUSTED_PROXY),
        (("198.51.100.2", 0), ["10.9.9.9, 198.51.100.2"], "", UNTRUSTED_PROXY),
        (("198.51.100.3", 8080), ["198.51.100.3:8080"], "", UNTRUSTED_PROXY),
        # a trusted peer: the nearest hop that is not one of ours
        (("127.0.0.1", 4321), ["198.51.100.1"], "127.0.0.1", "198.51.100.1"),
        (("10.0.0.2", 4321), ["6.6.6.6, 198.51.100.1, 10.0.0.1"], "10.0.0.0/8", "198.51.100.1"),
        (("10.0.0.2", 4321), ["6.6.6.6", "198.51.100.1"], "10.0.0.0/8", "198.51.100.1"),
        (("10.0.0.2", 4321), ["10.0.0.9, 10.0.0.1"], "10.0.0.0/8", "10.0.0.9"),
        (("203.0.113.7", 4321), ["198.51.100.1"], "127.0.0.1", "203.0.113.7"),
        # ...also when uvicorn (told the same list) already rewrote the peer
        (("198.51.100.1", 0), ["6.6.6.6, 198.51.100.1"], "127.0.0.1", "198.51.100.1"),
        (("6.6.6.6", 0), ["6.6.6.6"], "*", "6.6.6.6"),
        # an IPv6 client is its /64; a v4-mapped one its IPv4 address
        (("2001:db8:1:2:aaaa::1", 1), [], "", "2001:db8:1:2::/64"),
        (("::ffff:192.0.2.5", 1), [], "", "192.0.2.5"),
        # not an IP at all
        (None, [], "", "unknown"),
        (("testclient", 50000), [], "", "testclient"),
        (("127.0.0.1", 4321), ["x" * 300], "127.0.0.1", "x" * 64),
    ],
)
def test_the_client_address_trusts_x_forwarded_for_only_from_listed_proxies(
    peer, forwarded, allow, expected
):
    assert client_address(request(peer, *forwarded), settings(allow)) == expected


def test_an_untrusted_peer_rotating_x_forwarded_for_stays_one_client(make_app):
    app = make_app()
    client = at(app, "127.0.0.1")
    for i in range(limits.ADDRESS_LIMIT):
        forged = {"X-Forwarded-For": f"198.51.100.{i}"}
        wrong = {"username": f"guess{i}", "password": "wrong-password"}
        assert client.post("/api/auth/token", data=wrong, headers=forged).status_code == 401
    forged = {"X-Forwarded-For": "198.51.100.250"}
    assert client.post("/api/auth/token", data=WRONG, headers=forged).status_code == 429
    assert failures(app, address="127.0.0.1") == limits.ADDRESS_LIMIT


def test_a_trusted_proxy_passes_the_client_address_on(make_app):
    app = make_app(forwarded_allow_ips="127.0.0.1")
    proxy = at(app, "127.0.0.1")
    register(at(app, "10.0.2.1"), "ada")
    for _ in range(limits.PAIR_LIMIT):
        proxy.post("/api/auth/token", data=WRONG, headers={"X-Forwarded-For": "198.51.100.1"})
    assert failures(app, address="198.51.100.1") == limits.PAIR_LIMIT
    blocked = proxy.post("/api/auth/token", data=RIGHT, headers={"X-Forwarded-For": "198.51.100.1"})
    assert blocked.status_code == 429
    allowed = proxy.post("/api/auth/token", data=RIGHT, headers={"X-Forwarded-For": "198.51.100.2"})
    assert allowed.status_code == 200


def race(db, count: int, attempt) -> tuple[int, int]:
    """`count` threads call `attempt(session)` at the same moment: (admitted, throttled)."""
    start = threading.Barrier(count)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        start.wait(30)
        with db.session() as session:
            try:
                attempt(session)
                ok = True
            except limits.Throttled:
                ok = False
        with lock:
            outcomes.append(ok)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes.count(True), outcomes.count(False)


def test_concurrent_login_reservations_never_admit_more_than_the_limit(make_app):
    """The check and the count are one transaction: many threads at once (no hash between
    them to spread them out) share PAIR_LIMIT places, on SQLite and on PostgreSQL alike."""
    reserve = lambda s: limits.reserve_login(s, username_key="ada", address="10.9.0.1")  # noqa: E731
    assert race(make_app().state.db, 40, reserve) == (limits.PAIR_LIMIT, 40 - limits.PAIR_LIMIT)


def test_concurrent_sign_ups_never_pass_register_per_hour(make_app):
    reserve = lambda s: limits.reserve_sign_up(s, address="10.9.0.2", per_hour=5)  # noqa: E731
    assert race(make_app().state.db, 30, reserve) == (5, 25)
