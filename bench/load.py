"""HTTP throughput of the real server, as ratios against /healthz measured in the same run.

Starts `uvicorn app.main:app` (one worker) on 127.0.0.1 with a throwaway data folder, drives it
with wrk (Debian package `wrk`) for a bounded time per scenario, prints requests/s, p50/p99
latency, error counts and each scenario's ratio to /healthz. With nginx installed it also serves
the lesson page's exact bytes from nginx, the ceiling for this machine. Only 127.0.0.1 is used;
every process started here is stopped by its PID.

    python bench/load.py [--seconds 5] [--connections 32] [--only healthz,lesson,quiz]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.live import LiveServer, free_port, server_env  # noqa: E402

SEED = "dl-intro-neural-networks"


@dataclass
class Result:
    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


@dataclass
class Scenario:
    """A wrk run: a path, and optionally a Lua script that sets method, body and headers."""

    name: str
    path: str
    lua: str | None = None


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, *, seconds: int, connections: int, lua: str | None, tmp: Path) -> Result:
    """One bounded wrk run (1 thread: the server gets the other core)."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if lua:
        script = tmp / f"s{time.monotonic_ns()}.lua"
        script.write_text(lua)
        cmd += ["-s", str(script)]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in match.groups())
    return Result("", rps, p50, p99, errors, total)


def post_json_lua(body: dict) -> str:
    """A wrk script that POSTs the same JSON body on every request."""
    script = f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
    return script + headers_lua({"Content-Type": "application/json"})


def first_option_answers(base: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """An answer to every question of the seed quiz: each one's first option as served to the
    learner of `headers` (ids and order are theirs), right or wrong by chance."""
    quiz = httpx.get(f"{base}/api/lessons/{SEED}/quiz", headers=headers).json()
    return {q["id"]: q["options"][0]["id"] for q in quiz["questions"]}


def bearer_tokens(base: str, names: list[str], password: str) -> list[str]:
    """Register each learner (an existing name is fine) and return their bearer tokens."""
    tokens = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for name in names:
            client.post("/api/auth/register", json={"username": name, "password": password})
            response = client.post("/api/auth/token", data={"username": name, "password": password})
            tokens.append(response.json()["access_token"])
    return tokens


def guest_quiz_scenario(base: str) -> Scenario:
    """Guest submissions of a full set of answers: graded, not stored."""
    # one guest: option ids are keyed to the visitor cookie, which every request sends
    cookie = httpx.get(f"{base}/lessons/{SEED}").cookies["bp_visitor"]
    visitor = {"Cookie": f"bp_visitor={cookie}"}
    answers = first_option_answers(base, visitor)
    path = f"/api/lessons/{SEED}/quiz/attempts"
    lua = post_json_lua({"answers": answers}) + headers_lua(visitor)
    return Scenario("quiz (guest POST)", path, lua)


def headers_lua(headers: dict[str, str]) -> str:
    """A wrk script that sends these headers with every GET."""
    return "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items())


def returning_visitor_scenario(base: str) -> Scenario:
    """The lesson page for a browser that has been here before (it sends its visitor cookie)."""
    cookie = httpx.get(f"{base}/lessons/{SEED}").cookies["bp_visitor"]
    lua = headers_lua({"Cookie": f"bp_visitor={cookie}"})
    return Scenario("lesson page", f"/lessons/{SEED}", lua)


#: name → builder(base_url) → Scenario. Other bench modules may add to this.
SCENARIOS: dict[str, Callable[[str], Scenario]] = {
    "healthz": lambda base: Scenario("healthz", "/healthz"),
    "lesson": returning_visitor_scenario,
    "lesson-new": lambda base: Scenario("lesson page, new visitor", f"/lessons/{SEED}"),
    "lessons-api": lambda base: Scenario("lessons API", "/api/lessons"),
    "quiz": guest_quiz_scenario,
}


def nginx_ceiling(page: bytes, *, seconds: int, connections: int, tmp: Path) -> Result | None:
    """The same bytes served by nginx (one worker): what this machine can do at best."""
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if not nginx:
        return None
    root = tmp / "nginx"
    (root / "www").mkdir(parents=True)
    (root / "www" / "lesson.html").write_bytes(page)
    port = free_port()
    (root / "nginx.conf").write_text(
        # As root nginx's workers drop to `nobody`, who cannot read this temporary folder.
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"""worker_processes 1; daemon off; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; keepalive_requests 100000;
  server {{ listen 127.0.0.1:{port}; root {root}/www; }} }}
"""
    )
    proc = subprocess.Popen([nginx, "-c", str(root / "nginx.conf"), "-p", str(root)])
    try:
        for _ in range(50):
            try:
                httpx.get(f"http://127.0.0.1:{port}/lesson.html", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/lesson.html"
        return run_wrk(url, seconds=seconds, connections=connections, lua=None, tmp=tmp)
    finally:
        proc.terminate()
        proc.wait(10)


def measure(
    base_url: str, names: list[str], *, seconds: int, connections: int, rounds: int, tmp: Path
) -> list[tuple[Result, float]]:
    """Each round runs /healthz then every scenario; a scenario's ratio is taken against the
    /healthz of its own round and the median round is reported, so a noisy neighbour on the
    machine moves both sides of a ratio together."""
    per_name: dict[str, list[tuple[Result, float]]] = {}
    scenarios = {name: SCENARIOS[name](base_url) for name in ["healthz", *names]}
    for _ in range(rounds):
        baseline = None
        for name, scenario in scenarios.items():
            result = run_wrk(
                base_url + scenario.path,
                seconds=seconds,
                connections=connections,
                lua=scenario.lua,
                tmp=tmp,
            )
            result.name = scenario.name
            baseline = baseline or result.requests_per_second
            per_name.setdefault(name, []).append((result, result.requests_per_second / baseline))
    summary = []
    for runs in per_name.values():
        runs.sort(key=lambda run: run[1])
        result, ratio = runs[len(runs) // 2]
        result.errors = sum(r.errors for r, _ in runs)
        summary.append((result, ratio))
    return summary


def report(rows: list[tuple[Result, float]], *, title: str) -> None:
    print(title)
    print(
        f"{'scenario':30} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'vs healthz':>10}"
    )
    for r, ratio in rows:
        print(
            f"{r.name:30} {r.requests_per_second:8.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} "
            f"{r.errors:6d} {ratio:10.2f}"
        )


def wrk_missing() -> bool:
    """True (after saying how to install it) when Debian's wrk is not on PATH."""
    if shutil.which("wrk"):
        return False
    print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
    return True


def parse_args(argv: list[str] | None, *, doc: str, only: str) -> argparse.Namespace:
    """The options every wrk benchmark here takes; `only` is its default scenario list."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=only)
    parser.add_argument("--no-nginx", action="store_true", help="skip the nginx ceiling")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def serve_and_measure(
    env: dict[str, str], args: argparse.Namespace, tmp: Path, *, after: Callable[[str], object]
) -> tuple[list[tuple[Result, float]], object]:
    """Start the server with `env`, run the chosen scenarios, call `after(base_url)` while it
    still runs, stop it by PID; (rows, what `after` returned)."""
    names = [n for n in args.only.split(",") if n and n != "healthz"]
    server = LiveServer(env, log_path=tmp / "server.log").start()
    try:
        rows = measure(
            server.url,
            names,
            seconds=args.seconds,
            connections=args.connections,
            rounds=args.rounds,
            tmp=tmp,
        )
        return rows, after(server.url)
    finally:
        server.stop()


def write_json(path: Path | None, rows: list[tuple[Result, float]], *extra: Result) -> None:
    if path:
        results = [{**r.__dict__, "ratio": ratio} for r, ratio in rows]
        path.write_text(json.dumps(results + [r.__dict__ for r in extra], indent=2))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, doc=__doc__, only="lesson,lesson-new,lessons-api,quiz")
    if wrk_missing():
        return 2
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        rows, page = serve_and_measure(
            server_env(tmp / "data"),
            args,
            tmp,
            after=lambda base: httpx.get(f"{base}/lessons/{SEED}").content,
        )
        ceiling = None
        if not args.no_nginx:
            ceiling = nginx_ceiling(
                page, seconds=args.seconds, connections=args.connections, tmp=tmp
            )
    report(
        rows,
        title=f"{args.connections} connections, {args.seconds}s per run, median of "
        f"{args.rounds} rounds, 1 uvicorn worker, page {len(page)} bytes",
    )
    lesson = next((r for r, _ in rows if r.name == "lesson page"), None)
    if ceiling and lesson:
        share = lesson.requests_per_second / ceiling.requests_per_second
        print(
            f"nginx serving the same page bytes: {ceiling.requests_per_second:.0f} req/s, "
            f"p99 {ceiling.p99_ms:.2f} ms, errors {ceiling.errors}; "
            f"lesson page is {share:.2f} of it"
        )
    write_json(args.json, rows, *([ceiling] if ceiling else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
