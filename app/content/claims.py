"""Claims: ```` ```claim ```` blocks in a lesson's body, saying what its network does.

A claim block holds YAML: `run`, the /train fields of the network it is about, and `expect`, a
goal (goals.py; `status == diverged` or `status == completed` allowed too) the run must meet;
optionally `text`, the claim in the author's words (inline Markdown, sanitised):

    ```claim
    run: {dataset: xor, hidden_layers: [4], learning_rate: 50, epochs: 60}
    expect: test_accuracy < 0.6
    text: With a learning rate of 50 this network learns nothing.
    ```

Each block is validated at load; an error names the file and the line (of the YAML problem, or
of `expect` for a bad goal, else of the block's opening fence). In the body that is rendered the
block becomes SLOT, a placeholder the lessons layer fills at page render with a box stating the
claim and the figures `backprop check --run` measured for it: the figures change without the
Markdown changing, so they cannot be part of the rendered (and cached) body.

Whether `run` is a valid /train request within the work budget is for the training package to
say, and this package imports no domain. So `load_course(validate_run=...)` takes a
RunValidator: a callable that returns the configuration to train (defaults filled in) or raises
ValueError with the reason. The app and the CLI pass app.training.figures.run_validator; without
one only the shape of `run` is checked and it is trained as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from .front_matter import _load_yaml
from .goals import Goal, GoalError, parse_goal
from .knowledge_check import _FENCE_OPEN, _code_lines, _normalise
from .models import ContentError, RunValidator
from .render import render_inline

#: The class of the placeholder a claim leaves in the rendered body; reserved for it.
SLOT_CLASS = "backprop-claim-slot"
#: The placeholder exactly as it comes out of Markdown and the sanitiser.
SLOT = f'<div class="{SLOT_CLASS}"></div>'
KEYS = ("run", "expect", "text")
_LANG = re.compile(r"^(?:~{3,}|`{3,})[ ]*\.?([\w#.+-]*)")
_KEY_LINE = re.compile(r"^(\w+)[ ]*:")


@dataclass(frozen=True, slots=True)
class Claim:
    """One validated claim block; `line` is its opening fence's line in the file."""

    line: int
    #: the /train fields as the author wrote them (what the box lists)
    run: dict[str, Any]
    #: what is trained: the validator's configuration (defaults filled in), else `run`
    config: dict[str, Any]
    expect: Goal
    text_html: str | None = None


def claim_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(opening, closing) line indexes of every fenced block whose language is `claim`."""
    seen = _normalise(lines)
    code = _code_lines(seen)
    blocks = []
    index = 0
    while index < len(seen):
        if not code[index]:
            index += 1
            continue
        # an opening fence, as _code_lines found it: closed by the next line of the same fence
        opening = _FENCE_OPEN.match(seen[index])
        assert opening
        fence = opening.group(1)
        close = next(j for j in range(index + 1, len(seen)) if seen[j].rstrip(" ") == fence)
        lang = _LANG.match(seen[index])
        if lang and lang.group(1) == "claim":
            blocks.append((index, close))
        index = close + 1
    return blocks


def _shape(run: object, line: int) -> dict[str, Any]:
    scalar = (str, int, float, bool)
    if not isinstance(run, dict) or not all(
        isinstance(k, str)
        and (
            isinstance(v, scalar)
            or v is None
            or (isinstance(v, list) and all(isinstance(i, int) for i in v))
        )
        for k, v in run.items()
    ):
        raise ContentError(
            "claim 'run' must map /train fields to values",
            line=line,
            hint="for example 'run: {dataset: xor, hidden_layers: [4], epochs: 60}'",
        )
    return run


def parse_claim(text: str, line: int, validate_run: RunValidator | None = None) -> Claim:
    """A claim block's YAML, whose fence is on line `line`; raises ContentError."""
    first = line + 1
    key_lines: dict[str, int] = {}
    for offset, row in enumerate(text.split("\n")):
        if key := _KEY_LINE.match(row):
            key_lines.setdefault(key.group(1), first + offset)
    try:
        data = _load_yaml(text, first)
    except RecursionError:
        raise ContentError("claim block is nested too deeply", line=line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        raise ContentError(
            f"invalid YAML in claim block: {getattr(exc, 'problem', None) or exc}",
            line=first + mark.line if mark else line,
            hint="check indentation and quote values that contain ':' or '#'",
        ) from None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:
        raise ContentError(f"invalid value in claim block: {exc}", line=line) from None
    example = "write 'run: {dataset: xor, epochs: 60}' and 'expect: test_accuracy >= 0.9'"
    if not isinstance(data, dict):
        raise ContentError("claim block must be a YAML mapping", line=line, hint=example)
    for key in data:
        if key not in KEYS:
            raise ContentError(
                f"unknown key {key!r} in claim block",
                line=key_lines.get(str(key), line),
                hint="a claim has 'run', 'expect' and optionally 'text'",
            )
    for key in ("run", "expect"):
        if key not in data:
            raise ContentError(f"claim block has no {key!r}", line=line, hint=example)
    run = _shape(data["run"], key_lines.get("run", line))
    config = dict(run)
    if validate_run is not None:
        try:
            config = validate_run(run)
        except ValueError as exc:
            raise ContentError(f"claim run: {exc}", line=key_lines.get("run", line)) from None
    expect_line = key_lines.get("expect", line)
    try:
        goal = parse_goal(data["expect"], allow_status=True)
    except GoalError as exc:
        where = f" (at column {exc.column})" if isinstance(data["expect"], str) else ""
        raise ContentError(
            f"claim expectation: {exc.message}{where}", line=expect_line, hint=exc.hint
        ) from None
    words = data.get("text")
    if words is not None and (not isinstance(words, str) or not words.strip()):
        raise ContentError("claim 'text' must be a sentence", line=key_lines.get("text", line))
    text_html = render_inline(" ".join(words.split())) if words else None
    return Claim(line=line, run=run, config=config, expect=goal, text_html=text_html)


def extract_claims(
    body: str,
    rest: str,
    body_line: int,
    quiz_line: int | None,
    validate_run: RunValidator | None = None,
) -> tuple[str, tuple[Claim, ...]]:
    """Validate the claims of `rest` (the body less its knowledge check) and swap in SLOTs.

    `body` is the whole body, starting at the file's line `body_line`; `quiz_line` is the line
    of the knowledge check's heading (None: there is none), whose section `rest` leaves out.
    """
    lines, kept = body.split("\n"), rest.split("\n")
    cut = len(lines) - len(kept)  # lines of the knowledge check section
    start = len(lines) if quiz_line is None else quiz_line - body_line
    for opening, _ in claim_blocks(lines[start : start + cut]):
        raise ContentError(
            "claim block inside the Knowledge Check section",
            line=quiz_line + opening if quiz_line is not None else None,
            hint="move it into the lesson's text, above the Knowledge Check heading",
        )

    def line_of(index: int) -> int:
        return body_line + index + (cut if index >= start else 0)

    # Outside code, the placeholder's class would be a box of nobody's claim (in code, or in a
    # claim's text, it is escaped or left out of the body).
    in_code = _code_lines(_normalise(kept))
    for index, row in enumerate(kept):
        if SLOT_CLASS in row and not in_code[index]:
            raise ContentError(f"{SLOT_CLASS!r} is reserved for claim boxes", line=line_of(index))
    claims, out, done = [], [], 0
    for opening, close in claim_blocks(kept):
        block = "\n".join(kept[opening + 1 : close])
        claims.append(parse_claim(block, line_of(opening), validate_run))
        out += [*kept[done:opening], "", SLOT, ""]
        done = close + 1
    if not claims:
        return rest, ()
    out += kept[done:]
    return "\n".join(out), tuple(claims)
