"""Predict-then-run questions: their ```train blocks checked as /train input at load time."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..content import RunValidator
from ..training.runner import estimate_work
from ..training.schemas import TrainRequest


def run_validator(work_budget: float) -> RunValidator:
    """A RunValidator for load_course: the block must be valid /train input within the budget,
    and is returned with /train's defaults filled in, as it will run."""

    def validate(config: dict[str, Any]) -> dict[str, Any]:
        try:
            request = TrainRequest(**config)
        except ValidationError as exc:
            raise ValueError(
                "; ".join(
                    f"{'.'.join(str(p) for p in error['loc']) or 'block'}: {error['msg']}"
                    for error in exc.errors()
                )
            ) from None
        run = request.model_dump()
        work = estimate_work(run)
        if work > work_budget:
            raise ValueError(
                f"it needs about {work:.2g} units of work (epochs × samples × parameters) "
                f"and the limit is {work_budget:.2g}"
            )
        return run

    return validate
