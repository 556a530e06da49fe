"""The playground's URL format: /train's JSON fields as query parameters, both ways.

`hidden_layers=128,64`, `batch_size=full` for full-batch gradient descent, every other field as
its plain value: `/playground?dataset=digits&hidden_layers=128,64&epochs=30&batch_size=64`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError

from .runner import DEFAULTS
from .schemas import TrainRequest


def _text(field: str, value: Any) -> str | None:
    if field == "hidden_layers":
        return ",".join(str(int(n)) for n in value)
    if value is None:
        return "full" if field == "batch_size" else None
    if isinstance(value, float) and value.is_integer() and field != "learning_rate":
        return str(int(value))
    return str(value)


#: Not in the URL: a learner's points do not fit in one (the page offers them as a CSV instead).
NOT_IN_URL = ("data",)


def playground_query(preset: Mapping[str, Any]) -> str:
    """The query string (no leading "?") that opens /playground preset to these /train fields."""
    pairs = []
    for field in DEFAULTS:
        if field in preset and field not in NOT_IN_URL:
            text = _text(field, preset[field])
            if text is not None:
                pairs.append((field, text))
    return urlencode(pairs, safe=",")


def _parse(field: str, text: str) -> Any:
    text = text.strip()
    if field == "hidden_layers":
        return [part.strip() for part in text.split(",") if part.strip()]
    if field in ("batch_size", "noise") and text.lower() in ("full", "null", "none", ""):
        return None
    return text


def parse_playground_query(params: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Form values for a /playground query: the valid fields, defaults for the rest, and why.

    Never raises: a value that fails /train's validation is replaced by its default and the
    validation message is returned so the page can show it.
    """
    values = {f: _parse(f, params[f]) for f in DEFAULTS if f in params and f not in NOT_IN_URL}
    problems: list[str] = []
    # dataset=custom opens the page for the learner's own points, which the URL never holds:
    # the rest is checked as for a 2-D set
    custom = values.get("dataset") == "custom"
    if custom:
        values["dataset"] = "xor"
        if values.pop("noise", None) is not None:
            problems.append("noise: your own data takes no noise level")
    for _ in range(len(DEFAULTS) + 1):
        try:
            checked = TrainRequest(**values).model_dump()
            if custom:
                checked.update(dataset="custom", noise=None)
            return checked, problems
        except ValidationError as exc:
            for error in exc.errors():
                loc = [str(p) for p in error["loc"]]
                field = loc[0] if loc else "noise"
                where = ".".join(loc) or field
                message = error["msg"]
                problems.append(
                    message if message.startswith(f"{field}:") else f"{where}: {message}"
                )
                values.pop(field, None)
    return TrainRequest().model_dump(), problems
