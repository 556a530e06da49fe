"""POST /train (JSON or Server-Sent Events) and the /playground page."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from ..accounts.deps import user_of
from ..config import Settings
from ..metrics import TRAINING_ADMITTED, TRAINING_DIVERGED, TRAINING_REFUSED
from ..openapi import operation_id
from ..web.clients import client_address
from ..web.schemas import UNPARSABLE_BODY
from ..web.security import VISITOR_COOKIE, read_cookie, visitor_id
from ..web.templates import render
from .archive import archive_of
from .backend import (
    Busy,
    LocalBackend,
    TrainingBackend,
    TrainingError,
    UnknownRun,
    WorkerFailed,
)
from .datasets import DEFAULT_NOISE
from .query import parse_playground_query, playground_query
from .quota import QuotaExceeded, Ticket, TrainingQuota
from .runner import estimate_work, full_config
from .schemas import TrainRequest, TrainResult

api = APIRouter(tags=["training"], generate_unique_id_function=operation_id)
pages = APIRouter(include_in_schema=False)

#: Seconds a client turned away is asked to wait; most runs here finish well within it.
RETRY_AFTER = 5
#: Decision-boundary snapshots streamed over one run of a 2-D set.
BOUNDARY_FRAMES = 40

#: The stream a client gets with `Accept: text/event-stream`, as OpenAPI 3.1 can say it.
EVENT_STREAM = {
    "schema": {
        "type": "string",
        "description": "Server-Sent Events, in this order: one `epoch` event per epoch (data: "
        "a HistoryRow), a `boundary` event every few epochs on 2-D sets (data: `epoch` and a "
        "DecisionBoundary), then one `result` (data: the TrainResult a JSON client gets). "
        "If the run cannot finish, an `error` event (data: `detail` and `status`) ends it.",
    },
    "example": 'event: epoch\r\ndata: {"epoch":1,"loss":0.62,"train_accuracy":0.71,'
    '"test_accuracy":0.69}\r\n\r\nevent: result\r\ndata: {"run_id":"...","status":'
    '"completed",...}\r\n\r\n',
}

ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The finished run as JSON, or its epochs as they train (event stream)",
        "content": {"text/event-stream": EVENT_STREAM},
    },
    **UNPARSABLE_BODY,
    415: {"description": "The body is not `application/json`"},
    422: {"description": "A field out of bounds (named in `detail`), or too much work"},
    429: {
        "description": "This client is at TRAIN_PER_CLIENT or TRAIN_PER_MINUTE, or every "
        "training process is busy (`detail` says which); retry after `Retry-After` seconds"
    },
    500: {"description": "The run failed inside training (a bug, logged by the server)"},
    503: {"description": "The training process stopped before the run finished; try again"},
}


def get_backend(request: Request) -> TrainingBackend:
    """Where this app's runs train (TRAINING_BACKEND; see app/training/backend.py)."""
    return request.app.state.training


def get_quota(request: Request) -> TrainingQuota:
    """The app's per-client quotas, created with the first training request."""
    quota = getattr(request.app.state, "training_quota", None)
    if quota is None:
        settings: Settings = request.app.state.settings
        quota = TrainingQuota(settings.train_per_client, settings.train_per_minute)
        request.app.state.training_quota = quota
    return quota


async def client_keys(request: Request, settings: Settings) -> list[str]:
    """Who is training: the account, or a guest's address and (if any) visitor cookie."""
    user = await user_of(request)
    if user is not None:
        return [f"user:{user.id}"]
    keys = [f"address:{client_address(request, settings)}"]
    # read, not issued: a client without the cookie is counted by its address alone
    visitor = visitor_id(request.app.state.secret, read_cookie(request.scope, VISITOR_COOKIE))
    return keys + [f"visitor:{visitor}"] if visitor else keys


async def require_json(request: Request) -> None:
    """415 unless the body is declared JSON. A form, text/plain or a body with no type is what
    another site can make a visitor's browser send without asking us first (no preflight)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "send the run as JSON, with Content-Type: application/json")


class _Stream(EventSourceResponse):
    """The SSE response, which gives the client's quota back if the stream never started."""

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self.ticket.handed_over:
                self.ticket.release()


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
#: A run that raised: trying again would fail the same way, and the details stay in the log.
TRAINING_ERROR = "training failed; it has been logged"


def _busy() -> JSONResponse:
    TRAINING_REFUSED.inc()
    return JSONResponse(
        {"detail": "every training process is busy; try again in a few seconds"},
        status_code=429,
        headers={"Retry-After": str(RETRY_AFTER)},
    )


def _over_quota(exc: QuotaExceeded) -> JSONResponse:
    return JSONResponse(
        {"detail": exc.detail}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
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


def _count_outcome(result: dict[str, Any]) -> None:
    if result.get("status") == "diverged":
        TRAINING_DIVERGED.inc()


async def _events(
    messages: AsyncIterator[tuple],
    ticket: Ticket | None = None,
    ids: bool = False,
    keep: Callable[[dict[str, Any]], None] | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """A run's events as SSE; `ids` numbers epochs (for Last-Event-ID on reconnect); `keep`
    is given each result before it is sent (it takes the weights out for export)."""
    if ticket is not None:
        # From here the backend gives the quota back (no await before it has admitted the run).
        ticket.handed_over = True
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
                    if kind == "result":
                        _count_outcome(payload[0])
                        if keep is not None:
                            keep(payload[0])
                        payload[0].pop("params", None)  # weights never go to a client
                    yield ServerSentEvent(data=_dumps(payload[0]), event=kind)
    except Busy:  # lost a race for the last place between the check and the stream's start
        if ticket is not None:
            ticket.cancel()
        TRAINING_REFUSED.inc()
        yield ServerSentEvent(data=_dumps({"detail": "busy", "status": 429}), event="error")
    except UnknownRun:  # deleted (TRAIN_KEEP_HOURS) while being read
        yield ServerSentEvent(data=_dumps({"detail": NO_RUN, "status": 404}), event="error")
    except TrainingError:
        yield ServerSentEvent(data=_dumps({"detail": TRAINING_ERROR, "status": 500}), event="error")
    except WorkerFailed as exc:
        detail, status = _failure(exc)
        yield ServerSentEvent(data=_dumps({"detail": detail, "status": status}), event="error")


async def _run(backend: TrainingBackend, config: dict[str, Any], ticket: Ticket) -> dict[str, Any]:
    # From here the backend gives the quota back (no await before it has admitted the run).
    ticket.handed_over = True
    return await backend.run(config, on_release=ticket.release)


@api.post(
    "/train",
    response_model=TrainResult,
    responses=ERRORS,
    dependencies=[Depends(require_json)],
    summary="Train the lesson's network (JSON, or SSE with Accept: text/event-stream)",
)
async def train(request: Request, body: Annotated[TrainRequest | None, Body()] = None) -> Response:
    """Train a network and return its history, or stream each epoch as an `epoch` event and the
    response body as a final `result` event. A run whose loss stops being finite ends `diverged`.
    """
    settings: Settings = request.app.state.settings
    config = full_config((body or TrainRequest()).model_dump())
    archive = archive_of(request.app.state)

    def keep(result: dict[str, Any]) -> None:
        result["exportable"] = archive.keep(config=config, result=result)

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
    try:
        ticket = get_quota(request).admit(await client_keys(request, settings))
    except QuotaExceeded as exc:
        return _over_quota(exc)
    backend = get_backend(request)
    try:
        if not await backend.has_room():
            ticket.cancel()
            return _busy()
    except WorkerFailed as exc:  # the queue's database is unreachable
        ticket.cancel()
        detail, status = _failure(exc)
        return JSONResponse({"detail": detail}, status_code=status)
    TRAINING_ADMITTED.inc()
    if "text/event-stream" in request.headers.get("accept", ""):
        every = max(1, config["epochs"] // BOUNDARY_FRAMES)
        messages = backend.stream(config, boundary_every=every, on_release=ticket.release)
        return _Stream(
            _events(messages, ticket, keep=keep),
            ping=15,
            headers={"Cache-Control": "no-store"},
            ticket=ticket,
        )

    run = asyncio.ensure_future(_run(backend, config, ticket))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({run, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not run.done():
            run.cancel()  # the client left: stop its training
        if not ticket.handed_over:  # cancelled before it ever started
            ticket.release()
    if not run.done() or run.cancelled():  # cancel() only asks; the task may not have ended yet
        return Response(status_code=499)
    try:
        result = run.result()
    except Busy:
        ticket.cancel()
        return _busy()
    except TrainingError:  # logged by the pool with its traceback
        return JSONResponse({"detail": TRAINING_ERROR}, status_code=500)
    except WorkerFailed as exc:  # logged by the backend; the run can simply be tried again
        detail, status = _failure(exc)
        return JSONResponse({"detail": detail}, status_code=status)
    _count_outcome(result)
    keep(result)
    return JSONResponse(result)


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
    # str.isdigit is true of "²" and "٣", which int() refuses or reads: only ASCII digits count.
    after = int(resume) if resume.isascii() and resume.isdigit() and len(resume) < 7 else 0
    try:
        if not await backend.exists(run_id):
            raise UnknownRun(run_id)
    except UnknownRun:
        return JSONResponse({"detail": NO_RUN}, status_code=404)
    except WorkerFailed as exc:
        detail, status = _failure(exc)
        return JSONResponse({"detail": detail}, status_code=status)
    archive = archive_of(request.app.state)

    def exportable_here(result: dict[str, Any]) -> None:
        # as POST /train says of its own runs: whether GET .../export works on this instance
        kept = archive.get(run_id)
        result["exportable"] = bool(kept and kept.params is not None and kept.status == "completed")

    return EventSourceResponse(
        _events(backend.follow(run_id, after), ids=True, keep=exportable_here),
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
