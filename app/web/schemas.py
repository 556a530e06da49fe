"""Error bodies every JSON route answers with, and the OpenAPI `responses` entries for them."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """What every 4xx and 5xx JSON answer holds: a message for people."""

    detail: str


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """A 422: the message, and each problem with where it is."""

    detail: str
    errors: list[ValidationErrorItem]


def error(description: str) -> dict:
    """An OpenAPI `responses` entry answered with ErrorBody."""
    return {"model": ErrorBody, "description": description}


#: FastAPI answers a JSON body that is not even UTF-8 with 400 (invalid JSON in UTF-8 is a 422).
UNPARSABLE_BODY: dict[int | str, dict] = {
    400: error("The body could not be parsed (not UTF-8 JSON)")
}
INVALID: dict[int | str, dict] = {
    422: {"model": ValidationErrorBody, "description": "The request is malformed"}
}
TOO_LARGE: dict[int | str, dict] = {413: error("Request body too large")}
