"""Quiz routes: the JSON API and the no-JavaScript form on the lesson page."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from ..accounts.progress import NoSuchUser, record_attempt
from ..config import Settings
from ..content import Lesson
from ..deps import LessonDep, OptionalUser, SessionDep, SettingsDep
from ..lessons.schemas import UNPARSABLE_BODY, ErrorBody
from ..metrics import QUIZ_ATTEMPTS
from ..openapi import operation_id
from ..security import CSRF_FIELD, csrf_ok
from ..web import render
from .deps import LearnerDep
from .grading import AnswerError, Grade
from .schemas import AttemptIn, GradedAttempt, OptionOut, QuestionOut, QuizOut
from .service import grade_lesson, pass_percent_for, present, review

log = logging.getLogger("backprop")

api = APIRouter(prefix="/api/lessons", tags=["quizzes"], generate_unique_id_function=operation_id)
pages = APIRouter(include_in_schema=False)

MAX_FORM_FIELDS = 500

UNAUTHORIZED = {401: {"model": ErrorBody, "description": "The bearer token is invalid or expired"}}
NOT_STORED = "the attempt was not stored; submit again"


def stored(session: Session, user_id: int | None, result: Grade) -> int | None:
    """The id of a signed-in learner's attempt once committed; None for a guest (not stored)."""
    if user_id is None:
        return None
    try:
        attempt_id = record_attempt(session, user_id=user_id, grade=result)
    except NoSuchUser:
        raise HTTPException(401, "not signed in", headers={"WWW-Authenticate": "Bearer"}) from None
    except (DBAPIError, PoolTimeout, TimeoutError):
        # locked past the timeouts, unreachable, or refusing the rows: record_attempt rolled
        # the transaction back, so the learner is told so and can simply submit again
        log.exception("storing a quiz attempt failed")
        raise HTTPException(503, NOT_STORED) from None
    QUIZ_ATTEMPTS.inc()
    return attempt_id


NO_QUIZ = {404: {"model": ErrorBody, "description": "No such lesson, or it has no quiz"}}


def require_quiz(lesson: Lesson):
    if lesson.quiz is None:
        raise HTTPException(status_code=404, detail=f"lesson {lesson.id!r} has no knowledge check")
    return lesson.quiz


def grade_or_422(lesson: Lesson, answers: dict[str, str | None], settings: Settings) -> Grade:
    """Grade a submission; one that names unknown or mismatched ids is a 422 saying which."""
    try:
        return grade_lesson(lesson, answers, default_pass=settings.pass_percent)
    except AnswerError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


@api.get(
    "/{lesson_id}/quiz",
    response_model=QuizOut,
    summary="A lesson's quiz, options in this learner's order, without answers",
    responses={**UNAUTHORIZED, **NO_QUIZ},
)
async def get_quiz(
    request: Request, lesson: LessonDep, learner: LearnerDep, settings: SettingsDep
) -> QuizOut:
    quiz = require_quiz(lesson)
    return QuizOut(
        lesson_id=lesson.id,
        pass_percent=pass_percent_for(lesson, settings.pass_percent),
        questions=[
            QuestionOut(
                id=q.id,
                prompt=q.prompt_html,
                options=[OptionOut(id=oid, text=html) for oid, html in q.options],
            )
            for q in present(quiz, learner=learner, secret=request.app.state.secret)
        ],
    )


@api.post(
    "/{lesson_id}/quiz/attempts",
    response_model=GradedAttempt,
    summary="Grade answers to a lesson's quiz",
    responses={
        **UNAUTHORIZED,
        **UNPARSABLE_BODY,
        **NO_QUIZ,
        413: {"model": ErrorBody, "description": "Request body too large"},
        503: {"model": ErrorBody, "description": "The attempt was not stored; submit again"},
    },
)
def submit_attempt(
    lesson: LessonDep,
    body: AttemptIn,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
) -> GradedAttempt:
    """Graded for everyone; stored (with `attempt_id`) for a signed-in learner."""
    require_quiz(lesson)
    result = grade_or_422(lesson, body.answers, settings)
    return GradedAttempt.of(result, attempt_id=stored(session, user and user.id, result))


@pages.post("/lessons/{lesson_id}/quiz", response_class=HTMLResponse)
async def submit_form(
    request: Request,
    lesson: LessonDep,
    learner: LearnerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """The no-JavaScript path: a plain form post answered with the review page."""
    require_quiz(lesson)
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    if not csrf_ok(request.app.state.secret, request.state.visitor, form.get(CSRF_FIELD)):
        raise HTTPException(
            status_code=403,
            detail="This form has expired or did not come from this site. Reload the lesson "
            "and submit again.",
        )
    answers: dict[str, str | None] = {}
    for key, value in form.multi_items():
        if key == CSRF_FIELD:
            continue
        if not isinstance(value, str):
            raise HTTPException(status_code=422, detail=f"answer to {key!r} must be an option id")
        answers[key] = value
    result = grade_or_422(lesson, answers, settings)
    attempt_id = await run_in_threadpool(stored, session, learner.user_id, result)
    return render(
        request,
        "quiz_result.html",
        {
            "lesson": lesson,
            "grade": result,
            "attempt_id": attempt_id,
            "reviewed": review(lesson, result, learner=learner, secret=request.app.state.secret),
        },
    )
