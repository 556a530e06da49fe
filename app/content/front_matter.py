"""A lesson's YAML front matter: parsed strictly, every field validated, with its line.

Front matter is plain text: a control character anywhere in it (YAML escapes such as `\\0`)
is an error, keys and nested values included, and the one-line fields hold no tab or newline.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .models import ContentError, Problem, ReviewAnswers

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
MAX_ID_LENGTH = 100
KNOWN_FIELDS = (
    "id",
    "title",
    "type",
    "duration",
    "order",
    "section",
    "nextLessonId",
    "passPercent",
    "playground",
    "reviewAnswers",
    "maxAttempts",
)
REVIEW_ANSWERS = ("always", "after-pass", "never")

_DURATION_TOKEN = re.compile(
    r"\s*(\d+(?:\.\d+)?)\s*(h|hr|hrs|hour|hours|m|min|mins|minute|minutes)\b\s*,?", re.IGNORECASE
)

# C0 and C1 control characters (Unicode category Cc). Titles and other fields reach the pages'
# HTML and <title> (where escaping leaves them in place) and the log lines that name a lesson,
# where an escape sequence or a stray line break would garble or forge what is shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # free text may hold tab and newline
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # keys and one-line fields may not


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:  # `? [a]` or `{a: 1}: x`: a list or mapping as a key
                raise yaml.constructor.ConstructorError(
                    None, None, "a list or mapping cannot be a key", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_duration(value: object) -> int:
    """`55 mins`, `1 hr 10 mins`, `1h 30m`, `90 minutes` (or a bare number of minutes) → minutes."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int):
        minutes = float(value)
    elif isinstance(value, str):
        text = value.strip()
        pos, minutes, tokens = 0, 0.0, 0
        while pos < len(text):
            match = _DURATION_TOKEN.match(text, pos)
            if not match:
                raise ValueError("not a duration")
            amount, unit = float(match.group(1)), match.group(2).lower()
            minutes += amount * 60 if unit.startswith("h") else amount
            pos, tokens = match.end(), tokens + 1
        if tokens == 0:
            raise ValueError("not a duration")
    else:
        raise ValueError("not a duration")
    if minutes <= 0 or minutes > 100 * 60:
        raise ValueError("duration out of range")
    return round(minutes)


def _field_lines(text: str, first_line: int) -> dict[str, int]:
    lines: dict[str, int] = {}
    for offset, line in enumerate(text.splitlines()):
        match = re.match(r"^([A-Za-z_][\w-]*)\s*:", line)
        if match:
            lines.setdefault(match.group(1), first_line + offset)
    return lines


def _refuse_control_characters(root: yaml.Node, first_line: int) -> None:
    """Refuse a control character in any front-matter string, keys and nested values included."""
    # Walks the parsed nodes (a scalar's value is its text after escapes such as `\0`) in
    # document order, without recursion; a collection reached again through an alias is skipped.
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str | None, bool]] = [(root, None, False)]
    while stack:
        node, field, is_key = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            found = (_CONTROL_ONE_LINE if is_key else _CONTROL).search(node.value)
            if found:
                where = "the front matter" if field is None else f"field {field!r}"
                if is_key:
                    where = "a front matter key" if field is None else f"a key under {where}"
                raise ContentError(
                    f"control character U+{ord(found.group()):04X} in {where}",
                    line=first_line + node.start_mark.line,
                    hint="remove it: YAML escapes such as \\0 or \\x07 have no place in lessons",
                )
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[yaml.Node, str | None, bool]] = []
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if field is None and isinstance(key, yaml.ScalarNode) else field
                children += [(key, field, True), (value, name, False)]
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, field, False) for item in node.value]
        stack.extend(reversed(children))


def _load_yaml(text: str, first_line: int) -> Any:
    """`yaml.load` with the strict loader, checking the parsed nodes before building values."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_control_characters(node, first_line)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(text: str, first_line: int) -> Any:
    """Strict YAML (no duplicate keys, no control characters) whose first line is `first_line`."""
    return _load_yaml(text, first_line)


def _parse_meta(
    text: str, first_line: int, path: str
) -> tuple[dict[str, Any], dict[str, int], list[Problem]]:
    try:
        meta = _load_yaml(text, first_line)
    except RecursionError:
        # PyYAML composes and builds nested collections recursively: `[[[...]]]` a few hundred
        # deep exhausted the stack and, uncaught, stopped `backprop check` and the whole site.
        raise ContentError(
            "front matter is nested too deeply", line=first_line, hint="flatten it"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = first_line + mark.line if mark else first_line
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(
            f"invalid YAML in front matter: {problem}",
            line=line,
            hint="check indentation and quote values that contain ':' or '#'",
        ) from None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        # PyYAML's constructors raise these for values it parsed but cannot build, such as
        # `date: 2024-13-01` or a bare `!!int`; uncaught, one such file stopped the whole site.
        raise ContentError(
            f"invalid value in front matter: {exc or type(exc).__name__}",
            line=first_line,
            hint="quote the value to keep it as text",
        ) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ContentError("front matter must be a mapping of 'key: value' lines", line=first_line)
    lines = _field_lines(text, first_line)
    warnings = []
    for key in meta:
        if key not in KNOWN_FIELDS:
            close = difflib.get_close_matches(str(key), KNOWN_FIELDS, n=1)
            warnings.append(
                Problem(
                    path,
                    lines.get(str(key)),
                    f"unknown front matter field {key!r}",
                    hint=f"did you mean {close[0]!r}?" if close else "it is ignored",
                    severity="warning",
                )
            )
    return meta, lines, warnings


def _string(meta: dict, lines: dict[str, int], key: str, *, required: bool) -> str | None:
    value = meta.get(key)
    if value is None:
        if required:
            raise ContentError(
                f"missing required field {key!r}",
                line=lines.get(key, 2),
                hint=f"add a line '{key}: ...' to the front matter",
            )
        return None
    if not isinstance(value, str) or not value.strip():
        raise ContentError(
            f"field {key!r} must be a non-empty string, not {type(value).__name__}",
            line=lines.get(key),
            hint="quote the value",
        )
    value = value.strip()
    if found := _CONTROL_ONE_LINE.search(value):
        # Any other control character was refused with the YAML; these are shown on one line.
        kind = {"\t": "a tab", "\n": "a line break"}.get(found.group(), "a control character")
        raise ContentError(
            f"field {key!r} holds {kind}; it must be a single line",
            line=lines.get(key),
            hint="write the value on one line, with spaces",
        )
    return value


def _identifier(meta: dict, lines: dict[str, int], key: str, *, required: bool) -> str | None:
    value = _string(meta, lines, key, required=required)
    if value is not None and (len(value) > MAX_ID_LENGTH or not ID_PATTERN.fullmatch(value)):
        raise ContentError(
            f"field {key!r} is {value!r}, not a valid lesson id",
            line=lines.get(key),
            hint=f"use lowercase letters, digits and '-', starting with a letter or digit, "
            f"at most {MAX_ID_LENGTH} characters",
        )
    return value


def _integer(
    meta: dict, lines: dict[str, int], key: str, default: int | None, lo: int, hi: int
) -> int | None:
    value = meta.get(key)
    if value is None:  # absent, or left empty (`order:`): the default, as for any optional field
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ContentError(
            f"field {key!r} must be a whole number from {lo} to {hi}, not {value!r}",
            line=lines.get(key),
        )
    return value


def _playground(meta: dict, lines: dict[str, int]) -> dict[str, Any] | None:
    """The optional preset for "Train this network": /train fields, scalars or lists of ints."""
    value = meta.get("playground")
    if value is None:
        return None
    scalar = (str, int, float, bool)
    if not isinstance(value, dict) or not all(
        isinstance(k, str)
        and (
            isinstance(v, scalar)
            or v is None
            or (isinstance(v, list) and all(isinstance(i, int) for i in v))
        )
        for k, v in value.items()
    ):
        raise ContentError(
            "field 'playground' must map /train fields to values",
            line=lines.get("playground"),
            hint="for example 'playground: {dataset: digits, hidden_layers: [128, 64]}'",
        )
    return value


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """The validated fields of one lesson, and the warnings (unknown fields) found with them."""

    id: str
    title: str
    section: str
    type: str
    duration_minutes: int
    order: int
    pass_percent: int | None
    next_lesson_id: str | None
    playground: dict[str, Any] | None
    review_answers: ReviewAnswers = "always"
    max_attempts: int | None = None
    warnings: list[Problem] = field(default_factory=list)


def read_front_matter(text: str, first_line: int, path: str) -> FrontMatter:
    """Parse and validate front matter whose first line is `first_line`; raises ContentError."""
    meta, lines, warnings = _parse_meta(text, first_line, path)
    lesson_id = _identifier(meta, lines, "id", required=True)
    title = _string(meta, lines, "title", required=True)
    section = _string(meta, lines, "section", required=True)
    kind = _string(meta, lines, "type", required=False) or "lesson"
    if "duration" not in meta:
        raise ContentError(
            "missing required field 'duration'",
            line=first_line,
            hint="for example 'duration: 55 mins'",
        )
    try:
        duration = parse_duration(meta["duration"])
    except ValueError:
        raise ContentError(
            f"cannot read duration {meta['duration']!r}",
            line=lines.get("duration"),
            hint="write it like '55 mins', '1 hr 10 mins' or '1h 30m'",
        ) from None
    order = _integer(meta, lines, "order", 0, -(10**6), 10**6)
    pass_percent = _integer(meta, lines, "passPercent", None, 0, 100)
    next_id = _identifier(meta, lines, "nextLessonId", required=False)
    playground = _playground(meta, lines)
    review = meta.get("reviewAnswers", "always")
    if review not in REVIEW_ANSWERS:
        raise ContentError(
            f"field 'reviewAnswers' is {review!r}",
            line=lines.get("reviewAnswers"),
            hint="use always (the default), after-pass or never",
        )
    max_attempts = _integer(meta, lines, "maxAttempts", None, 1, 10**6)
    assert lesson_id and title and section and order is not None
    return FrontMatter(
        id=lesson_id,
        title=title,
        section=section,
        type=kind,
        duration_minutes=duration,
        order=order,
        pass_percent=pass_percent,
        next_lesson_id=next_id,
        playground=playground,
        review_answers=review,
        max_attempts=max_attempts,
        warnings=warnings,
    )
