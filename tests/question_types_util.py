"""Helpers for the question-type tests: the fixture lesson of every type, its variants, and
answering it through the API in a learner's own ids."""

from __future__ import annotations

from pathlib import Path

EVERY_TYPE = Path(__file__).parent / "fixtures" / "question-types" / "every-type.md"
LESSON = "every-type"


def variant(folder: Path, lesson_id: str, front_matter: str = "", keep_run: bool = True) -> None:
    """The fixture lesson under another id, with extra front matter (and without its run)."""
    text = EVERY_TYPE.read_text(encoding="utf-8").replace("id: every-type", f"id: {lesson_id}")
    text = text.replace("passPercent: 50\n", f"passPercent: 50\n{front_matter}")
    if not keep_run:
        text = text[: text.index("7. Predict")]
    (folder / f"{lesson_id}.md").write_text(text, encoding="utf-8")


def served(client, lesson_id: str = LESSON, headers: dict | None = None) -> dict:
    response = client.get(f"/api/lessons/{lesson_id}/quiz", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def right_answers(client, lesson_id: str = LESSON, headers: dict | None = None) -> dict:
    """Every question answered right, in this learner's ids (matched by text)."""
    quiz = client.app.state.course.get(lesson_id).quiz
    shown = {q["id"]: q for q in served(client, lesson_id, headers)["questions"]}
    answers = {}
    for question in quiz.questions:
        mine = shown[question.id]
        by_text = {o["text"]: o["id"] for o in mine["options"] + mine["items"]}
        if question.type == "single":
            answers[question.id] = by_text[question.correct_option.html]
        elif question.type == "multiple":
            answers[question.id] = [by_text[o.html] for o in question.correct_options]
        elif question.type == "numeric":
            answers[question.id] = str(question.numeric[0].value)
        else:
            answers[question.id] = [by_text[i.html] for i in question.items]
    return answers


def post(client, answers: dict, lesson_id: str = LESSON, headers: dict | None = None):
    return client.post(
        f"/api/lessons/{lesson_id}/quiz/attempts", json={"answers": answers}, headers=headers
    )
