"""What the request metrics cost: /healthz and the lesson page with and without them, one run.

Starts two servers on 127.0.0.1 from the same code, one with METRICS_ENABLED=false (no
RequestMetrics middleware) and one with the default (every request counted and timed), and
drives each with wrk in alternating rounds, so a change in the shared machine's speed moves
both sides alike. Prints req/s and p99 per side and the ratio "with / without" per scenario
(median of the rounds); 1.00 means no measurable cost. Every process started is stopped by PID.
Then, in this process, the middleware's own cost per request (around an app that answers at
once) and /healthz through the whole app with and without it: what a noisy machine can hide
from wrk.

    python bench/metrics.py [--seconds 5] [--connections 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.load import SEED, Result, headers_lua, run_wrk, wrk_missing  # noqa: E402
from tests.live import LiveServer, server_env  # noqa: E402


def start(tmp: Path, name: str, metrics: bool) -> LiveServer:
    folder = tmp / name
    env = {
        **server_env(folder / "data", ROOT / "content"),
        "SECRET_KEY": "bench-metrics-secret-key-0123456789",
        "METRICS_ENABLED": "true" if metrics else "false",
        "LOG_LEVEL": "WARNING",  # no access line per request on either side
    }
    folder.mkdir(parents=True)
    return LiveServer(env, log_path=folder / "server.log").start()


def scenarios(server: LiveServer) -> dict[str, tuple[str, str | None]]:
    cookie = httpx.get(f"{server.url}/lessons/{SEED}").cookies["bp_visitor"]
    return {
        "healthz": ("/healthz", None),
        "lesson page": (f"/lessons/{SEED}", headers_lua({"Cookie": f"bp_visitor={cookie}"})),
    }


async def _per_request(app, scope: dict, n: int) -> float:
    """Seconds per request of `app` called directly, `n` times in a row."""

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    started = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / n


async def in_process(tmp: Path, rounds: int = 15) -> dict[str, float]:
    """Best-of-`rounds` µs per request: the middleware alone, /healthz without and with it."""
    from app.config import Settings
    from app.main import create_app
    from app.metrics import RequestMetrics

    class Route:
        path = "/healthz"

    async def bare(scope, receive, send) -> None:
        scope["route"] = Route
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def app(metrics: bool):
        folder = tmp / f"inproc-{metrics}"
        settings = Settings(
            _env_file=None, data_dir=folder, content_dir=ROOT / "content", log_level="WARNING",
            secret_key="bench-metrics-secret-key-0123456789", metrics_enabled=metrics,
            database_url=f"sqlite:///{(folder / 'backprop.db').as_posix()}",
        )  # fmt: skip
        return create_app(settings)

    healthz = {
        "type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/healthz", "raw_path": b"/healthz", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    wrapped, without, with_ = RequestMetrics(bare), app(False), app(True)
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, target, scope in [
            ("bare app", bare, {"type": "http", "method": "GET"}),
            ("bare app + RequestMetrics", wrapped, {"type": "http", "method": "GET"}),
            ("/healthz without", without, healthz),
            ("/healthz with", with_, healthz),
        ]:
            seconds = await _per_request(target, scope, 2000)
            best[name] = min(best.get(name, seconds), seconds)
    return {name: seconds * 1e6 for name, seconds in best.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if wrk_missing():
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as name:
        tmp = Path(name)
        servers = {"without": start(tmp, "without", False), "with": start(tmp, "with", True)}
        try:
            plans = {side: scenarios(server) for side, server in servers.items()}
            runs: dict[tuple[str, str], list[Result]] = {}
            for round_ in range(args.rounds):
                # alternate which side goes first, so neither always runs on a warmer machine
                order = ["without", "with"] if round_ % 2 == 0 else ["with", "without"]
                for scenario in plans["with"]:
                    for side in order:
                        path, lua = plans[side][scenario]
                        result = run_wrk(
                            servers[side].url + path,
                            seconds=args.seconds,
                            connections=args.connections,
                            lua=lua,
                            tmp=tmp,
                        )
                        runs.setdefault((scenario, side), []).append(result)
            counted = httpx.get(servers["with"].url + "/metrics").text
        finally:
            for server in servers.values():
                server.stop()

    print(
        f"{args.connections} connections, {args.seconds}s per run, {args.rounds} rounds, "
        "1 uvicorn worker each; median of the rounds"
    )
    print(f"{'scenario':14} {'side':8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for scenario in plans["with"]:
        for side in ("without", "with"):
            results = runs[(scenario, side)]
            rps = statistics.median(r.requests_per_second for r in results)
            p50 = statistics.median(r.p50_ms for r in results)
            p99 = statistics.median(r.p99_ms for r in results)
            errors = sum(r.errors for r in results)
            print(f"{scenario:14} {side:8} {rps:8.0f} {p50:7.2f} {p99:7.2f} {errors:6d}")
        ratios = [
            w.requests_per_second / wo.requests_per_second
            for w, wo in zip(runs[(scenario, "with")], runs[(scenario, "without")], strict=True)
        ]
        print(
            f"{scenario:14} with/without req/s: median {statistics.median(ratios):.3f} "
            f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
        )
    lines = [
        line
        for line in counted.splitlines()
        if line.startswith("backprop_http_requests_total{") and 'status="200"' in line
    ]
    print("counted by the measured server:", *lines, sep="\n  ")

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as name:
        micro = asyncio.run(in_process(Path(name)))
    print("in this process, best of 15 rounds of 2,000 calls, µs per request:")
    for label, us in micro.items():
        print(f"  {label:28} {us:7.2f}")
    middleware = micro["bare app + RequestMetrics"] - micro["bare app"]
    print(
        f"  the middleware: {middleware:.2f} µs, "
        f"{middleware / micro['/healthz without']:.1%} of /healthz; /healthz with/without "
        f"{micro['/healthz with'] / micro['/healthz without']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
