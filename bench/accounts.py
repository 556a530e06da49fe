"""Signed-in quiz submissions (graded and stored) per second, as a ratio of /healthz.

Reuses bench/load.py's harness: a real `uvicorn app.main:app` (one worker) on 127.0.0.1 with a
throwaway data folder (SQLite by default; DATABASE_URL to measure PostgreSQL), wrk for a
bounded time per run, the median of several rounds, each ratio against its own round's
/healthz. Every request stores an attempt with its five answers and updates progress, for one
of eight learners in turn (bearer tokens). Stops everything it started by PID.

    python bench/accounts.py [--seconds 5] [--connections 32] [--rounds 3]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench.load import (  # noqa: E402
    SCENARIOS,
    SEED,
    Scenario,
    bearer_tokens,
    first_option_answers,
    parse_args,
    report,
    serve_and_measure,
    server_env,
    write_json,
    wrk_missing,
)

LEARNERS = 8
PASSWORD = "benchmark-password"


def signed_in_quiz_scenario(base: str) -> Scenario:
    """Register learners, take their tokens, and POST full sets of answers as them in turn."""
    names = [f"bench{i}-{os.getpid()}" for i in range(LEARNERS)]
    tokens = bearer_tokens(base, names, PASSWORD)
    # each learner's own option ids: another learner's are refused
    bodies = [
        json.dumps({"answers": first_option_answers(base, {"Authorization": f"Bearer {t}"})})
        for t in tokens
    ]
    path = f"/api/lessons/{SEED}/quiz/attempts"
    lua = f"""
local tokens = {{{", ".join(json.dumps(t) for t in tokens)}}}
local bodies = {{{", ".join(json.dumps(b) for b in bodies)}}}
local i = 0
request = function()
  i = i + 1
  local k = (i % #tokens) + 1
  return wrk.format("POST", "{path}", {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[k],
  }}, bodies[k])
end
"""
    return Scenario("quiz (signed-in POST, stored)", path, lua)


SCENARIOS["quiz-signed-in"] = signed_in_quiz_scenario


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, doc=__doc__, only="quiz,quiz-signed-in")
    if wrk_missing():
        return 2
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env = server_env(tmp / "data")
        if os.environ.get("DATABASE_URL"):  # measure PostgreSQL instead, on purpose
            env["DATABASE_URL"] = os.environ["DATABASE_URL"]
            # each run signs up new learners from 127.0.0.1, and that database outlives runs
            env["REGISTER_PER_HOUR"] = "1000"
        rows, stored = serve_and_measure(
            env, args, tmp, after=lambda base: _stored_attempts(tmp / "data" / "backprop.db")
        )
    backend = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    report(
        rows,
        title=f"{backend}: {args.connections} connections, {args.seconds}s per run, median of "
        f"{args.rounds} rounds, 1 uvicorn worker",
    )
    if stored is not None:
        print(f"attempts stored in the SQLite file at the end: {stored}")
    write_json(args.json, rows)
    return 0


def _stored_attempts(path: Path) -> int | None:
    if not path.exists():
        return None
    import sqlite3

    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM quiz_attempts").fetchone()[0]


if __name__ == "__main__":
    sys.exit(main())
