"""Experiment questions: a ```experiment block (YAML) under a knowledge-check question.

    ```experiment
    dataset: spiral                          # any /train field may be fixed here
    fixed: {epochs: 200, batch_size: 32, seed: 0}
    free: [hidden_layers, activation, learning_rate]   # what the learner chooses
    goal: test_accuracy >= 0.9 and parameters <= 2000
    solution: {hidden_layers: [32, 32], activation: relu, learning_rate: 0.1}
    ```

The learner answers with a value for every `free` field; the server trains `dataset` + `fixed` +
the answer and the question is right when every term of `goal` (goals.py) holds. `solution`, the
author's own answer, must cover exactly the free fields; merged with the rest it must be a run
the RunValidator accepts (the app and `backprop check` pass /train's), and `backprop check --run`
trains it to show that it reaches the goal. It is never sent to a learner.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .front_matter import load_yaml
from .goals import GoalError, parse_goal
from .models import ContentError, Experiment, RunValidator

KEYS = ("dataset", "fixed", "free", "goal", "solution")
REQUIRED = ("dataset", "free", "goal", "solution")
#: At most this many free fields (there are ten /train fields; the dataset is never free).
MAX_FREE = 9
_KEY_LINE = re.compile(r"^(\w+)[ ]*:")
#: A validator message's first field name: `hidden_layers.0: ...` or `unknown /train field 'x'`.
_FIELD = re.compile(r"^(?:unknown /train field '(\w+)'|(\w+)[.:])")
_EXAMPLE = (
    "write 'dataset: xor', 'free: [learning_rate]', 'goal: test_accuracy >= 0.9' and "
    "'solution: {learning_rate: 0.5}'"
)
_SCALAR = (str, int, float, bool)


def _is_value(value: object) -> bool:
    """A /train value as YAML gives it: a scalar, null, or a list of whole numbers (layers)."""
    if isinstance(value, list):
        return all(isinstance(i, int) and not isinstance(i, bool) for i in value)
    return value is None or isinstance(value, _SCALAR)


def _fields(value: object, key: str, line: int) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and _is_value(v) for k, v in value.items()
    ):
        raise ContentError(
            f"experiment '{key}' must map /train fields to values",
            line=line,
            hint=f"for example '{key}: {{epochs: 60, seed: 0}}'",
        )
    if "dataset" in value:
        raise ContentError(
            f"experiment '{key}' sets the dataset, which has a line of its own",
            line=line,
            hint="write 'dataset: ...' once, on its own line",
        )
    return value


def _free(value: object, fixed: dict[str, Any], line: int) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(name, str) and name for name in value)
    ):
        raise ContentError(
            "experiment 'free' must list the /train fields the learner chooses",
            line=line,
            hint="for example 'free: [hidden_layers, learning_rate]'",
        )
    if len(value) > MAX_FREE:
        raise ContentError(f"experiment 'free' lists more than {MAX_FREE} fields", line=line)
    for name in value:
        if value.count(name) > 1:
            raise ContentError(f"experiment 'free' lists {name!r} twice", line=line)
        if name == "dataset":
            raise ContentError(
                "the dataset cannot be free",
                line=line,
                hint="an experiment is about one dataset: fix it with 'dataset: ...'",
            )
        if name == "data":
            raise ContentError(
                "the data cannot be free",
                line=line,
                hint="a learner chooses settings, not points: fix 'dataset' (and its 'data')",
            )
        if name in fixed:
            raise ContentError(
                f"{name!r} is both fixed and free",
                line=line,
                hint="a field is either fixed by the author or chosen by the learner",
            )
    return tuple(value)


def _line_of(message: str, lines: dict[str, int], fixed: dict, free: tuple[str, ...]) -> int:
    """The line a validator's message is about: the field's own, else the solution's."""
    match = _FIELD.match(message)
    name = (match.group(1) or match.group(2)) if match else None
    if name == "dataset":
        return lines["dataset"]
    if name in free:
        # an unknown /train field in `free` is named there; a bad value in the solution
        return lines["free"] if message.startswith("unknown") else lines["solution"]
    if name in fixed:
        return lines.get("fixed", lines["solution"])
    return lines["solution"]


def parse_experiment(
    text: str, fence_line: int, validate_run: RunValidator | None = None
) -> Experiment:
    """An experiment block's YAML, whose opening fence is on `fence_line`; raises ContentError."""
    first = fence_line + 1
    lines: dict[str, int] = {}
    for offset, row in enumerate(text.split("\n")):
        if key := _KEY_LINE.match(row):
            lines.setdefault(key.group(1), first + offset)
    try:
        data = load_yaml(text, first)
    except ContentError as exc:
        raise ContentError(
            exc.message.replace("front matter", "experiment block"), line=exc.line, hint=exc.hint
        ) from None
    except RecursionError:
        raise ContentError("experiment block is nested too deeply", line=fence_line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        raise ContentError(
            f"invalid YAML in the experiment block: {getattr(exc, 'problem', None) or exc}",
            line=first + mark.line if mark else fence_line,
            hint="check indentation and quote values that contain ':' or '#'",
        ) from None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        raise ContentError(
            f"invalid value in the experiment block: {exc}", line=fence_line
        ) from None
    if not isinstance(data, dict):
        raise ContentError(
            "experiment block must be a YAML mapping", line=fence_line, hint=_EXAMPLE
        )
    for key in data:
        if key not in KEYS:
            raise ContentError(
                f"unknown key {key!r} in the experiment block",
                line=lines.get(str(key), fence_line),
                hint="an experiment has 'dataset', 'fixed', 'free', 'goal' and 'solution'",
            )
    for key in REQUIRED:
        if key not in data:
            hint = (
                "the author's own answer, a value per free field (never shown to learners)"
                if key == "solution"
                else _EXAMPLE
            )
            raise ContentError(f"experiment block has no {key!r}", line=fence_line, hint=hint)
    for key in KEYS:
        lines.setdefault(key, fence_line)
    dataset = data["dataset"]
    if not isinstance(dataset, str) or not dataset.strip():
        raise ContentError(
            "experiment 'dataset' must name a dataset", line=lines["dataset"], hint="e.g. 'xor'"
        )
    fixed = _fields(data.get("fixed") or {}, "fixed", lines["fixed"])
    free = _free(data["free"], fixed, lines["free"])
    try:
        goal = parse_goal(data["goal"])
    except GoalError as exc:
        where = f" (at column {exc.column})" if isinstance(data["goal"], str) else ""
        raise ContentError(
            f"experiment goal: {exc.message}{where}", line=lines["goal"], hint=exc.hint
        ) from None
    solution = _fields(data["solution"], "solution", lines["solution"])
    missing = [name for name in free if name not in solution]
    if missing:
        raise ContentError(
            f"the solution gives no value for free field {missing[0]!r}",
            line=lines["solution"],
            hint="the solution is a value for every free field",
        )
    extra = [name for name in solution if name not in free]
    if extra:
        raise ContentError(
            f"the solution sets {extra[0]!r}, which is not free",
            line=lines["solution"],
            hint="list it under 'free', or fix it under 'fixed'",
        )
    merged = {"dataset": dataset, **fixed, **solution}
    config = merged
    if validate_run is not None:
        try:
            config = validate_run(merged)
        except ValueError as exc:
            raise ContentError(
                f"the experiment's solution is not a run this site can do: {exc}",
                line=_line_of(str(exc), lines, fixed, free),
                hint="its fields and limits are those of POST /train",
            ) from None
    return Experiment(
        line=fence_line,
        dataset=dataset,
        fixed=fixed,
        free=free,
        goal=goal,
        solution=solution,
        config=config,
    )
