"""Load and faults: 64 connections on the hottest pages, then kill -9 in a submission burst.

1. Load: a real `uvicorn app.main:app` (one worker) on 127.0.0.1 with a throwaway SQLite file,
   driven by wrk (Debian package `wrk`) for a bounded time per scenario: /healthz for scale, the
   lesson page (a returning visitor) and signed-in quiz submissions (graded and stored, eight
   learners in turn). Prints requests/s, p50/p99 and errors (non-2xx and socket errors), and
   checks that the database holds at least as many attempts as wrk counted answers.
2. Faults: many client threads submit signed-in attempts; after a while the server gets
   SIGKILL (by PID) mid-burst and is restarted on the same database. Then
   `PRAGMA integrity_check` must say ok and every attempt that was answered 200 must be stored,
   with all its answers. Repeated for several rounds on the same file.

Only 127.0.0.1 is used; every process started here is stopped by its PID. Exit status 1 if any
request failed under load, the database is damaged, or an acknowledged attempt is missing.

    python bench/faults.py [--seconds 10] [--connections 64] [--rounds 3] [--burst 4]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.accounts import PASSWORD  # noqa: E402  (also registers the quiz-signed-in scenario)
from bench.load import (  # noqa: E402
    SEED,
    bearer_tokens,
    first_option_answers,
    measure,
    server_env,
    wrk_missing,
)
from tests.live import LiveServer  # noqa: E402

LOAD_SCENARIOS = ["lesson", "quiz-signed-in"]  # after /healthz, which measure() runs first


def server_for(data: Path) -> LiveServer:
    return LiveServer(
        server_env(data),
        log_path=data.parent / "server.log",
    )


def stored_attempts(db: Path) -> dict[int, int]:
    """attempt id → number of stored answers, read straight from the SQLite file."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT a.id, count(ans.attempt_id) FROM quiz_attempts a "
            "LEFT JOIN attempt_answers ans ON ans.attempt_id = a.id GROUP BY a.id"
        ).fetchall()
    return dict(rows)


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


# --- 1. load ------------------------------------------------------------------------------------


def load(seconds: int, connections: int, tmp: Path) -> bool:
    data = tmp / "load" / "data"
    data.mkdir(parents=True)
    server = server_for(data).start()
    try:
        measured = measure(
            server.url,
            LOAD_SCENARIOS,
            seconds=seconds,
            connections=connections,
            rounds=1,
            tmp=tmp,
        )
        rows = [result for result, _ in measured]
    finally:
        server.stop()
    answered = next(r for r in rows if r.name.startswith("quiz")).requests
    stored = len(stored_attempts(data / "backprop.db"))
    print(f"Load: {connections} connections, {seconds} s per scenario, 1 uvicorn worker, SQLite")
    print(f"{'scenario':32} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'requests':>9} {'errors':>6}")
    for r in rows:
        print(
            f"{r.name:32} {r.requests_per_second:8.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} "
            f"{r.requests:9d} {r.errors:6d}"
        )
    print(f"attempts stored: {stored} (wrk counted {answered} answers)")
    return all(r.errors == 0 for r in rows) and stored >= answered


# --- 2. kill -9 mid-burst -----------------------------------------------------------------------


def sign_up(base: str, count: int) -> list[dict[str, str]]:
    tokens = bearer_tokens(base, [f"crash{i}" for i in range(count)], PASSWORD)
    return [{"Authorization": f"Bearer {token}"} for token in tokens]


def crash_round(server: LiveServer, learners, answers, *, threads: int, burst: float) -> dict:
    """Submit from `threads` threads; SIGKILL the server after `burst` seconds."""
    acknowledged: list[tuple[int, int]] = []  # (learner index, attempt id)
    failures: list[str] = []
    sent = [0]
    lock = threading.Lock()
    killed = threading.Event()

    def work(index: int) -> None:
        learner = index % len(learners)
        headers = learners[learner]
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not killed.is_set():
                with lock:
                    sent[0] += 1
                try:
                    response = client.post(
                        f"/api/lessons/{SEED}/quiz/attempts", json={"answers": answers[learner]},
                        headers=headers,
                    )  # fmt: skip
                except httpx.HTTPError:
                    return  # the server is gone
                with lock:
                    if response.status_code == 200:
                        acknowledged.append((learner, response.json()["attempt_id"]))
                    elif not killed.is_set():
                        failures.append(f"{response.status_code}: {response.text[:200]}")

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    time.sleep(burst)
    server.kill()  # SIGKILL by PID, mid-burst: no shutdown handlers, no flush
    killed.set()
    for w in workers:
        w.join(30)
    return {"acknowledged": acknowledged, "sent": sent[0], "failures": failures}


def faults(rounds: int, threads: int, burst: float, tmp: Path) -> bool:
    data = tmp / "faults" / "data"
    data.mkdir(parents=True)
    db = data / "backprop.db"
    server = server_for(data).start()
    ok = True
    try:
        learners = sign_up(server.url, 8)
        answers = [first_option_answers(server.url, headers) for headers in learners]
        every_acknowledged: set[int] = set()
        owners: dict[int, int] = {}
        last_of_round: list[int] = []
        print(f"\nFaults: {threads} client threads, SIGKILL after {burst:g} s of submissions, "
              f"restart on the same SQLite file; {rounds} rounds")  # fmt: skip
        print(f"{'round':>5} {'sent':>6} {'answered 200':>12} {'stored':>7} {'lost':>5} "
              f"{'stored, unanswered':>18} {'integrity':>9} {'restart s':>9}")  # fmt: skip
        for number in range(1, rounds + 1):
            result = crash_round(server, learners, answers, threads=threads, burst=burst)
            check = integrity(db)
            started = time.monotonic()
            server.start()  # same port, same database
            restart = time.monotonic() - started
            stored = stored_attempts(db)
            owners.update((attempt, who) for who, attempt in result["acknowledged"])
            mine = {attempt for _, attempt in result["acknowledged"]}
            last_of_round += sorted(mine)[-100:]  # answered just before the kill
            every_acknowledged |= mine
            lost = every_acknowledged - stored.keys()
            incomplete = [i for i in every_acknowledged if stored.get(i) != len(answers)]
            unanswered = len(stored.keys() - every_acknowledged)
            print(f"{number:5d} {result['sent']:6d} {len(mine):12d} {len(stored):7d} "
                  f"{len(lost):5d} {unanswered:18d} {check:>9} {restart:9.2f}")  # fmt: skip
            if result["failures"]:
                print("  non-200 answers before the kill:", result["failures"][:5])
            ok = ok and check == "ok" and not lost and not incomplete and not result["failures"]
            ok = ok and len(mine) > 0
        # the restarted server serves them too: the last 100 answered before each kill, and a
        # sample of the rest, each fetched by its owner
        sample = set(last_of_round) | set(sorted(every_acknowledged)[::50])
        with httpx.Client(base_url=server.url, timeout=30) as client:
            missing = [
                attempt
                for attempt in sorted(sample)
                if client.get(
                    f"/api/me/attempts/{attempt}", headers=learners[owners[attempt]]
                ).status_code
                != 200
            ]
        ok = ok and not missing
        print(
            f"after the last restart the API serves {len(sample) - len(missing)} of "
            f"{len(sample)} sampled acknowledged attempts (incl. the last 100 before each kill)"
        )
    finally:
        server.stop()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="per load scenario")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="kill -9 rounds")
    parser.add_argument("--threads", type=int, default=32, help="submitting threads")
    parser.add_argument("--burst", type=float, default=4.0, help="seconds before each kill")
    parser.add_argument("--skip-load", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_load and wrk_missing():
        return 2
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ok = True
        if not args.skip_load:
            ok = load(args.seconds, args.connections, tmp) and ok
        ok = faults(args.rounds, args.threads, args.burst, tmp) and ok
    print("\nOK" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
