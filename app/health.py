"""Liveness (/healthz) and readiness (/readyz) probes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from .db import Database
from .openapi import operation_id
from .training.routes import get_backend

router = APIRouter(tags=["meta"], generate_unique_id_function=operation_id)

#: Seconds the database gets to answer before the probe says it does not.
DATABASE_TIMEOUT = 5.0


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(description="ready, or unavailable", examples=["ready"])
    reason: str | None = Field(
        default=None, description="Why not ready: the first check that failed"
    )
    checks: dict[str, str] = Field(
        description="Each check's outcome",
        examples=[{"database": "ok", "content": "1 lesson(s)", "training": "ok"}],
    )


@router.get("/healthz", response_model=Health, summary="Liveness probe: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _database(db: Database, revision: str | None) -> str:
    """ "ok" when the database answers and is at the schema revision the app migrated it to."""
    with db.engine.connect() as connection:
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if found != revision:
        return f"at schema revision {found!r}, not {revision!r}"
    return "ok"


async def _check_database(request: Request) -> str:
    state = request.app.state
    try:
        return await asyncio.wait_for(
            run_in_threadpool(_database, state.db, state.schema_revision), DATABASE_TIMEOUT
        )
    except TimeoutError:
        return f"no answer within {DATABASE_TIMEOUT:g} s"
    except Exception as exc:  # any driver error: the probe reports it rather than failing
        first_line = (str(exc).splitlines() or [""])[0][:200]
        return f"{type(exc).__name__}: {first_line}"


def _check_training(request: Request) -> str:
    backend = get_backend(request)
    pool = getattr(backend, "pool", None)  # the local backend's processes; the queue's are workers
    if pool is None:
        return "ok"
    try:
        pool.ready()
    except Exception as exc:  # e.g. OSError: no process could be started
        return f"no training process could start: {type(exc).__name__}: {exc}"
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready; `reason` says why"}},
    summary="Readiness probe: the database answers, lessons are loaded, training can start",
)
async def readyz(request: Request) -> Any:
    """200 when the site can serve everything; 503 with the failed check's reason otherwise."""
    lessons = len(request.app.state.course.lessons)
    checks = {
        "database": await _check_database(request),
        "content": f"{lessons} lesson(s)" if lessons else "no lessons loaded from CONTENT_DIR",
        "training": _check_training(request),
    }
    failed = [
        f"{name}: {outcome}"
        for name, outcome in checks.items()
        if outcome != "ok" and not (name == "content" and lessons)
    ]
    if failed:
        body = {"status": "unavailable", "reason": "; ".join(failed), "checks": checks}
        return JSONResponse(body, status_code=503, headers={"Cache-Control": "no-store"})
    return {"status": "ready", "reason": None, "checks": checks}
