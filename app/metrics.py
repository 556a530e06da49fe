"""Prometheus metrics: request counts and latencies by route template, and the app's own events.

One process: the metrics live in prometheus-client's default registry. Several workers
(`backprop serve --workers N`): PROMETHEUS_MULTIPROC_DIR is set before any worker starts, every
process writes its values to files there, and /metrics adds them up (multiprocess mode).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from time import perf_counter

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .web.security import raw_header, same_text

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The label of every request no route matched (404s of any path): one label, not one per path.
UNMATCHED = "<unmatched>"
#: Any other method is counted as "OTHER": a client cannot mint label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "backprop_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
#: The latency histogram's upper bounds, in seconds (+Inf is added).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: With several workers, how often each one moves its request counts into the shared files.
FLUSH_SECONDS = 1.0
LATENCY = Histogram(
    "backprop_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (a /train stream: the whole run)",
    ["method", "route"],
    buckets=BUCKETS,
)
QUIZ_ATTEMPTS = Counter(
    "backprop_quiz_attempts_stored", "Quiz attempts stored for signed-in learners"
)
TRAINING_ADMITTED = Counter("backprop_training_runs_admitted", "Training runs admitted")
TRAINING_REFUSED = Counter(
    "backprop_training_runs_refused", "Training runs refused with 429: every process was busy"
)
TRAINING_DIVERGED = Counter(
    "backprop_training_runs_diverged", "Training runs that ended with status diverged"
)
# "live" modes: a worker that has exited no longer counts
TRAINING_QUEUE = Gauge(
    "backprop_training_queue_length",
    "Admitted training runs waiting for a training process",
    multiprocess_mode="livesum",
)
TRAINING_ACTIVE = Gauge(
    "backprop_training_runs_active", "Training runs in progress", multiprocess_mode="livesum"
)
LESSONS = Gauge("backprop_lessons_served", "Lessons loaded and served", multiprocess_mode="livemax")
CONTENT_ERRORS = Gauge(
    "backprop_content_files_with_errors",
    "Lesson files left out because of errors",
    multiprocess_mode="livemax",
)


def multiprocess_mode() -> bool:
    """Whether values go to files shared by several workers (decided when this module loads)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def training_load(waiting: int, running: int) -> None:
    """The training pool's callback: how many runs wait, how many train."""
    TRAINING_QUEUE.set(waiting)
    TRAINING_ACTIVE.set(running)


def process_exited() -> None:
    """On a worker's shutdown: its live gauges stop counting (multiprocess mode only)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())


def route_template(scope: Scope) -> str:
    """The matched route's path template; a mount's path (`/static`); else UNMATCHED."""
    route = scope.get("route")
    if route is not None:
        return route.path
    if "app_root_path" in scope:  # a mount matched: it added its path to root_path
        return scope["root_path"][len(scope["app_root_path"]) :] or UNMATCHED
    return UNMATCHED


class RequestMetrics:
    """ASGI middleware: count each request and time it, labelled by the route's path template
    (`/lessons/{lesson_id}`, read from `scope["route"]` once routing has matched).

    Per request it only adds to plain numbers kept here (a count, a sum and a bucket per
    method, route and status); `flush()` moves them into the Prometheus metrics, which takes a
    lock per value (and, with several workers, a write to a shared file): /metrics flushes
    before it answers, and with several workers each one flushes every FLUSH_SECONDS too.
    Everything here runs on the event loop's thread, so nothing is counted twice or lost.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._pending: dict[tuple[str, str, int], list] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = perf_counter() - started
            method = scope["method"]
            route = scope.get("route")
            key = (
                method if method in METHODS else "OTHER",
                route.path if route is not None else route_template(scope),
                status,
            )
            row = self._pending.get(key)
            if row is None:
                row = self._pending[key] = [0, 0.0] + [0] * (len(BUCKETS) + 1)
            row[0] += 1
            row[1] += elapsed
            row[2 + bisect_left(BUCKETS, elapsed)] += 1

    def flush(self) -> None:
        """Add what was counted since the last flush to the Prometheus metrics."""
        pending, self._pending = self._pending, {}
        for (method, route, status), row in pending.items():
            REQUESTS.labels(method, route, str(status)).inc(row[0])
            add_observations(LATENCY.labels(method, route), row[2:], row[1])


def add_observations(histogram: Histogram, counts: list[int], total: float) -> None:
    """Add observations to a labelled histogram in bulk: `counts[i]` of them in bucket i (the
    last is +Inf, not cumulative), `total` their sum; what as many observe() calls would do.

    prometheus-client has no public call for this: its buckets and sum are the `_buckets` and
    `_sum` values of the child (tests/test_metrics.py checks the result against observe()).
    """
    for index, count in enumerate(counts):
        if count:
            histogram._buckets[index].inc(count)
    histogram._sum.inc(total)


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Every metric in Prometheus' text format; with METRICS_TOKEN set, only for its bearer."""
    token = request.app.state.settings.metrics_token
    if token:
        given = raw_header(request.scope, b"authorization") or ""
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not same_text(value.strip(), token):
            raise HTTPException(
                401, "metrics need Authorization: Bearer <METRICS_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
    counted = getattr(request.app.state, "request_metrics", None)
    if counted is not None:
        counted.flush()  # on the loop's thread, like the counting
    registry = REGISTRY
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    # reading every worker's files is file I/O: off the loop
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
