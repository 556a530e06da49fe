"""Knowledge-check drafts to validated questions: each one's type, answers and ids.

A question's type follows from what is written under it: `- options` (single choice, or
multiple select with two or more `[x]` or a prompt ending "(select all that apply)"), `= VALUE`
lines (numeric), or a nested numbered list (ordering). A ```train block makes any of them a
predict-then-run question; a ```experiment block instead of answers makes an experiment
(experiments.py).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

from .experiments import parse_experiment
from .front_matter import load_yaml
from .knowledge_check import DraftOption, DraftQuestion
from .models import (
    ContentError,
    Item,
    NumericAnswer,
    Option,
    Question,
    QuestionType,
    Quiz,
    ReviewAnswers,
    RunValidator,
)
from .numbers import parse_numeric_line
from .render import render_inline

_SELECT_ALL = re.compile(r"\(\s*select all that apply\s*\)\W*$", re.IGNORECASE)


def question_ids(lesson_id: str, prompts: list[str]) -> list[str]:
    """Stable, opaque question ids: a hash of the prompt, so reordering keeps history valid."""
    ids: list[str] = []
    for index, prompt in enumerate(prompts):
        qid = "q" + hashlib.sha256(f"{lesson_id}\0{prompt}".encode()).hexdigest()[:10]
        if qid in ids:  # identical prompts: disambiguate by position
            qid = f"{qid}-{index + 1}"
        ids.append(qid)
    return ids


def option_id(lesson_id: str, question_id: str, text: str) -> str:
    return "o" + hashlib.sha256(f"{lesson_id}\0{question_id}\0{text}".encode()).hexdigest()[:12]


def item_id(lesson_id: str, question_id: str, text: str) -> str:
    digest = hashlib.sha256(f"{lesson_id}\0{question_id}\0item\0{text}".encode()).hexdigest()
    return "i" + digest[:12]


def build_quiz(
    lesson_id: str,
    drafts: list[DraftQuestion],
    heading_line: int,
    *,
    pass_percent: int | None = None,
    review_answers: ReviewAnswers = "always",
    max_attempts: int | None = None,
    validate_run: RunValidator | None = None,
) -> Quiz:
    """Validate the drafts into a Quiz; raises ContentError at the first problem's line."""
    if not drafts:
        raise ContentError(
            "the Knowledge Check section has no numbered questions",
            line=heading_line,
            hint="write questions as '1. Question?' with '- option' bullets below",
        )
    prompts = [" ".join(d.prompt).strip() for d in drafts]
    ids = question_ids(lesson_id, prompts)
    questions = [
        _question(lesson_id, draft, prompt, qid, validate_run)
        for draft, prompt, qid in zip(drafts, prompts, ids, strict=True)
    ]
    return Quiz(
        questions=tuple(questions),
        pass_percent=pass_percent,
        review_answers=review_answers,
        max_attempts=max_attempts,
    )


def _question(
    lesson_id: str,
    draft: DraftQuestion,
    prompt: str,
    qid: str,
    validate_run: RunValidator | None,
) -> Question:
    kinds = sorted(
        (line, name)
        for name, line in (
            ("options", draft.options[0].line if draft.options else 0),
            ("'=' lines", draft.numeric[0][0] if draft.numeric else 0),
            ("an ordering list", draft.items[0][0] if draft.items else 0),
            ("an experiment block", draft.experiment[0] if draft.experiment else 0),
        )
        if line
    )
    if len(kinds) > 1:
        raise ContentError(
            f"question mixes {kinds[0][1]} and {kinds[1][1]}; a question is of one type",
            line=kinds[1][0],
            hint="options ('- ...') make a choice, '= VALUE' lines a number, "
            "a nested numbered list an ordering, a ```experiment block an experiment",
        )
    run = _run(draft, validate_run) if draft.run else None
    explanation = " ".join(s.strip() for s in draft.explanation).strip()
    common: dict[str, Any] = {
        "id": qid,
        "prompt_html": render_inline(prompt, line=draft.line),
        "explanation_html": render_inline(explanation, line=draft.line) if explanation else None,
        "line": draft.line,
        "run": run,
    }
    if draft.experiment:
        fence_line, text = draft.experiment
        experiment = parse_experiment(text, fence_line, validate_run)
        return Question(options=(), type="experiment", experiment=experiment, **common)
    if draft.numeric:
        return Question(options=(), type="numeric", numeric=_numeric(draft), **common)
    if draft.items:
        return Question(options=(), type="ordering", items=_items(lesson_id, qid, draft), **common)
    kind, options = _options(lesson_id, qid, draft, prompt)
    return Question(options=options, type=kind, **common)


def _numeric(draft: DraftQuestion) -> tuple[NumericAnswer, ...]:
    answers = []
    for line, text in draft.numeric:
        try:
            answers.append(parse_numeric_line(text))
        except ValueError as exc:
            raise ContentError(
                f"cannot read '= {text.strip()}': {exc}",
                line=line,
                hint="write '= 0.5', '= 0.5 +- 0.01' or '= 0.5 +- 2%'",
            ) from None
    return tuple(answers)


def _items(lesson_id: str, qid: str, draft: DraftQuestion) -> tuple[Item, ...]:
    texts = [text.strip() for _, text in draft.items]
    if len(texts) < 2:
        raise ContentError(
            f"ordering has {len(texts)} item; it needs at least two",
            line=draft.items[0][0],
            hint="list the items as a numbered list indented under the question, in order",
        )
    if len(set(texts)) != len(texts):
        raise ContentError(
            "ordering lists the same item twice",
            line=draft.line,
            hint="every item's text must differ",
        )
    return tuple(
        Item(item_id(lesson_id, qid, text), render_inline(text, line=line))
        for (line, _), text in zip(draft.items, texts, strict=True)
    )


def _options(
    lesson_id: str, qid: str, draft: DraftQuestion, prompt: str
) -> tuple[QuestionType, tuple[Option, ...]]:
    if len(draft.options) < 2:
        raise ContentError(
            f"question has {len(draft.options)} option(s); it needs at least two",
            line=draft.line,
            hint="list the options as '- ...' bullets indented under the question, "
            "or the answer as a '= VALUE' line",
        )
    ticked = [o.line for o in draft.options if o.marker]
    multiple = len(ticked) > 1 or bool(_SELECT_ALL.search(prompt))
    if multiple and not ticked:
        raise ContentError(
            "multiple select marks no option [x]",
            line=draft.line,
            hint="mark every right option with '- [x]'",
        )
    if any(o.marker is not None for o in draft.options) and not ticked:
        raise ContentError(
            "question uses [ ] markers but marks no option [x]",
            line=draft.line,
            hint="mark the right option with '- [x]'",
        )
    texts = [o.text.strip() for o in draft.options]
    if len(set(texts)) != len(texts):
        raise ContentError(
            "question lists the same option twice",
            line=draft.line,
            hint="every option's text must differ",
        )
    options = tuple(
        Option(
            id=option_id(lesson_id, qid, text),
            html=render_inline(text, line=draft_option.line),
            correct=bool(draft_option.marker) if ticked else index == 0,
            feedback_html=_feedback(draft_option),
        )
        for index, (draft_option, text) in enumerate(zip(draft.options, texts, strict=True))
    )
    return ("multiple" if multiple else "single"), options


def _feedback(option: DraftOption) -> str | None:
    text = " ".join(s.strip() for s in option.feedback).strip()
    return render_inline(text, line=option.line) if text else None


_SCALAR = (str, int, float, bool)


def _run(draft: DraftQuestion, validate_run: RunValidator | None) -> dict[str, Any]:
    """The ```train block's mapping, checked by `validate_run` when the caller gave one."""
    assert draft.run is not None
    fence_line, text = draft.run
    try:
        config = load_yaml(text, fence_line + 1)
    except ContentError as exc:
        raise ContentError(
            exc.message.replace("front matter", "train block"), line=exc.line, hint=exc.hint
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, IndexError, KeyError) as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
        raise ContentError(
            f"invalid YAML in the train block: {problem}",
            line=fence_line + 1 + mark.line if mark else fence_line,
            hint="write one '/train field: value' per line, e.g. 'dataset: xor'",
        ) from None
    if config is None:
        config = {}
    if not isinstance(config, dict) or not all(
        isinstance(k, str)
        and (
            isinstance(v, _SCALAR)
            or v is None
            or (isinstance(v, list) and all(isinstance(i, int) for i in v))
        )
        for k, v in config.items()
    ):
        raise ContentError(
            "the train block must map /train fields to values",
            line=fence_line,
            hint="for example 'dataset: xor' and 'hidden_layers: [4]' on lines of their own",
        )
    if validate_run is None:
        return config
    try:
        return validate_run(config)
    except ValueError as exc:
        raise ContentError(
            f"the train block is not a run this site can do: {exc}",
            line=fence_line,
            hint="its fields and limits are those of POST /train",
        ) from None
