"""A learner's own 2-D data: rows of `x1,x2` and a label, from JSON or a CSV, checked row by row.

Every check names the row it failed on (1-based, as a spreadsheet counts; a CSV's are its line
numbers), so a learner can find it. Labels are any short strings; classes are numbered in the
order they first appear. No web framework here: the /train schema calls `clean_rows`.
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from typing import Any

import numpy as np

#: The most rows one request may hold, and the class counts it may have.
MAX_ROWS = 2000
MIN_CLASSES, MAX_CLASSES = 2, 10
#: Fewer rows than this cannot be split into a training and a test set worth the name.
MIN_ROWS = 10
#: Longest label, in characters (a label is shown on the page and written into data.csv).
MAX_LABEL = 40
#: Coordinates beyond this are refused: float32 squares of them would overflow in training.
MAX_ABS = 1e6
#: Characters of CSV text accepted (2,000 rows of two long numbers and a long label fit).
MAX_CSV_CHARS = 200_000


class DataError(ValueError):
    """The data cannot be trained on; the message names the row and says what is wrong."""


def _number(value: Any, where: str, column: str) -> float:
    # bool is an int in Python, and `true` in a coordinate is a mistake, not 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DataError(f"{where}: {column} is {value!r}, not a number")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise DataError(f"{where}: {column} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise DataError(f"{where}: {column} is {value!r}; every value must be a finite number")
    if abs(number) > MAX_ABS:
        raise DataError(f"{where}: {column} is {value!r}; values must lie within ±{MAX_ABS:g}")
    return number


def _label(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: the label is {value!r}; a label is a string or a whole number")
    text = str(value).strip()
    if not text:
        raise DataError(f"{where}: the label is empty")
    if len(text) > MAX_LABEL:
        raise DataError(f"{where}: the label is longer than {MAX_LABEL} characters")
    # NumPy's str arrays (weights.npz's class names) drop a trailing NUL, and no control
    # character is meant in a label the page shows: refused rather than exported broken
    control = next((ch for ch in text if unicodedata.category(ch) == "Cc"), None)
    if control is not None:
        raise DataError(
            f"{where}: the label holds a control character (U+{ord(control):04X}); use "
            "letters, digits, spaces or punctuation"
        )
    return text


def _check_classes(labels: list[str]) -> None:
    classes = list(dict.fromkeys(labels))
    if len(classes) < MIN_CLASSES:
        only = f"one class only ({classes[0]!r})" if classes else "no rows"
        raise DataError(f"{only}: a classifier needs at least {MIN_CLASSES} classes")
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"{len(classes)} classes; at most {MAX_CLASSES} (the 11th, {classes[MAX_CLASSES]!r}, "
            f"first appears in row {labels.index(classes[MAX_CLASSES]) + 1})"
        )
    counts = {c: labels.count(c) for c in classes}
    if max(counts.values()) < 3:
        raise DataError("every class has fewer than 3 rows: none would be held out for testing")


def _check_count(rows: int) -> None:
    if rows > MAX_ROWS:
        raise DataError(f"{rows:,} rows; at most {MAX_ROWS:,}")
    if rows < MIN_ROWS:
        raise DataError(f"{rows} rows; at least {MIN_ROWS} are needed")


def clean_rows(x: list[Any], y: list[Any]) -> tuple[list[list[float]], list[str]]:
    """JSON rows `x` ([x1, x2] each) and labels `y`, checked: floats and label strings."""
    if len(x) != len(y):
        raise DataError(f"x has {len(x)} rows but y has {len(y)} labels; give one label per row")
    _check_count(len(x))
    points, labels = [], []
    for index, (row, label) in enumerate(zip(x, y, strict=True)):
        where = f"row {index + 1}"
        if not isinstance(row, list) or len(row) != 2:
            raise DataError(f"{where}: x is {row!r}; each row of x is a pair [x1, x2]")
        points.append([_number(row[0], where, "x1"), _number(row[1], where, "x2")])
        labels.append(_label(label, where))
    _check_classes(labels)
    return points, labels


def parse_csv(text: str) -> tuple[list[list[float]], list[str]]:
    """`x1,x2,label` lines (a first line that is not numbers is a header), checked like JSON."""
    if len(text) > MAX_CSV_CHARS:
        raise DataError(f"the CSV is longer than {MAX_CSV_CHARS:,} characters")
    # newline=None reads "\r\n" and a lone "\r" (old spreadsheets' line end) as "\n"
    reader = csv.reader(io.StringIO(text, newline=None))
    try:
        lines = list(reader)
    except csv.Error as exc:
        limit = csv.field_size_limit()
        problem = (
            f"a cell is longer than {limit:,} characters"
            if "field limit" in str(exc)
            else f"not a CSV line ({exc})"
        )
        raise DataError(f"line {reader.line_num}: {problem}") from None
    numbered = [(n, row) for n, row in enumerate(lines, 1) if any(cell.strip() for cell in row)]
    if numbered:
        first = numbered[0][1]
        try:
            float(first[0])
        except (ValueError, IndexError):
            numbered = numbered[1:]  # a header such as `x1,x2,label`
    _check_count(len(numbered))
    points, labels = [], []
    for n, row in numbered:
        where = f"line {n}"
        if len(row) != 3:
            raise DataError(f"{where}: {len(row)} cells; each line is x1,x2,label")
        points.append([_number(row[0].strip(), where, "x1"), _number(row[1].strip(), where, "x2")])
        labels.append(_label(row[2], where))
    _check_classes(labels)
    return points, labels


def encode(points: list[list[float]], labels: list[str]) -> tuple[np.ndarray, np.ndarray, list]:
    """x (m, 2) float64, y (m,) class numbers, and the class names in order of first appearance."""
    classes = list(dict.fromkeys(labels))
    number = {name: k for k, name in enumerate(classes)}
    y = np.array([number[label] for label in labels], dtype=np.int64)
    return np.array(points, dtype=np.float64).reshape(-1, 2), y, classes
