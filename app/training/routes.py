"""POST /train (JSON or Server-Sent Events) and the /playground page."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from ..config import Settings
from ..web.schemas import UNPARSABLE_BODY
from ..web.templates import render
from .backend import Busy, LocalBackend, TrainingBackend, UnknownRun, WorkerFailed
from .datasets import DEFAULT_NOISE
from .query import parse_playground_query, playground_query
from .runner import estimate_work, full_config
from .schemas import TrainRequest, TrainResult

api = APIRouter(tags=["training"])
pages = APIRouter(include_in_schema=False)

#: Seconds a client turned away is asked to wait; most runs here finish well within it.
RETRY_AFTER = 5
#: Decision-boundary snapshots streamed over one run of a 2-D set.
BOUNDARY_FRAMES = 40

ERRORS: dict[int | str, dict[str, Any]] = {
    **UNPARSABLE_BODY,
    422: {"description": "A field out of bounds (named in `detail`), or too much work"},
    429: {"description": "Every training process is busy; retry after `Retry-After` seconds"},
    503: {"description": "The training process stopped before the run finished; try again"},
}


def get_backend(request: Request) -> TrainingBackend:
    """Where this app's runs train (TRAINING_BACKEND; see app/training/backend.py)."""
    return request.app.state.training


def close_pool(app: Any) -> None:
    """Stop the app's local training processes, if it ever started any (the queue backend's
    connections close in the app's lifespan)."""
    backend = getattr(app.state, "training", None)
    if isinstance(backend, LocalBackend):
        backend.close()


NO_RUN = "no stored run has this id"
TRAINING_FAILED = (
    "the training process stopped before the run finished; it has been logged, try again"
)


def _busy() -> JSONResponse:
    return JSONResponse(
        {"detail": "every training process is busy; try again in a few seconds"},
        status_code=429,
        headers={"Retry-After": str(RETRY_AFTER)},
    )


def _failure(exc: WorkerFailed) -> tuple[str, int]:
    """What a failed run's client is told: the queue's own words, else the generic message."""
    return getattr(exc, "detail", TRAINING_FAILED), getattr(exc, "status", 503)


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the body has been read, so only that can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _events(
    messages: AsyncIterator[tuple], ids: bool = False
) -> AsyncIterator[ServerSentEvent]:
    """A run's events as SSE; `ids` numbers epochs (for Last-Event-ID on reconnect)."""
    try:
        async with contextlib.aclosing(messages):
            async for kind, *payload in messages:
                if kind == "epoch":
                    row, boundary = payload
                    key = str(row["epoch"]) if ids else None
                    yield ServerSentEvent(data=_dumps(row), event="epoch", id=key)
                    if boundary is not None:
                        frame = {"epoch": row["epoch"], **boundary}
                        yield ServerSentEvent(data=_dumps(frame), event="boundary", id=key)
                else:  # "result", or "queued" while a queued run waits for a worker
                    yield ServerSentEvent(data=_dumps(payload[0]), event=kind)
    except Busy:  # lost a race for the last place between the check and the stream's start
        yield ServerSentEvent(data=_dumps({"detail": "busy", "status": 429}), event="error")
    except UnknownRun:  # deleted (TRAIN_KEEP_HOURS) while being read
        yield ServerSentEvent(data=_dumps({"detail": NO_RUN, "status": 404}), event="error")
    except WorkerFailed as exc:
        detail, status = _failure(exc)
        yield ServerSentEvent(data=_dumps({"detail": detail, "status": status}), event="error")


@api.post(
    "/train",
    response_model=TrainResult,
    responses=ERRORS,
    summary="Train the lesson's network (JSON, or SSE with Accept: text/event-stream)",
)
async def train_route(
    request: Request, body: Annotated[TrainRequest | None, Body()] = None
) -> Response:
    """Train a network and return its history, or stream each epoch as an `epoch` event and the
    response body as a final `result` event. A run whose loss stops being finite ends `diverged`.
    """
    settings: Settings = request.app.state.settings
    config = full_config((body or TrainRequest()).model_dump())
    work = estimate_work(config)
    if work > settings.train_work_budget:
        return JSONResponse(
            {
                "detail": f"too much work: this run needs about {work:.2g} units (epochs × "
                f"samples × parameters) and the limit is {settings.train_work_budget:.2g}; use "
                "fewer epochs, fewer or smaller hidden layers, or a larger batch"
            },
            status_code=422,
        )
    backend = get_backend(request)
    try:
        if not await backend.has_room():
            return _busy()
    except WorkerFailed as exc:  # the queue's database is unreachable
        detail, status = _failure(exc)
        return JSONResponse({"detail": detail}, status_code=status)
    if "text/event-stream" in request.headers.get("accept", ""):
        every = max(1, config["epochs"] // BOUNDARY_FRAMES)
        messages = backend.stream(config, boundary_every=every)
        return EventSourceResponse(
            _events(messages), ping=15, headers={"Cache-Control": "no-store"}
        )

    run = asyncio.ensure_future(backend.run(config))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({run, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not run.done():
            run.cancel()  # the client left: stop its training
    if not run.done() or run.cancelled():  # cancel() only asks; the task may not have ended yet
        return Response(status_code=499)
    try:
        return JSONResponse(run.result())
    except Busy:
        return _busy()
    except WorkerFailed as exc:  # logged by the backend; the run can simply be tried again
        detail, status = _failure(exc)
        return JSONResponse({"detail": detail}, status_code=status)


RUN_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No stored run has this id (runs are stored with TRAINING_BACKEND=queue)"},
}


@api.get(
    "/train/runs/{run_id}/events",
    responses=RUN_ERRORS,
    response_class=EventSourceResponse,
    summary="Follow a queued run from any instance (SSE; TRAINING_BACKEND=queue)",
)
async def follow_run(
    request: Request, run_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$")]
) -> Response:
    """The run's stored epochs, then each new one as its worker announces it, then `result`
    (or `error`): the same events as POST /train, each epoch with its number as the event id.
    A reader that reconnects with `Last-Event-ID` (or `?after=`) resumes after that epoch."""
    backend = get_backend(request)
    if not hasattr(backend, "follow"):
        return JSONResponse(
            {"detail": "runs are stored only with TRAINING_BACKEND=queue"}, status_code=404
        )
    resume = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    after = int(resume) if resume.isdigit() and len(resume) < 7 else 0
    try:
        if not await backend.exists(run_id):
            raise UnknownRun(run_id)
    except UnknownRun:
        return JSONResponse({"detail": NO_RUN}, status_code=404)
    except WorkerFailed as exc:
        detail, status = _failure(exc)
        return JSONResponse({"detail": detail}, status_code=status)
    return EventSourceResponse(
        _events(backend.follow(run_id, after), ids=True),
        ping=15,
        headers={"Cache-Control": "no-store"},
    )


@pages.get("/playground", response_class=HTMLResponse)
def playground_page(request: Request) -> HTMLResponse:
    """The playground, its form prefilled from the query string (the same URL a run shares)."""
    values, problems = parse_playground_query(request.query_params)
    form = dict(values)
    form["hidden_layers"] = ",".join(str(n) for n in values["hidden_layers"])
    form["batch_size"] = "full" if values["batch_size"] is None else values["batch_size"]
    return render(
        request,
        "playground.html",
        {
            "form": form,
            "problems": problems,
            "query": playground_query(values),
            "default_noise": DEFAULT_NOISE,
        },
    )
