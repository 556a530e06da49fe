"""Goals and expectations about a training run: `METRIC OP NUMBER` terms joined by `and`.

    goal   := term ("and" term)*
    term   := metric op number | "status" "==" ("completed" | "diverged")
    metric := test_accuracy | train_accuracy | final_loss | parameters | epochs_to(ACCURACY)
    op     := ">=" | "<=" | ">" | "<"

`epochs_to(0.9)` is the first epoch whose test accuracy reaches 0.9; a run that never gets there
fails the term. The `status` term is for lesson claims ("this learning rate diverges"); other
goals ask for it with `allow_status=True`. Parsing is strict: anything else is a GoalError that
says what was expected where. A goal is evaluated against a run result as
app.training.runner.train returns it (or anything with its keys: `status`, `test_accuracy`,
`train_accuracy`, `parameters`, and `history` rows with `epoch`, `loss`, `test_accuracy`).
Pure: no training code, so the content loader can validate goals and pages can evaluate them.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: The metrics a term may measure, in the order they are documented.
METRICS = ("test_accuracy", "train_accuracy", "final_loss", "parameters", "epochs_to")
STATUSES = ("completed", "diverged")
OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
#: What a failed term says instead of its operator: `test_accuracy 0.87 < 0.9` for `>= 0.9`.
NEGATED = {">=": "<", "<=": ">", ">": "<=", "<": ">=", "==": "!="}
MAX_LENGTH = 1000
MAX_TERMS = 16

_TOKEN = re.compile(
    r"\s*(?:(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))"
    r"|(?P<name>[A-Za-z_]\w*)|(?P<word>[\w.]+)|(?P<op>[<>=!]=|=[<>]|[<>=])|(?P<other>\S))"
)
_ACCURACY = ("test_accuracy", "train_accuracy")


class GoalError(ValueError):
    """A goal that does not parse; `column` (1-based) is where in its text the problem is."""

    def __init__(self, message: str, column: int, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Term:
    """One condition: `metric op value`; `accuracy` is epochs_to's argument."""

    metric: str
    op: str
    value: float | str
    accuracy: float | None = None

    @property
    def name(self) -> str:
        """The metric as written: `test_accuracy`, `epochs_to(0.9)`."""
        return f"epochs_to({_number(self.accuracy)})" if self.metric == "epochs_to" else self.metric

    @property
    def text(self) -> str:
        """The term in canonical form, e.g. `epochs_to(0.9) <= 20`."""
        value = self.value if isinstance(self.value, str) else _number(self.value)
        return f"{self.name} {self.op} {value}"

    def as_dict(self) -> dict[str, Any]:
        """The term as JSON: metric, op, value, and accuracy for epochs_to."""
        out: dict[str, Any] = {"metric": self.metric, "op": self.op, "value": self.value}
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """A term checked against a run: what was measured (None: nothing to measure) and verdict."""

    term: Term
    measured: float | int | str | None
    held: bool

    def describe(self) -> str:
        """`test_accuracy 0.87 < 0.9`: the measured figure and how it stands to the threshold."""
        term = self.term
        if self.measured is None:
            if term.metric == "epochs_to":
                return f"{term.name}: test accuracy never reached {_number(term.accuracy)}"
            return f"{term.name}: not finite (the run diverged)"
        op = term.op if self.held else NEGATED[term.op]
        if isinstance(self.measured, str) or isinstance(term.value, str):
            return f"{term.name} {self.measured} {op} {term.value}"
        measured, threshold = _number(self.measured), _number(term.value)
        if measured == threshold and self.measured != term.value:
            measured = repr(float(self.measured))  # rounding would make it read as equal
        return f"{term.name} {measured} {op} {threshold}"


@dataclass(frozen=True, slots=True)
class Goal:
    """Terms that must all hold, and the text they were parsed from."""

    text: str
    terms: tuple[Term, ...]

    def evaluate(self, run: Mapping[str, Any]) -> tuple[Outcome, ...]:
        """Each term measured on a run result (see the module docstring for the keys read)."""
        return tuple(_outcome(term, run) for term in self.terms)

    def holds(self, run: Mapping[str, Any]) -> bool:
        """Whether every term holds on this run."""
        return all(outcome.held for outcome in self.evaluate(run))


def _number(value: float | int | None) -> str:
    """A figure for people: 4 significant digits, integers without a decimal point."""
    if value is None:
        return "none"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def measure(term: Term, run: Mapping[str, Any]) -> float | int | str | None:
    """The figure a term compares, from a run result; None when there is none to compare."""
    history = run.get("history") or []
    if term.metric == "status":
        return str(run["status"])
    if term.metric in _ACCURACY:
        return float(run[term.metric])
    if term.metric == "parameters":
        return int(run["parameters"])
    if term.metric == "final_loss":
        loss = history[-1]["loss"] if history else None
        return None if loss is None or not math.isfinite(loss) else float(loss)
    assert term.metric == "epochs_to" and term.accuracy is not None
    return next(
        (int(row["epoch"]) for row in history if row["test_accuracy"] >= term.accuracy), None
    )


def _outcome(term: Term, run: Mapping[str, Any]) -> Outcome:
    measured = measure(term, run)
    held = measured is not None and OPS[term.op](measured, term.value)
    return Outcome(term, measured, bool(held))


class _Tokens:
    """The goal's tokens as (kind, text, column), read one at a time."""

    def __init__(self, text: str) -> None:
        self.items: list[tuple[str, str, int]] = []
        text = text.rstrip()
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            assert match and match.lastgroup  # `\S` takes any character the others do not
            kind = match.lastgroup
            self.items.append((kind, match.group(kind), match.start(kind) + 1))
            pos = match.end()
        self.index = 0
        self.end = len(text) + 1

    def peek(self) -> tuple[str, str, int] | None:
        return self.items[self.index] if self.index < len(self.items) else None

    def take(self) -> tuple[str, str, int] | None:
        token = self.peek()
        self.index += token is not None
        return token

    def column(self) -> int:
        """Where the next token starts (the end of the text when there is none)."""
        token = self.peek()
        return token[2] if token else self.end


_WRITE_AS = "write terms as 'METRIC OP NUMBER', e.g. 'test_accuracy >= 0.9 and parameters <= 2000'"


def _found(token: tuple[str, str, int] | None) -> str:
    return "the end of the goal" if token is None else repr(token[1])


def _value(tokens: _Tokens, metric: str) -> float:
    """The number after an operator, checked against what the metric can be."""
    token = tokens.take()
    if token is None or token[0] != "number":
        column = token[2] if token else tokens.end
        raise GoalError(f"expected a number after the operator, found {_found(token)}", column)
    value = float(token[1])
    after = tokens.peek()
    if after and after[1] == "%":
        raise GoalError(
            "percentages are not numbers here", after[2], "write accuracies as fractions: 0.9"
        )
    if after and after[1] == ",":
        raise GoalError("a comma in a number", after[2], "write numbers without separators: 2000")
    if not math.isfinite(value):
        raise GoalError(f"{token[1]} is not a finite number", token[2])
    if metric in _ACCURACY and not 0 <= value <= 1:
        raise GoalError(
            f"{metric} is a fraction between 0 and 1, not {token[1]}",
            token[2],
            "write 0.9 for 90%",
        )
    if metric in ("parameters", "epochs_to") and (value < 0 or not value.is_integer()):
        raise GoalError(f"{metric} is a whole number, not {token[1]}", token[2])
    if metric == "final_loss" and value < 0:
        raise GoalError(f"a loss is never negative: {token[1]}", token[2])
    return value


def _operator(tokens: _Tokens, name: str) -> str:
    token = tokens.take()
    if token is not None and token[1] in OPS and token[1] != "==":
        return token[1]
    column = token[2] if token else tokens.end
    if token is not None and token[1] in ("==", "="):
        hint = "use >=, <=, > or <: measured figures are compared with a bound"
    elif token is not None and token[1] in ("=>", "=<"):
        hint = f"write {token[1][::-1]!r}"
    else:
        hint = _WRITE_AS
    raise GoalError(f"expected >=, <=, > or < after {name}, found {_found(token)}", column, hint)


def _term(tokens: _Tokens, allow_status: bool) -> Term:
    token = tokens.take()
    if token is None or token[0] != "name":
        if token is None and tokens.index == 0:
            raise GoalError("the goal is empty", 1, _WRITE_AS)
        column = token[2] if token else tokens.end
        raise GoalError(f"expected a metric, found {_found(token)}", column, _WRITE_AS)
    _, name, column = token
    if name == "status":
        if not allow_status:
            raise GoalError(
                "status cannot be a goal here", column, f"use one of {', '.join(METRICS)}"
            )
        op = tokens.take()
        if op is None or op[1] != "==":
            raise GoalError(
                f"expected '==' after status, found {_found(op)}",
                op[2] if op else tokens.end,
                "write 'status == diverged' or 'status == completed'",
            )
        word = tokens.take()
        if word is None or word[1] not in STATUSES:
            raise GoalError(
                f"expected completed or diverged after 'status ==', found {_found(word)}",
                word[2] if word else tokens.end,
            )
        return Term("status", "==", word[1])
    if name not in METRICS:
        known = [*METRICS, "status"] if allow_status else list(METRICS)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known metrics: {', '.join(known)}"
        raise GoalError(f"unknown metric {name!r}", column, hint)
    accuracy = None
    if name == "epochs_to":
        opening = tokens.take()
        number = tokens.take() if opening and opening[1] == "(" else None
        closing = tokens.take() if number and number[0] == "number" else None
        if not (closing and closing[1] == ")"):
            raise GoalError(
                "epochs_to needs the test accuracy to reach, in parentheses",
                column,
                "for example 'epochs_to(0.9) <= 50'",
            )
        accuracy = float(number[1])
        if not 0 < accuracy <= 1:
            raise GoalError(
                f"epochs_to's accuracy is a fraction above 0 and at most 1, not {number[1]}",
                number[2],
            )
    op = _operator(tokens, name)
    return Term(name, op, _value(tokens, name), accuracy)


def parse_goal(text: object, *, allow_status: bool = False) -> Goal:
    """Parse `test_accuracy >= 0.9 and parameters <= 2000`; raises GoalError saying where."""
    if not isinstance(text, str):
        raise GoalError("a goal is text such as 'test_accuracy >= 0.9'", 1)
    if len(text) > MAX_LENGTH:
        raise GoalError(f"a goal is at most {MAX_LENGTH} characters", MAX_LENGTH + 1)
    tokens = _Tokens(text)
    terms = [_term(tokens, allow_status)]
    while (token := tokens.take()) is not None:
        if token[1] == "and":
            if len(terms) == MAX_TERMS:
                raise GoalError(f"a goal has at most {MAX_TERMS} terms", token[2])
            terms.append(_term(tokens, allow_status))
            continue
        if token[1] in ("or", "||", "|"):
            hint = "every term must hold: join terms with 'and'"
        elif token[1] in ("&&", "&", ","):
            hint = "join terms with 'and'"
        else:
            hint = _WRITE_AS
        raise GoalError(
            f"expected 'and' or the end of the goal, found {_found(token)}", token[2], hint
        )
    return Goal(" ".join(text.split()), tuple(terms))
