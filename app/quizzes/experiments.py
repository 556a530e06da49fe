"""Experiment questions at submission: every answer's configuration trained before grading.

A submission's experiment answers run through the app's training backend like a /train request:
the same work budget (422), the client's quotas and the pool's room (429 with Retry-After). The
runs come first and the attempt is stored only once all of them have finished, so a submission
that cannot run in full is turned away whole and nothing of it is stored. A configuration that
`backprop check --run` has measured (an author's solution, say) is read from the RunStore
instead of trained: runs are seeded, so it would measure the same figures. Learners' own runs
are not added to that store (it would grow with every configuration anyone tries); each is kept
with its attempt instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request

from ..content import Quiz
from ..metrics import TRAINING_ADMITTED, TRAINING_REFUSED
from ..training.backend import Busy, TrainingError, WorkerFailed
from ..training.figures import FIGURES, run_key, summary
from ..training.quota import QuotaExceeded
from ..training.routes import (
    RETRY_AFTER,
    TRAINING_ERROR,
    TRAINING_FAILED,
    client_keys,
    get_backend,
    get_quota,
)
from ..training.runner import estimate_work, full_config
from .answers import ExperimentAnswer, FieldError
from .grading import AnswerIds, check_answers

BUSY = "every training process is busy; your answers were not graded or stored, submit again"


class Unsubmitted(HTTPException):
    """A submission turned away before grading over its experiments: the no-JavaScript form
    comes back with the learner's answers filled in."""


class NotAdmitted(Unsubmitted):
    """A submission whose runs could not all be admitted: 429, nothing stored."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(429, detail, headers={"Retry-After": str(retry_after)})


def experiment_configs(
    quiz: Quiz, answers: Mapping[str, Any], *, ids: AnswerIds | None, budget: float
) -> dict[str, dict[str, Any]]:
    """Question id → the configuration its experiment answer trains; AnswerError (422) for a
    bad field or a run over the work budget (FieldError), or any other bad answer."""
    configs = {}
    for question_id, answer in check_answers(quiz, answers, ids).items():
        if not isinstance(answer, ExperimentAnswer):
            continue
        work = estimate_work(full_config(answer.config))
        if work > budget:
            raise FieldError(
                f"question {question_id!r}: too much work: this run needs about {work:.2g} units "
                f"(epochs × samples × parameters) and the limit is {budget:.2g}; choose fewer "
                "or smaller hidden layers"
            )
        configs[question_id] = answer.config
    return configs


def _figures(found: Mapping[str, Any]) -> dict[str, Any]:
    return {key: found.get(key) for key in FIGURES}


async def _train(request: Request, config: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """One run through the backend, as /train admits it; NotAdmitted or a 5xx otherwise."""
    try:
        ticket = get_quota(request).admit(keys)
    except QuotaExceeded as exc:
        raise NotAdmitted(f"{exc.detail}; your answers were not stored", exc.retry_after) from None
    backend = get_backend(request)
    # From here the backend gives the quota back (no await before it has admitted the run).
    ticket.handed_over = True
    try:
        result = await backend.run(config, on_release=ticket.release)
    except Busy:
        ticket.cancel()
        TRAINING_REFUSED.inc()
        raise NotAdmitted(BUSY, RETRY_AFTER) from None
    except TrainingError:  # logged by the pool with its traceback
        raise HTTPException(500, TRAINING_ERROR) from None
    except WorkerFailed as exc:
        detail = getattr(exc, "detail", TRAINING_FAILED)
        raise HTTPException(getattr(exc, "status", 503), detail) from None
    TRAINING_ADMITTED.inc()
    return _figures(summary(result))


async def run_experiments(
    request: Request, configs: Mapping[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Question id → its run's figures (FIGURES), measured or trained now; NotAdmitted (429)
    when the pool or the client's quota turns a run away."""
    store = request.app.state.run_store
    figures: dict[str, dict[str, Any]] = {}
    by_key: dict[str, dict[str, Any]] = {}
    todo: dict[str, dict[str, Any]] = {}
    for question_id, config in configs.items():
        key = run_key(config)
        found = by_key.get(key) or store.get(key)
        if found is not None:
            figures[question_id] = by_key[key] = _figures(found)
        else:
            todo[question_id] = config
    if not todo:
        return figures
    backend = get_backend(request)
    try:
        room = await backend.has_room()
    except WorkerFailed as exc:  # the queue's database is unreachable
        raise HTTPException(getattr(exc, "status", 503), TRAINING_FAILED) from None
    if not room:  # turned away before anything trains
        TRAINING_REFUSED.inc()
        raise NotAdmitted(BUSY, RETRY_AFTER)
    keys = await client_keys(request, request.app.state.settings)
    # One after another: a client may have only TRAIN_PER_CLIENT runs going at once.
    for question_id, config in todo.items():
        key = run_key(config)
        if key not in by_key:
            by_key[key] = await _train(request, config, keys)
        figures[question_id] = by_key[key]
    return figures
