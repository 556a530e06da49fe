"""Course and lesson pages, and `/api/lessons`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from ..accounts.pages import course_progress_context, lesson_slots
from ..content import Lesson
from ..deps import CourseDep, LessonDep, lesson_or_404, user_of
from ..quizzes.deps import get_learner
from ..quizzes.grading import option_permutation
from ..web import render, render_string
from .schemas import ErrorBody, LessonDetail, LessonSummary

api = APIRouter(prefix="/api/lessons", tags=["lessons"])
pages = APIRouter(include_in_schema=False)

NOT_FOUND = {404: {"model": ErrorBody, "description": "No lesson with that id"}}


@api.get("", response_model=list[LessonSummary], summary="Every served lesson, in course order")
async def list_lessons(course: CourseDep) -> list[LessonSummary]:
    return [LessonSummary.of(lesson) for lesson in course.lessons]


@api.get("/{lesson_id}", response_model=LessonDetail, responses=NOT_FOUND, summary="One lesson")
async def get_lesson(lesson: LessonDep) -> LessonDetail:
    if not lesson.body.is_rendered:  # rendered on first use: ~20 ms, so not on the event loop
        return await run_in_threadpool(LessonDetail.of, lesson)
    return LessonDetail.of(lesson)


@pages.get("/", response_class=HTMLResponse)
async def course_page(request: Request, course: CourseDep) -> HTMLResponse:
    progress = await course_progress_context(request, course)
    return render(request, "index.html", {"sections": course.sections(), **progress})


async def user_slots(request: Request, lesson: Lesson) -> dict[str, str | bytes]:
    """The page's per-user slots: status pill, "Mark as complete" and the nav's user links.

    A guest's depend only on the lesson, so they are rendered once per lesson and shared.
    """
    state = request.app.state
    if await user_of(request) is None:
        guest = state.guest_slots.get(lesson.id)
        if guest is None:
            guest = await _user_slots(request, lesson)
            guest = state.guest_slots[lesson.id] = {k: v.encode() for k, v in guest.items()}
        return guest
    return await _user_slots(request, lesson)


async def _user_slots(request: Request, lesson: Lesson) -> dict[str, str]:
    return {
        **await lesson_slots(request, lesson),
        "user_nav": render_string(request, "_user_nav.html"),
    }


async def lesson_page(request: Request) -> HTMLResponse:
    """Fill the pre-rendered page's slots: user bits, CSRF token, this learner's option order.

    The hottest page, so a plain Starlette route: FastAPI's dependency resolution would cost
    more than everything this handler does.
    """
    state = request.app.state
    lesson = lesson_or_404(state.course, request.path_params["lesson_id"])
    page = state.lesson_pages.built(lesson.id)
    if page is None:  # its first request: rendering takes ~20 ms, so not on the event loop
        page = await run_in_threadpool(state.lesson_pages.__getitem__, lesson.id)
    values = {**await user_slots(request, lesson), "csrf": request.state.csrf_token}
    if page.questions:
        learner = await get_learner(request)  # after the slots: they read a learner's round
        for question in page.questions:
            order = option_permutation(
                question.id,
                len(question.labels),
                secret=state.secret,
                learner_key=learner.key,
                round=learner.round,
            )
            values[question.slot] = question.options_html(order)
    return HTMLResponse(page.page.fill(values))


pages.add_route("/lessons/{lesson_id}", lesson_page, methods=["GET"], include_in_schema=False)
