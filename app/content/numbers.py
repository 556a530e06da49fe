"""Numbers as authors write them in `= VALUE` lines and learners type them: one reading for both."""

from __future__ import annotations

import math
import re
from decimal import Decimal

from .models import NumericAnswer

#: Longer input is not read as a number: no learner types 100 characters for one.
MAX_NUMBER_LENGTH = 100

# ASCII digits only: Decimal and float also take "inf", "nan", "1_000" and Arabic-Indic digits,
# none of which a learner means as an answer to a quiz.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLUS_MINUS = re.compile(r"\+-|±|\+/-")


def parse_number(text: str) -> Decimal | None:
    """`0.5`, `.5`, `-3`, `5e-1`, `1 000` as an exact Decimal; None if not a number (or huge)."""
    if len(text) > MAX_NUMBER_LENGTH:
        return None
    compact = "".join(text.split()).replace("\u2212", "-")  # U+2212 is the typeset minus sign
    if not _NUMBER.fullmatch(compact):
        return None
    number = Decimal(compact)
    return number if math.isfinite(float(number)) else None


def parse_numeric_line(text: str) -> NumericAnswer:
    """The text after `=`: `VALUE`, `VALUE +- TOL` or `VALUE +- P%`; ValueError if unreadable."""
    value_text, *rest = _PLUS_MINUS.split(text, maxsplit=1)
    value = parse_number(value_text)
    if value is None:
        raise ValueError(f"{value_text.strip()!r} is not a number")
    if not rest:
        return NumericAnswer(value)
    tolerance_text = rest[0].strip()
    relative = tolerance_text.endswith("%")
    tolerance = parse_number(tolerance_text.removesuffix("%"))
    if tolerance is None or tolerance < 0:
        raise ValueError(f"tolerance {tolerance_text!r} is not a number of zero or more")
    return NumericAnswer(value, tolerance, relative)
