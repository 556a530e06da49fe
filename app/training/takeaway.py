"""GET /train/{run_id}/export (a finished run as a zip) and POST /train/step (one mini-batch)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..openapi import operation_id
from ..web.schemas import UNPARSABLE_BODY
from .archive import archive_of
from .export import export_zip
from .quota import QuotaExceeded, TrainingQuota
from .routes import client_keys, require_json
from .runner import full_config
from .schemas import StepRequest, StepResult
from .stepper import StepError, take_step

api = APIRouter(tags=["training"], generate_unique_id_function=operation_id)
#: Steps one client (as /train counts clients) may have asked for at once, and in a minute.
STEPS_AT_ONCE, STEPS_PER_MINUTE = 2, 300

#: /train and /train/step take a learner's own points (2,000 rows as JSON, or as CSV text), so
#: their bodies may be larger than the rest of the site's; every other path keeps the default.
TRAIN_BODY_BYTES = 320 * 1024


def body_limits(default: int) -> dict[str, int]:
    """The request body limits of the training routes (never below the site's default)."""
    limit = max(default, TRAIN_BODY_BYTES)
    return {"/train": limit, "/train/step": limit}


NO_EXPORT = (
    "no run with this id finished here in the last hour: runs are kept for an hour, in the "
    "server process that trained them; train it again to download it"
)
TOO_LARGE_TO_EXPORT = (
    "this network has more than 100,000 parameters, too many to keep for download; train a "
    "smaller one, or run `backprop train` on your own machine"
)
EXPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The zip", "content": {"application/zip": {}}},
    404: {
        "description": "No run with this id finished in this server process within the hour "
        "(runs are kept in the memory of the process that trained them)"
    },
    409: {
        "description": "The run cannot be exported: it diverged, or its network has more than "
        "100,000 parameters (too large to keep)"
    },
}


@api.get(
    "/train/{run_id}/export",
    responses=EXPORT_ERRORS,
    response_class=Response,
    summary="Download a finished run: network.py, weights.npz and data.csv in a zip",
)
async def export_run(
    request: Request, run_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$")]
) -> Response:
    """A run of the last hour as a zip; `python network.py` in it prints the run's test
    accuracy. The run id is the only key: whoever started the run was given it."""
    # the archive is read on the event loop, where /train writes it (no lock needed)
    run = archive_of(request.app.state).get(run_id)
    if run is None:
        return JSONResponse({"detail": NO_EXPORT}, status_code=404)
    if run.status != "completed":
        return JSONResponse(
            {"detail": "this run diverged: its weights are not numbers, so there is nothing to "
             "export; train it again with a smaller learning rate"},
            status_code=409,
        )  # fmt: skip
    if run.params is None:
        return JSONResponse({"detail": TOO_LARGE_TO_EXPORT}, status_code=409)
    # building the zip regenerates the split and writes the CSV: off the event loop
    body = await run_in_threadpool(export_zip, run.config, run.params, run.test_accuracy)
    name = f"backprop-{run.config['dataset']}-{run_id[:8]}.zip"
    return Response(
        body,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


STEP_ERRORS: dict[int | str, dict[str, Any]] = {
    **UNPARSABLE_BODY,
    415: {"description": "The body is not `application/json`"},
    422: {"description": "A field out of bounds, a network too large to step, or a state that "
          "does not fit the network (named in `detail`)"},
    429: {"description": "This client asked for 2 steps at once or 300 in the last minute; "
          "retry after `Retry-After` seconds"},
}  # fmt: skip


@api.post(
    "/train/step",
    response_model=StepResult,
    responses=STEP_ERRORS,
    dependencies=[Depends(require_json)],
    summary="Train one mini-batch of a small network and show every number",
)
async def train_step(request: Request, body: StepRequest) -> Response:
    """One step of gradient descent on the mini-batch `/train` would take next: per layer the
    activations, weights, the gradient of the loss for each weight and bias, and the update
    applied, then the new `state` to send with the next step. For networks of at most 3 hidden
    layers of at most 8 units; the client keeps the state, so nothing is stored."""
    config = full_config(body.config.model_dump())
    state = None if body.state is None else body.state.model_dump()
    quota = getattr(request.app.state, "step_quota", None)
    if quota is None:
        quota = request.app.state.step_quota = TrainingQuota(STEPS_AT_ONCE, STEPS_PER_MINUTE)
    settings = request.app.state.settings
    try:
        ticket = quota.admit(await client_keys(request, settings))
    except QuotaExceeded as exc:
        detail = (
            f"too many steps: one client may ask for {STEPS_AT_ONCE} at once and "
            f"{STEPS_PER_MINUTE} a minute; try again in {exc.retry_after} s"
        )
        return JSONResponse(
            {"detail": detail}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )
    try:
        return JSONResponse(await run_in_threadpool(take_step, config, state))
    except StepError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    finally:
        ticket.release()
