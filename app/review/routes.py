"""`/review` (a no-JavaScript form, one due question at a time) and `/api/me/review`."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from ..accounts.deps import CurrentUser, OptionalUser, user_of
from ..accounts.pages import login_redirect
from ..content import Course
from ..openapi import operation_id
from ..quizzes.charts import accuracy_chart, loss_chart
from ..quizzes.grading import AnswerError, Grade
from ..quizzes.routes import MAX_FORM_FIELDS
from ..quizzes.runs import runs_for
from ..quizzes.schemas import OptionOut, result_out
from ..web.deps import CourseDep, NowDep, SessionDep, SettingsDep
from ..web.schemas import INVALID, UNPARSABLE_BODY, ErrorBody
from ..web.security import CSRF_FIELD, csrf_ok
from ..web.templates import render
from . import service, store
from .schedule import STATE_NAMES, CardState
from .schemas import ReviewAnswerIn, ReviewOut, ReviewQuestionOut, ReviewResultOut

log = logging.getLogger("backprop")

api = APIRouter(prefix="/api/me/review", tags=["review"], generate_unique_id_function=operation_id)
pages = APIRouter(include_in_schema=False)

UNAUTHORIZED = {401: {"model": ErrorBody, "description": "Not signed in"}}
NOT_DUE = {404: {"model": ErrorBody, "description": "No such question is due for me now"}}
NOT_SCHEDULED = "the review was not stored; answer again"
QuestionId = Annotated[str, Path(max_length=100)]


def not_due(question_id: str) -> HTTPException:
    return HTTPException(404, f"no question {question_id[:100]!r} is due for your review now")


def _summary(session: Session, user_id: int, course: Course, now: datetime) -> service.Summary:
    return service.summary(session, user_id=user_id, course=course, now=now)


def _found(session: Session, user_id: int, course: Course, question_id: str, now: datetime
           ) -> tuple[service.Due | None, bool]:  # fmt: skip
    due = service.find_due(
        session, user_id=user_id, course=course, question_id=question_id, now=now
    )
    reveal = due is not None and service.shows_answers(session, user_id=user_id, due=due)
    return due, reveal


def _schedule(session: Session, user_id: int, due: service.Due, result: Grade, now: datetime
              ) -> CardState:  # fmt: skip
    try:
        return store.answer_card(
            session,
            user_id=user_id,
            question_id=due.question.id,
            correct=result.results[0].correct,
            now=now,
            reviews=due.reviews,
        )
    except store.NotDue:
        raise not_due(due.question.id) from None
    except (DBAPIError, PoolTimeout, TimeoutError):
        log.exception("storing a review failed")  # rolled back: nothing was scheduled
        raise HTTPException(503, NOT_SCHEDULED) from None


async def answer(
    request: Request, *, user_id: int, question_id: str, value: Any = None,
    fields: list[tuple[str, str]] | None = None, session: Session, course: Course,
    default_pass: int, now: datetime,
) -> tuple[service.Due, Grade, bool, dict[str, Any], CardState]:  # fmt: skip
    """Grade one answer (the API's value or the form's fields) and schedule the card again."""
    due, reveal = await run_in_threadpool(_found, session, user_id, course, question_id, now)
    if due is None:
        raise not_due(question_id)
    secret = request.app.state.secret
    try:
        if fields is not None:
            value = service.form_answer(due, fields)
        ids = service.ids_for(due, user_id=user_id, secret=secret)
        result = service.grade_answer(due, value, ids=ids, default_pass=default_pass)
    except AnswerError as exc:
        raise HTTPException(422, str(exc)) from None
    state = await run_in_threadpool(_schedule, session, user_id, due, result, now)
    quiz = service.one_question(due.lesson, due.question).quiz
    assert quiz is not None
    runs = await runs_for(request, quiz) if reveal else {}
    return due, result, reveal, runs, state


# --- the API ----------------------------------------------------------------------------------


@api.get(
    "",
    response_model=ReviewOut,
    responses={**UNAUTHORIZED, **INVALID},
    summary="My questions due for review now, in the order to answer them",
)
async def my_review(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    course: CourseDep,
    now: NowDep,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LISTED)] = 20,
) -> ReviewOut:
    """Up to `limit` due questions in the quiz's question format (this learner's ids), with the
    number of all cards and of those due."""
    found = await run_in_threadpool(_summary, session, user.id, course, now)
    secret = request.app.state.secret
    questions = []
    for due in found.due[:limit]:
        shown = service.presented(due, user_id=user.id, secret=secret)
        questions.append(
            ReviewQuestionOut(
                id=shown.id,
                type=shown.type,  # type: ignore[arg-type]
                prompt=shown.prompt_html,
                options=[OptionOut(id=oid, text=html) for oid, html in shown.options],
                items=[OptionOut(id=iid, text=html) for iid, html in shown.items],
                run=shown.run,
                lesson_id=due.lesson.id,
                lesson_title=due.lesson.title,
                due=due.card.due,
            )
        )
    return ReviewOut(
        cards=found.cards, due=found.due_count, next_due=found.next_due, questions=questions
    )


@api.post(
    "/{question_id}",
    response_model=ReviewResultOut,
    responses={
        **UNAUTHORIZED,
        **UNPARSABLE_BODY,
        **NOT_DUE,
        422: {"model": ErrorBody, "description": "An unknown id, or a wrong answer shape"},
        503: {"model": ErrorBody, "description": "The review was not stored; answer again"},
    },
    summary="Answer a due question: graded as its quiz grades it, then scheduled again",
)
async def answer_review(
    request: Request,
    question_id: QuestionId,
    body: ReviewAnswerIn,
    user: CurrentUser,
    session: SessionDep,
    course: CourseDep,
    settings: SettingsDep,
    now: NowDep,
) -> ReviewResultOut:
    due, result, reveal, runs, state = await answer(
        request, user_id=user.id, question_id=question_id, value=body.answer, session=session,
        course=course, default_pass=settings.pass_percent, now=now,
    )  # fmt: skip
    ids = service.ids_for(due, user_id=user.id, secret=request.app.state.secret)
    outcome = result.results[0]
    left = await run_in_threadpool(_summary, session, user.id, course, now)
    return ReviewResultOut(
        lesson_id=due.lesson.id,
        question_id=due.question.id,
        answers_shown=reveal,
        result=result_out(outcome, ids, reveal, runs.get(outcome.question_id)),
        state=STATE_NAMES[state.state],  # type: ignore[arg-type]
        due=state.due,
        reviews=state.reviews,
        due_now=left.due_count,
    )


# --- the pages --------------------------------------------------------------------------------


async def review_context(request: Request, course: Course) -> dict[str, Any]:
    """`review` for index.html and me.html: how many questions are due, when the next is."""
    user = await user_of(request)
    if user is None:
        return {}
    now = request.app.state.clock()

    def read() -> service.Summary:
        with request.app.state.db.session() as session:
            return _summary(session, user.id, course, now)

    return {"review": service.due_context(await run_in_threadpool(read), now)}


@pages.get("/review", response_class=HTMLResponse)
async def review_page(
    request: Request, user: OptionalUser, session: SessionDep, course: CourseDep,
    settings: SettingsDep, now: NowDep,
) -> Response:  # fmt: skip
    """The first due question as the quiz's own form, or when the next one falls due."""
    if user is None:
        return login_redirect(request)
    found = await run_in_threadpool(_summary, session, user.id, course, now)
    context: dict[str, Any] = {"nav_active": "review", "review": service.due_context(found, now)}
    if found.due:
        due = found.due[0]
        context.update(
            lesson=service.one_question(due.lesson, due.question),
            source=due.lesson,
            questions=[service.presented(due, user_id=user.id, secret=request.app.state.secret)],
            attempts_left=None,
            form_action=f"/review/{due.question.id}",
            form_heading="Review question",
            form_meta=f"1 of {found.due_count} due now",
            form_button="Check my answer",
        )
    return render(request, "review/review.html", context)


@pages.post("/review/{question_id}", response_class=HTMLResponse)
async def review_submit(
    request: Request, question_id: QuestionId, user: OptionalUser, session: SessionDep,
    course: CourseDep, settings: SettingsDep, now: NowDep,
) -> Response:  # fmt: skip
    """The no-JavaScript path: graded, scheduled, and answered with the quiz's review of it."""
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    if not csrf_ok(request.app.state.secret, request.state.csrf_subject, form.get(CSRF_FIELD)):
        raise HTTPException(
            403, "This form has expired or did not come from this site. Reload the review page "
            "and answer again.",
        )  # fmt: skip
    if user is None:
        return login_redirect(request, "/review")
    fields = []
    for key, value in form.multi_items():
        if key == CSRF_FIELD:
            continue
        if not isinstance(value, str):
            raise HTTPException(422, f"answer to {key!r} must be text")
        fields.append((key, value))
    due, result, reveal, runs, state = await answer(
        request, user_id=user.id, question_id=question_id, fields=fields, session=session,
        course=course, default_pass=settings.pass_percent, now=now,
    )  # fmt: skip
    left = await run_in_threadpool(_summary, session, user.id, course, now)
    return render(
        request,
        "review/result.html",
        {
            "nav_active": "review",
            "lesson": service.one_question(due.lesson, due.question),
            "source": due.lesson,
            "grade": result,
            "reveal": reveal,
            "runs": runs,
            "loss_chart": loss_chart,
            "accuracy_chart": accuracy_chart,
            "attempts_left": None,
            "reviewed": service.reviewed(
                due, result, user_id=user.id, secret=request.app.state.secret, reveal=reveal
            ),
            "next": service.when(state.due, now),
            "review": service.due_context(left, now),
        },
    )
