"""Reading an experiment's answer: an object of its free /train fields, checked as /train checks.

Pure (pydantic, no web framework). AnswerError lives here so grading.py can import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..content import Question
from ..training.schemas import TrainRequest


class AnswerError(ValueError):
    """A submission that cannot be graded as sent (the route answers 422 with this message)."""


class FieldError(AnswerError):
    """An experiment answer's field that is not free, missing, or out of /train's bounds: the
    no-JavaScript form comes back filled in, saying which."""


@dataclass(frozen=True, slots=True)
class ExperimentAnswer:
    """The learner's value for each free field, and the /train request it makes."""

    #: free field → value, as /train reads it (e.g. "0.5" becomes 0.5)
    values: dict[str, Any]
    #: the dataset, the fixed fields and these values, every /train field filled in
    config: dict[str, Any]


def _field_error(question: Question, exc: ValidationError) -> FieldError:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "noise"  # the model validator's only rule
    message = error["msg"].removeprefix(f"{name}: ")
    return FieldError(f"question {question.id!r}: field {name!r}: {message}")


def read_experiment(question: Question, value: Any) -> ExperimentAnswer:
    """An experiment's answer as sent; AnswerError names the question and the field."""
    experiment = question.experiment
    assert experiment is not None
    free = ", ".join(experiment.free)
    if not isinstance(value, dict):
        raise AnswerError(
            f"the answer to question {question.id!r} (experiment) must be an object of its "
            f"free fields: {free}"
        )
    for name in value:
        if name not in experiment.free:
            raise FieldError(
                f"question {question.id!r}: field {str(name)[:80]!r} is not one the learner "
                f"chooses (free: {free})"
            )
    for name in experiment.free:
        if name not in value:
            raise FieldError(f"question {question.id!r}: field {name!r} has no value")
    try:
        config = TrainRequest.model_validate(experiment.merged(value)).model_dump()
    except ValidationError as exc:
        raise _field_error(question, exc) from None
    return ExperimentAnswer({name: config[name] for name in experiment.free}, config)
