"""Quiz routes: the JSON API and the no-JavaScript form on the lesson page."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from ..accounts.progress import AttemptsUsed, NoSuchUser, record_attempt, record_guest_attempt
from ..content import Lesson, Quiz
from ..metrics import QUIZ_ATTEMPTS
from ..openapi import operation_id
from ..web.deps import LessonDep, SessionDep, SettingsDep
from ..web.schemas import TOO_LARGE, UNPARSABLE_BODY, ErrorBody
from ..web.security import CSRF_FIELD, csrf_ok
from ..web.templates import render
from .answers import FieldError
from .charts import accuracy_chart, loss_chart
from .deps import LearnerDep, guest_id, tracks_guests
from .experiments import Unsubmitted, experiment_configs, run_experiments
from .grading import AnswerError, AnswerIds, Grade
from .runs import runs_for
from .schemas import AttemptIn, ExperimentOut, GradedAttempt, OptionOut, QuestionOut, QuizOut
from .service import (
    Learner,
    answer_ids,
    attempts_left,
    form_answers,
    grade_lesson,
    pass_percent_for,
    present,
    reveals,
    review,
)

log = logging.getLogger("backprop")

api = APIRouter(prefix="/api/lessons", tags=["quizzes"], generate_unique_id_function=operation_id)
pages = APIRouter(include_in_schema=False)

MAX_FORM_FIELDS = 500

UNAUTHORIZED = {401: {"model": ErrorBody, "description": "The bearer token is invalid or expired"}}
NO_QUIZ = {404: {"model": ErrorBody, "description": "No such lesson, or it has no quiz"}}
NOT_ADMITTED = {
    429: {
        "model": ErrorBody,
        "description": "An experiment's run could not be admitted (pool full or the client's "
        "training quota): nothing graded or stored; retry after `Retry-After` seconds",
    }
}
USED_UP = {409: {"model": ErrorBody, "description": "Every attempt the lesson allows is made"}}
NOT_STORED = "the attempt was not stored; submit again"


def used_up(allowed: int) -> HTTPException:
    plural = "" if allowed == 1 else "s"
    return HTTPException(
        409, f"this quiz allows {allowed} attempt{plural} and you have made them all"
    )


def stored(
    session: Session, learner: Learner, quiz: Quiz, result: Grade, secret: str, now: datetime
) -> tuple[int | None, Learner]:
    """Store a learner's attempt, or count a guest's; (attempt id, record after it), or 409."""
    attempts, passed = learner.attempts + 1, learner.passed or result.passed
    try:
        if learner.user_id is not None:
            attempt_id = record_attempt(
                session,
                user_id=learner.user_id,
                grade=result,
                max_attempts=quiz.max_attempts,
                now=now,
            )
        else:
            attempt_id = None
            if tracks_guests(quiz):
                visitor = guest_id(secret, learner.key.removeprefix("visitor:"))
                attempts, passed = record_guest_attempt(
                    session,
                    visitor=visitor,
                    lesson_id=result.lesson_id,
                    passed=result.passed,
                    max_attempts=quiz.max_attempts,
                )
    except AttemptsUsed as exc:
        raise used_up(exc.allowed) from None
    except NoSuchUser:
        raise HTTPException(401, "not signed in", headers={"WWW-Authenticate": "Bearer"}) from None
    except (DBAPIError, PoolTimeout, TimeoutError):
        # locked past the timeouts, unreachable, or refusing the rows: the write rolled the
        # transaction back, so the learner is told so and can simply submit again
        log.exception("storing a quiz attempt failed")
        raise HTTPException(503, NOT_STORED) from None
    if attempt_id is not None:
        QUIZ_ATTEMPTS.inc()
    after = Learner(learner.key, learner.round, learner.user_id, attempts, passed)
    return attempt_id, after


def require_quiz(lesson: Lesson) -> Quiz:
    if lesson.quiz is None:
        raise HTTPException(status_code=404, detail=f"lesson {lesson.id!r} has no knowledge check")
    return lesson.quiz


def require_attempts_left(quiz: Quiz, learner: Learner) -> None:
    """409 before any grading when the learner has no attempt left."""
    if attempts_left(quiz, learner) == 0:
        assert quiz.max_attempts is not None
        raise used_up(quiz.max_attempts)


def grade_or_422(
    lesson: Lesson,
    answers: dict[str, Any],
    settings: Any,
    ids: AnswerIds,
    runs: dict[str, dict[str, Any]] | None = None,
) -> Grade:
    """Grade a submission; one that names unknown ids or sends a wrong shape is a 422 saying so."""
    try:
        return grade_lesson(lesson, answers, default_pass=settings.pass_percent, ids=ids, runs=runs)
    except AnswerError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


def configs_or_422(
    quiz: Quiz, answers: dict[str, Any], settings: Any, ids: AnswerIds
) -> dict[str, dict[str, Any]]:
    """The runs a submission's experiment answers make; any bad answer is a 422 first."""
    try:
        return experiment_configs(quiz, answers, ids=ids, budget=settings.train_work_budget)
    except FieldError as exc:
        raise Unsubmitted(422, str(exc)) from None
    except AnswerError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


@api.get(
    "/{lesson_id}/quiz",
    response_model=QuizOut,
    summary="A lesson's quiz in this learner's order and ids, without answers",
    responses={**UNAUTHORIZED, **NO_QUIZ},
)
async def get_quiz(
    request: Request, lesson: LessonDep, learner: LearnerDep, settings: SettingsDep
) -> QuizOut:
    quiz = require_quiz(lesson)
    return QuizOut(
        lesson_id=lesson.id,
        pass_percent=pass_percent_for(lesson, settings.pass_percent),
        review_answers=quiz.review_answers,
        max_attempts=quiz.max_attempts,
        attempts_left=attempts_left(quiz, learner),
        questions=[
            QuestionOut(
                id=q.id,
                type=q.type,  # type: ignore[arg-type]
                prompt=q.prompt_html,
                options=[OptionOut(id=oid, text=html) for oid, html in q.options],
                items=[OptionOut(id=iid, text=html) for iid, html in q.items],
                run=q.run,
                experiment=ExperimentOut.model_validate(q.experiment) if q.experiment else None,
            )
            for q in present(quiz, learner=learner, secret=request.app.state.secret)
        ],
    )


async def submit(
    request: Request,
    lesson: Lesson,
    answers: dict[str, Any],
    learner: Learner,
    session: Session,
    settings: Any,
) -> tuple[Grade, int | None, Learner, bool, dict[str, dict[str, Any]], AnswerIds]:
    """Grade, store, and fetch the real runs the review shows: the API's and the form's path."""
    quiz = require_quiz(lesson)
    require_attempts_left(quiz, learner)
    secret = request.app.state.secret
    ids = answer_ids(quiz, learner, secret)
    configs = configs_or_422(quiz, answers, settings, ids)
    # every experiment trains before anything is stored: a run turned away (429) stores nothing
    experiments = await run_experiments(request, configs) if configs else {}
    result = grade_or_422(lesson, answers, settings, ids, experiments)
    now = request.app.state.clock()
    attempt_id, after = await run_in_threadpool(stored, session, learner, quiz, result, secret, now)
    reveal = reveals(quiz, passed=after.passed)
    runs = await runs_for(request, quiz) if reveal else {}
    return result, attempt_id, after, reveal, runs, ids


@api.post(
    "/{lesson_id}/quiz/attempts",
    response_model=GradedAttempt,
    summary="Grade answers to a lesson's quiz",
    responses={
        **UNAUTHORIZED,
        **UNPARSABLE_BODY,
        **NO_QUIZ,
        **USED_UP,
        **TOO_LARGE,
        **NOT_ADMITTED,
        422: {
            "model": ErrorBody,
            "description": "An unknown id, a wrong answer shape, or an experiment field that "
            "is not free or out of /train's bounds (the question and field named)",
        },
        503: {"model": ErrorBody, "description": "The attempt was not stored; submit again"},
    },
)
async def submit_attempt(
    request: Request,
    lesson: LessonDep,
    body: AttemptIn,
    learner: LearnerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> GradedAttempt:
    """Graded for everyone, stored for a learner; ids as this learner's GET .../quiz shows them."""
    result, attempt_id, after, reveal, runs, ids = await submit(
        request, lesson, body.answers, learner, session, settings
    )
    assert lesson.quiz is not None
    return GradedAttempt.of(
        result,
        attempt_id=attempt_id,
        ids=ids,
        reveal=reveal,
        runs=runs,
        attempts_left=attempts_left(lesson.quiz, after),
    )


def unsubmitted(
    request: Request,
    lesson: Lesson,
    learner: Learner,
    settings: Any,
    fields: list[tuple[str, str]],
    exc: Unsubmitted,
) -> HTMLResponse:
    """The form again, every answer as the learner gave it, saying why it was not graded."""
    quiz = require_quiz(lesson)
    filled: dict[str, list[str]] = {}
    for key, value in fields:
        filled.setdefault(key, []).append(value)
    response = render(
        request,
        "quiz_unsubmitted.html",
        {
            "lesson": lesson,
            "detail": exc.detail,
            "questions": present(quiz, learner=learner, secret=request.app.state.secret),
            "pass_percent": pass_percent_for(lesson, settings.pass_percent),
            "attempts_left": attempts_left(quiz, learner),
            "filled": filled,
        },
        status_code=exc.status_code,
    )
    response.headers.update(exc.headers or {})
    return response


@pages.post("/lessons/{lesson_id}/quiz", response_class=HTMLResponse)
async def submit_form(
    request: Request,
    lesson: LessonDep,
    learner: LearnerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """The no-JavaScript path: a plain form post answered with the review page."""
    quiz = require_quiz(lesson)
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    if not csrf_ok(request.app.state.secret, request.state.csrf_subject, form.get(CSRF_FIELD)):
        raise HTTPException(
            status_code=403,
            detail="This form has expired or did not come from this site. Reload the lesson "
            "and submit again.",
        )
    fields: list[tuple[str, str]] = []
    for key, value in form.multi_items():
        if key == CSRF_FIELD:
            continue
        if not isinstance(value, str):
            raise HTTPException(status_code=422, detail=f"answer to {key!r} must be text")
        fields.append((key, value))
    try:
        answers = form_answers(quiz, fields)
        result, attempt_id, after, reveal, runs, _ = await submit(
            request, lesson, answers, learner, session, settings
        )
    except FieldError as exc:
        return unsubmitted(request, lesson, learner, settings, fields, Unsubmitted(422, str(exc)))
    except Unsubmitted as exc:
        return unsubmitted(request, lesson, learner, settings, fields, exc)
    return render(
        request,
        "quiz_result.html",
        {
            "lesson": lesson,
            "grade": result,
            "attempt_id": attempt_id,
            "reveal": reveal,
            "runs": runs,
            "loss_chart": loss_chart,
            "accuracy_chart": accuracy_chart,
            "attempts_left": attempts_left(quiz, after),
            "reviewed": review(
                lesson, result, learner=learner, secret=request.app.state.secret, reveal=reveal
            ),
        },
    )
