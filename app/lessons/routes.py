"""Course and lesson pages, and `/api/lessons`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from ..accounts.pages import course_progress_context, open_lesson
from ..content import Lesson, TocEntry
from ..openapi import operation_id
from ..quizzes.deps import LearnerDep
from ..quizzes.service import attempts_left, pass_percent_for, present
from ..review.routes import review_context
from ..root_path import app_root
from ..training.query import playground_query
from ..training.runner import DEFAULTS
from ..web.deps import CourseDep, LessonDep, SettingsDep
from ..web.schemas import ErrorBody
from ..web.templates import render
from .claims import fill_claims
from .schemas import LessonDetail, LessonSummary

api = APIRouter(prefix="/api/lessons", tags=["lessons"], generate_unique_id_function=operation_id)
pages = APIRouter(include_in_schema=False)

NOT_FOUND = {404: {"model": ErrorBody, "description": "No lesson with that id"}}

#: The seed lesson's SimpleNeuralNetwork([784, 128, 64, 10]) is /train's default network (hidden
#: layers 128, 64 on the digits we can ship offline): a lesson's playground link starts there.
LESSON_NETWORK = {key: DEFAULTS[key] for key in ("dataset", "hidden_layers")}


async def rendered_body(request: Request, lesson: Lesson) -> tuple[str, tuple[TocEntry, ...]]:
    """The body HTML with its claims' boxes, and its table of contents (rendered if need be)."""
    # A first render (Markdown and Pygments, unless the render cache has it) is CPU work for the
    # thread pool, not the event loop.
    if lesson.body.is_rendered:
        html, toc = lesson.body.rendered()
    else:
        html, toc = await run_in_threadpool(lesson.body.rendered)
    state = request.app.state
    return fill_claims(html, lesson, state.run_store, state.templates), toc


@api.get("", response_model=list[LessonSummary], summary="Every served lesson, in course order")
async def list_lessons(request: Request, course: CourseDep) -> list[LessonSummary]:
    root = app_root(request.scope)
    return [LessonSummary.of(lesson, root) for lesson in course.lessons]


@api.get("/{lesson_id}", response_model=LessonDetail, responses=NOT_FOUND, summary="One lesson")
async def get_lesson(request: Request, lesson: LessonDep) -> LessonDetail:
    html, _ = await rendered_body(request, lesson)
    return LessonDetail.of(lesson, app_root(request.scope), html=html)


@pages.get("/", response_class=HTMLResponse)
async def course_page(request: Request, course: CourseDep) -> HTMLResponse:
    progress = await course_progress_context(request, course)
    review = await review_context(request, course)
    return render(request, "index.html", {"sections": course.sections(), **progress, **review})


@pages.get("/lessons/{lesson_id}", response_class=HTMLResponse)
async def lesson_page(
    request: Request,
    lesson: LessonDep,
    course: CourseDep,
    learner: LearnerDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """The lesson, its quiz with the options in this learner's order, and their progress."""
    body_html, toc = await rendered_body(request, lesson)
    questions = (
        present(lesson.quiz, learner=learner, secret=request.app.state.secret)
        if lesson.quiz
        else []
    )
    context = {
        "lesson": lesson,
        "nav": course.neighbours(lesson),
        "body_html": body_html,
        "toc": toc,
        "questions": questions,
        "pass_percent": pass_percent_for(lesson, settings.pass_percent),
        "attempts_left": attempts_left(lesson.quiz, learner) if lesson.quiz else None,
        "train_query": playground_query({**LESSON_NETWORK, **(lesson.playground or {})}),
        "lesson_progress": await open_lesson(request, lesson),
    }
    return render(request, "lesson.html", context)
