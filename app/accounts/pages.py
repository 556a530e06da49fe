"""Pages for people: register, log in and out, /me, /instructor, and "Mark as complete"."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..content import Course, Lesson
from ..models import User
from ..review import service as review_service
from ..root_path import route_path, site_url
from ..web.clients import client_address
from ..web.deps import CourseDep, LessonDep, SessionDep, SettingsDep
from ..web.security import SESSION_COOKIE, csrf_ok
from ..web.templates import render
from . import charts, limits, service
from . import progress as progress_service
from . import stats as stats_service
from .api import check_password, current_credential, hashing_busy, sign_up
from .cookies import clear_session_cookie, set_session_cookie
from .deps import OptionalUser, Principal, resolve_user, user_of

pages = APIRouter(include_in_schema=False)

Field = Annotated[str, Form()]


def user_context(request: Request) -> dict[str, Any]:
    """Template context for every page: the signed-in user (from the cookie) and the nav links."""
    if not hasattr(request.state, "user"):
        request.state.user = None
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:  # normally looked up already (user_of, off the event loop); else here
            request.state.user = resolve_user(
                request.app.state.db, request.app.state.token_cache, token=None, cookie=cookie
            )
    return {"current_user": request.state.user, "accounts_enabled": True}


def safe_next(target: str | None) -> str:
    """Only paths within the site (ROOT_PATH left out): never `//evil.example` or `https://`."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def require_csrf(request: Request, token: str) -> None:
    if not csrf_ok(request.app.state.secret, request.state.csrf_subject, token):
        raise HTTPException(403, "the form expired or came from another site; reload and retry")


def redirect_to(request: Request, path: str) -> RedirectResponse:
    """A 303 to `path` within the site (under ROOT_PATH when there is one)."""
    return RedirectResponse(site_url(request.scope, path), status_code=303)


def login_redirect(request: Request, path: str | None = None) -> RedirectResponse:
    """To the login page, coming back to `path` (default: this page) once signed in."""
    return redirect_to(request, f"/login?next={quote(path or route_path(request.scope))}")


# --- progress shown on the course index and lesson pages -------------------------------------


def _course_progress(db, user: Principal, course: Course) -> dict[str, Any]:
    with db.session() as session:
        rows = progress_service.progress_rows(session, user_id=user.id)
    summary = progress_service.summarize(course, rows)
    return {
        "progress": {entry["lesson_id"]: entry["status"] for entry in summary["lessons"]},
        "course_progress": {"completed": summary["completed"], "total": summary["total"]},
        "continue_lesson": progress_service.continue_lesson(course, rows),
    }


async def course_progress_context(request: Request, course: Course) -> dict[str, Any]:
    """`progress` (lesson id → status), the overall bar and where to continue, for index.html."""
    user = await user_of(request)
    if user is None:
        return {}
    return await run_in_threadpool(_course_progress, request.app.state.db, user, course)


def _opened(db, user: Principal, lesson: Lesson) -> dict[str, Any] | None:
    with db.session() as session:
        row = progress_service.mark_opened(session, user_id=user.id, lesson_id=lesson.id)
    return progress_service.lesson_entry(lesson.id, row) if row else None


async def open_lesson(request: Request, lesson: Lesson) -> dict[str, Any] | None:
    """Mark the lesson opened (in_progress) for a signed-in learner: their progress, or None."""
    user = await user_of(request)
    if user is None:
        return None
    return await run_in_threadpool(_opened, request.app.state.db, user, lesson)


# --- register / login / logout ----------------------------------------------------------------


@pages.get("/register", response_class=HTMLResponse)
def register_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "accounts/register.html", {"next": safe_next(next)})


@pages.post("/register", response_class=HTMLResponse)
def register_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Field = "",
    password: Field = "",
    csrf_token: Field = "",
    next: Field = "/",
) -> Response:
    require_csrf(request, csrf_token)
    context = {"next": safe_next(next), "username": username}
    problem = service.credential_problem(username, password)
    if problem:
        return render(request, "accounts/register.html", {**context, "error": problem}, 422)
    try:
        user = sign_up(session, request, settings, username=username, password=password)
    except limits.Throttled as exc:
        return _throttled_page(request, "accounts/register.html", context, exc)
    except limits.HashingBusy:
        raise hashing_busy() from None
    except service.UsernameTaken:
        error = "That username is taken."
        return render(request, "accounts/register.html", {**context, "error": error}, 409)
    return _signed_in(request, session, user, settings.session_days, safe_next(next))


def _throttled_page(request: Request, template: str, context: dict, exc: limits.Throttled):
    minutes = -(-exc.retry_after // 60)
    error = f"Too many attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
    response = render(request, template, {**context, "error": error}, 429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


@pages.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "accounts/login.html", {"next": safe_next(next)})


@pages.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Field = "",
    password: Field = "",
    csrf_token: Field = "",
    next: Field = "/",
) -> Response:
    require_csrf(request, csrf_token)
    context = {"next": safe_next(next), "username": username}
    try:
        user = service.authenticate(
            session,
            username=username,
            password=password,
            address=client_address(request, settings),
        )
    except limits.Throttled as exc:
        return _throttled_page(request, "accounts/login.html", context, exc)
    except limits.HashingBusy:
        raise hashing_busy() from None
    except service.InvalidCredentials:
        error = "Incorrect username or password."
        return render(request, "accounts/login.html", {**context, "error": error}, 401)
    return _signed_in(request, session, user, settings.session_days, safe_next(next))


def _signed_in(request: Request, session, user: User, days: int, target: str) -> Response:
    """A fresh session id (any previous one is dropped: no fixation) and a redirect."""
    old = request.cookies.get(SESSION_COOKIE)
    token = service.create_session(
        session,
        user_id=user.id,
        days=days,
        replace_token=old,
        user_agent=request.headers.get("user-agent"),
    )
    response = redirect_to(request, target)
    set_session_cookie(request, response, token, days)
    return response


@pages.post("/logout")
def logout_submit(request: Request, session: SessionDep, csrf_token: Field = "") -> Response:
    require_csrf(request, csrf_token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        service.delete_session(session, token=cookie)
    response = redirect_to(request, "/")
    clear_session_cookie(request, response)
    return response


# --- the learner's and the instructor's pages -------------------------------------------------


@pages.get("/me", response_class=HTMLResponse)
def me_page(
    request: Request, user: OptionalUser, session: SessionDep, course: CourseDep,
    settings: SettingsDep,
) -> Response:  # fmt: skip
    if user is None:
        return login_redirect(request)
    rows = progress_service.progress_rows(session, user_id=user.id)
    summary = progress_service.summarize(course, rows)
    attempts = progress_service.list_attempts(session, user_id=user.id)
    history = progress_service.score_history(attempts)
    now = request.app.state.clock()
    review = review_service.summary(session, user_id=user.id, course=course, now=now)
    return render(
        request,
        "accounts/me.html",
        {
            "nav_active": "me",
            "user": user,
            "summary": summary,
            "lessons": {lesson.id: lesson for lesson in course.lessons},
            "attempts": attempts,
            "chart": charts.score_chart(history, pass_percent=settings.pass_percent)
            if history
            else None,
            "continue_lesson": progress_service.continue_lesson(course, rows),
            "credentials": service.list_credentials(
                session, user_id=user.id, current=current_credential(request)
            ),
            "changed": request.query_params.get("changed") == "password",
            "review": review_service.due_context(review, now),
        },
    )


@pages.post("/me/delete")
def delete_me_submit(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    csrf_token: Field = "",
    confirm: Field = "",
    password: Field = "",
) -> Response:
    require_csrf(request, csrf_token)
    if user is None:
        return login_redirect(request)
    if confirm != user.username:
        raise HTTPException(422, "type your username to confirm deleting your account")
    check_password(session, request, settings, user, password[: service.PASSWORD_MAX + 1])
    service.delete_user(session, user_id=user.id)
    request.app.state.token_cache.discard_user(user.id)
    response = redirect_to(request, "/")
    clear_session_cookie(request, response)
    return response


@pages.post("/me/password")
def password_submit(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    csrf_token: Field = "",
    current_password: Field = "",
    new_password: Field = "",
) -> Response:
    require_csrf(request, csrf_token)
    if user is None:
        return login_redirect(request)
    problem = service.password_problem(new_password)
    if problem:
        raise HTTPException(422, problem)
    check_password(session, request, settings, user, current_password[: service.PASSWORD_MAX + 1])
    try:
        service.change_password(
            session, user_id=user.id, password=new_password, keep=current_credential(request)
        )
    except limits.HashingBusy:
        raise hashing_busy() from None
    request.app.state.token_cache.discard_user(user.id)
    return redirect_to(request, "/me?changed=password#sessions-title")


@pages.post("/me/sessions/{credential_id}/end")
def end_session_submit(
    request: Request, credential_id: str, user: OptionalUser, session: SessionDep,
    csrf_token: Field = "",
) -> Response:  # fmt: skip
    require_csrf(request, csrf_token)
    if user is None:
        return login_redirect(request)
    if credential_id == "others":
        service.revoke_others(session, user_id=user.id, keep=current_credential(request))
    elif not service.revoke_credential(session, user_id=user.id, credential_id=credential_id):
        raise HTTPException(404, "no such session (it may have ended already)")
    request.app.state.token_cache.discard_user(user.id)
    return redirect_to(request, "/me#sessions-title")


@pages.post("/lessons/{lesson_id}/complete")
def complete_submit(
    request: Request,
    lesson: LessonDep,
    user: OptionalUser,
    session: SessionDep,
    csrf_token: Field = "",
) -> Response:
    require_csrf(request, csrf_token)
    if user is None:
        return login_redirect(request, lesson.url)
    try:
        progress_service.mark_completed(session, user_id=user.id, lesson=lesson)
    except progress_service.QuizLesson:
        raise HTTPException(409, "this lesson has a quiz: pass it to complete the lesson") from None
    except progress_service.NoSuchUser:
        return login_redirect(request, lesson.url)
    return redirect_to(request, lesson.url)


@pages.get("/instructor", response_class=HTMLResponse)
def instructor_page(
    request: Request, user: OptionalUser, session: SessionDep, course: CourseDep
) -> Response:
    if user is None:
        return login_redirect(request)
    if user.role != "instructor":
        raise HTTPException(403, "this page is for instructors")
    stats = stats_service.course_stats(
        session,
        lessons=[lesson for lesson in course.lessons if lesson.quiz and lesson.quiz.questions],
    )
    return render(
        request,
        "accounts/instructor.html",
        {"nav_active": "instructor", "stats": stats, "bar": charts.bar},
    )
