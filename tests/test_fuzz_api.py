"""Schemathesis against /openapi.json: no 5xx, and every response's status code, content type,
headers and body are the ones the schema documents. Signed in as an instructor (bearer token),
so protected operations are reached past their 401 and 403.

Each operation gets schema-valid examples (steered three times in four towards ids that exist, so
lessons, quizzes and attempts are found rather than 404) and schema-invalid ones (which must be
refused with a 4xx). schemathesis's own pytest loader (`from_fixture`) does not run under
pytest 9, so hypothesis drives each operation's strategy here.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from app.accounts import service
from app.quizzes.grading import AnswerIds
from app.training.routes import close_pool

pytestmark = pytest.mark.slow

PASSWORD = "fuzzing-password-1"
#: Operations that end the caller's credentials get a throwaway account per example.
DESTRUCTIVE = {
    "DELETE /api/me",
    "POST /api/auth/logout",
    "DELETE /api/me/sessions",
    "DELETE /api/me/sessions/{credential_id}",
}
#: A schema-valid request may still be refused for what the schema cannot say: /train's work
#: budget (epochs × samples × parameters) and a learner's points (rows, classes), the network
#: size and state that /train/step can show, a quiz's question and option ids, and an attempts
#: cursor that this API never gave out (a documented 422 each), so "schema-valid data is
#: accepted" is not checked on those.
EXCLUDED = {
    "POST /train": [schemathesis.checks.positive_data_acceptance],
    "POST /train/step": [schemathesis.checks.positive_data_acceptance],
    "POST /api/lessons/{lesson_id}/quiz/attempts": [schemathesis.checks.positive_data_acceptance],
    "GET /api/me/attempts": [schemathesis.checks.positive_data_acceptance],
}
#: Examples per operation and mode; /train's accepted ones are real trainings in a worker.
EXAMPLES = {"POST /train": 12}
POSITIVE, NEGATIVE = 25, 12
_names = itertools.count()


@pytest.fixture
def api(make_app, fixture_course):
    """The fixture course (lessons with and without quizzes) and a small training budget so
    that most /train examples answer 422 at once and the rest train tiny networks."""
    app = make_app(
        content_dir=fixture_course,
        train_work_budget=2e7,
        train_workers=1,
        train_queue=4,
        # every example comes from one client: the quotas would refuse valid ones
        train_per_minute=1000,
        register_per_hour=1000,
    )
    yield app
    close_pool(app)


def bearer_for(app, *, role: str = "learner") -> dict[str, str]:
    """A new account and its bearer token, made through the service layer (no HTTP: fuzzing
    /api/auth/token trips the per-address login throttle, which must not lock us out)."""
    with app.state.db.session() as session:
        user = service.create_user(
            session, username=f"fuzz{next(_names)}", password=PASSWORD, role=role
        )
        token, _ = service.create_token(session, user_id=user.id, days=1)
    return {"Authorization": f"Bearer {token}"}


def often(data, label: str) -> bool:
    """True three times in four."""
    return data.draw(st.integers(0, 3), label=label) > 0


def steer(case, data, course, ids_for) -> None:
    """Mostly swap generated ids for ones that exist, and bodies for meaningful ones."""
    params = case.path_parameters or {}
    quizzes = "/quiz" in case.path or case.path.endswith("/stats")
    lesson = None
    if "lesson_id" in params and often(data, "real lesson"):
        ids = [le.id for le in course.lessons if le.quiz or not quizzes]
        lesson = course.get(data.draw(st.sampled_from(ids), label="lesson"))
        params["lesson_id"] = lesson.id
    if "attempt_id" in params and often(data, "real attempt"):
        params["attempt_id"] = data.draw(st.integers(1, 4), label="attempt id")
    if lesson and lesson.quiz and case.path.endswith("/attempts") and often(data, "real answers"):
        ids = ids_for(lesson.quiz)  # the signed-in fuzzer's own option ids
        case.body = {
            "answers": {
                q.id: data.draw(st.sampled_from([ids.to_public(o.id) for o in q.options]))
                for q in lesson.quiz.questions
                if often(data, "answered")
            }
        }
    if case.path == "/train" and often(data, "small run"):
        case.body = {
            "dataset": data.draw(st.sampled_from(["xor", "circles", "moons", "spiral", "digits"])),
            "hidden_layers": data.draw(st.lists(st.integers(1, 8), min_size=1, max_size=2)),
            "activation": data.draw(st.sampled_from(["relu", "sigmoid", "tanh"])),
            "epochs": data.draw(st.integers(1, 3)),
            "learning_rate": data.draw(st.sampled_from([0.05, 1.0, 100.0])),  # 100: diverges
            "batch_size": data.draw(st.sampled_from([None, 16, 64])),
        }

    if case.path == "/train/step" and often(data, "small step"):
        case.body = {
            "config": {
                "dataset": data.draw(st.sampled_from(["xor", "spiral", "digits"])),
                "hidden_layers": data.draw(st.lists(st.integers(1, 8), min_size=1, max_size=3)),
                "batch_size": data.draw(st.sampled_from([None, 16])),
            }
        }


def fuzz(operation, mode, *, api, headers, seen: Counter, user_id: int) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    course = api.state.course
    secret = api.state.secret

    def ids_for(quiz) -> AnswerIds:
        return AnswerIds(quiz, secret=secret, learner_key=f"user:{user_id}")

    count = EXAMPLES.get(label, POSITIVE if mode is GenerationMode.POSITIVE else NEGATIVE)

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: a CI failure reproduces locally
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode), data=st.data())
    def examples(case, data) -> None:
        if mode is GenerationMode.POSITIVE:
            steer(case, data, course, ids_for)
        sent = bearer_for(api) if label in DESTRUCTIVE else headers
        response = case.call(headers=sent)
        # counted before validation, so that a 5xx (which fails it) is seen by the 5xx assertion
        seen[(label, response.status_code)] += 1
        case.validate_response(response, headers=sent, excluded_checks=EXCLUDED.get(label))

    examples()


def test_every_api_operation_answers_as_documented_and_never_5xx(api):
    schema = schemathesis.openapi.from_asgi("/openapi.json", api)
    headers = bearer_for(api, role="instructor")
    user_id = TestClient(api).get("/api/me", headers=headers).json()["id"]
    failures: list[str] = []
    seen: Counter = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, api=api, headers=headers, seen=seen, user_id=user_id)
            except Unsatisfiable:  # nothing in this operation can be made invalid
                assert mode is GenerationMode.NEGATIVE
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's failures
                failures.append(
                    f"{operation.method.upper()} {operation.path} ({mode.value}):\n{exc}"
                )
    assert not failures, "\n\n".join(failures)

    # the fuzzing got past the front door: real lessons, stored attempts, trainings, stats
    reached = {key for key, n in seen.items() if n}
    for expected in [
        ("GET /api/lessons/{lesson_id}", 200),
        ("GET /api/lessons/{lesson_id}/quiz", 200),
        ("POST /api/lessons/{lesson_id}/quiz/attempts", 200),
        ("GET /api/me/attempts/{attempt_id}", 200),
        ("POST /api/lessons/{lesson_id}/complete", 200),
        ("GET /api/lessons/{lesson_id}/stats", 200),
        ("POST /train", 200),
        ("POST /train", 422),
    ]:
        assert expected in reached, (expected, sorted(seen.items()))
    assert not any(status >= 500 for _, status in seen)
