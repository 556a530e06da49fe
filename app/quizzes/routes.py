"""Quiz routes: the JSON API and the no-JavaScript form on the lesson page."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from ..accounts.writer import NoSuchUser, WriterFailed
from ..config import Settings
from ..content import Lesson
from ..deps import LessonDep, SettingsDep, lesson_or_404, user_of
from ..direct import DirectRoute, body_openapi, read_json, validated
from ..lessons.schemas import UNPARSABLE_BODY, ErrorBody
from ..security import CSRF_FIELD, csrf_ok
from ..web import render
from .deps import LearnerDep
from .grading import AnswerError, Grade
from .schemas import AttemptIn, AttemptOut, OptionOut, QuestionOut, QuizOut, attempt_json
from .service import grade_lesson, pass_percent_for, present, review

api = APIRouter(prefix="/api/lessons", tags=["quizzes"])
pages = APIRouter(include_in_schema=False)

MAX_FORM_FIELDS = 500


UNAUTHORIZED = {401: {"model": ErrorBody, "description": "The bearer token is invalid or expired"}}


async def stored(request: Request, user_id: int | None, result: Grade) -> int | None:
    """Keep a signed-in learner's attempt (answers and progress in one transaction) and return
    its id once committed; guests' attempts are not stored."""
    if user_id is None:
        return None
    try:
        return await request.app.state.attempt_writer.record(user_id=user_id, grade=result)
    except NoSuchUser:
        raise HTTPException(401, "not signed in", headers={"WWW-Authenticate": "Bearer"}) from None
    except WriterFailed as exc:
        raise HTTPException(503, str(exc)) from None


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


async def submit_attempt(request: Request, lesson_id: str) -> Response:
    """Graded for everyone; stored (with `attempt_id`) for a signed-in learner."""
    # The busiest API route, so a DirectRoute: the body and the user are read by hand
    # (app/direct.py keeps FastAPI's rules, errors and their order) and the JSON is written
    # directly, at a fraction of the cost of FastAPI's injection and response model.
    data = await read_json(request)
    state = request.app.state
    lesson = lesson_or_404(state.course, lesson_id)
    user = await user_of(request)
    body = validated(AttemptIn, data)
    require_quiz(lesson)
    result = grade_or_422(lesson, body.answers, state.settings)
    attempt_id = await stored(request, user and user.id, result)
    return Response(attempt_json(result, attempt_id), media_type="application/json")


api.add_api_route(
    "/{lesson_id}/quiz/attempts",
    submit_attempt,
    methods=["POST"],
    route_class_override=DirectRoute,
    response_model=AttemptOut,
    summary="Grade answers to a lesson's quiz",
    responses={
        **UNAUTHORIZED,
        **UNPARSABLE_BODY,
        **NO_QUIZ,
        413: {"model": ErrorBody, "description": "Request body too large"},
    },
    openapi_extra={**body_openapi(AttemptIn), "security": [{"OAuth2PasswordBearer": []}]},
)


@pages.post("/lessons/{lesson_id}/quiz", response_class=HTMLResponse)
async def submit_form(
    request: Request, lesson: LessonDep, learner: LearnerDep, settings: SettingsDep
) -> HTMLResponse:
    """The no-JavaScript path: a plain form post answered with the review page."""
    require_quiz(lesson)
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    if not csrf_ok(request.app.state.secret, request.state.csrf_subject, form.get(CSRF_FIELD)):
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
    attempt_id = await stored(request, learner.user_id, result)
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
