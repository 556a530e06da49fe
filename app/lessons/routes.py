"""Course and lesson pages, and `/api/lessons`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..accounts.pages import course_progress_context, lesson_progress_context
from ..deps import CourseDep, LessonDep, OptionalUser, SessionDep, SettingsDep
from ..quizzes.deps import LearnerDep
from ..quizzes.service import pass_percent_for, present
from ..web import render
from .schemas import ErrorBody, LessonDetail, LessonSummary

api = APIRouter(prefix="/api/lessons", tags=["lessons"])
pages = APIRouter(include_in_schema=False)

NOT_FOUND = {404: {"model": ErrorBody, "description": "No lesson with that id"}}


@api.get("", response_model=list[LessonSummary], summary="Every served lesson, in course order")
def list_lessons(course: CourseDep) -> list[LessonSummary]:
    return [LessonSummary.of(lesson) for lesson in course.lessons]


@api.get("/{lesson_id}", response_model=LessonDetail, responses=NOT_FOUND, summary="One lesson")
def get_lesson(lesson: LessonDep) -> LessonDetail:
    return LessonDetail.of(lesson)


@pages.get("/", response_class=HTMLResponse)
def course_page(
    request: Request, course: CourseDep, user: OptionalUser, session: SessionDep
) -> HTMLResponse:
    progress = course_progress_context(session, user=user, course=course)
    return render(request, "index.html", {"sections": course.sections(), **progress})


@pages.get("/lessons/{lesson_id}", response_class=HTMLResponse)
def lesson_page(
    request: Request,
    lesson: LessonDep,
    course: CourseDep,
    learner: LearnerDep,
    settings: SettingsDep,
    user: OptionalUser,
    session: SessionDep,
) -> HTMLResponse:
    progress = lesson_progress_context(session, user=user, lesson=lesson)
    questions = (
        present(lesson.quiz, learner=learner, secret=request.app.state.secret)
        if lesson.quiz
        else []
    )
    return render(
        request,
        "lesson.html",
        {
            "lesson": lesson,
            "nav": course.neighbours(lesson),
            "quiz_questions": questions,
            "pass_percent": pass_percent_for(lesson, settings.pass_percent),
            "train_query": "dataset=digits&hidden_layers=128,64",
            **progress,
        },
    )
