"""Lessons: loading, validating and rendering Markdown content (no web framework here)."""

from .loader import ContentError, load_course, log_problems, parse_duration
from .models import Course, Lesson, Option, Problem, Question, Quiz, TocEntry

__all__ = [
    "ContentError",
    "Course",
    "Lesson",
    "Option",
    "Problem",
    "Question",
    "Quiz",
    "TocEntry",
    "load_course",
    "log_problems",
    "parse_duration",
]
