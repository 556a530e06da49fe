"""Lessons: loading, validating and rendering Markdown content (no web framework here)."""

from .loader import ContentError, load_course, log_problems, parse_duration
from .models import (
    Course,
    Experiment,
    Item,
    Lesson,
    NumericAnswer,
    Option,
    Problem,
    Question,
    QuestionType,
    Quiz,
    RunValidator,
    TocEntry,
)
from .numbers import parse_number

__all__ = [
    "ContentError",
    "Course",
    "Experiment",
    "Item",
    "Lesson",
    "NumericAnswer",
    "Option",
    "Problem",
    "Question",
    "QuestionType",
    "Quiz",
    "RunValidator",
    "TocEntry",
    "load_course",
    "log_problems",
    "parse_duration",
    "parse_number",
]
