"""Direct routes: documented in OpenAPI like any FastAPI route, called without its machinery.

For the busiest API route (quiz submissions), FastAPI's per-request work (dependency
injection, the body parameter, the response model) costs several times what grading does.
A `DirectRoute` calls its endpoint with the request and the path parameters only; the
endpoint reads its body with `read_json` and `validated`, which keep FastAPI's rules, errors
and their order (tests/test_direct.py compares the two side by side), and `body_openapi`
documents the body as a `body: Model` parameter would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any, TypeVar

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from .security import raw_header

M = TypeVar("M", bound=BaseModel)


class DirectRoute(APIRoute):
    """An APIRoute whose endpoint is awaited as `endpoint(request, **path_params)`: no
    dependencies, body parameter or response model at run time (they still document it)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # Nothing would run them: refuse rather than ignore dependencies given to the route.
        assert not self.dependencies, "a DirectRoute runs no dependencies"
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(request, **request.path_params)

        return handler


def _is_json(content_type: str) -> bool:
    if content_type == "application/json":  # what nearly every client sends: skip the parser
        return True
    message = Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


_MISSING = object()


async def read_json(request: Request) -> Any:
    """The decoded body, its raw bytes when not declared JSON, or a marker when empty; a JSON
    syntax error is a 422 and undecodable bytes a 400, as in FastAPI before any dependency.

    As with FastAPI's default strict content type, only an `application/json` (or `+json`)
    body is decoded: any other body stays bytes and fails validation.
    """
    raw = await request.body()
    if not raw:
        return _MISSING
    if not _is_json(raw_header(request.scope, b"content-type") or ""):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None
    except Exception:  # not UTF-8 (or -16/-32) at all, nested too deep...: as FastAPI answers
        raise HTTPException(400, "There was an error parsing the body") from None


def validated(model: type[M], data: Any) -> M:
    """`read_json`'s result as `model`, or the 422 FastAPI gives for a `body: model` parameter."""
    if data is _MISSING:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return model.model_validate(data, from_attributes=True)  # as FastAPI validates bodies
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
        raise RequestValidationError(errors) from None


#: Models documented by `body_openapi`; the app's schema adds them to its components.
BODY_MODELS: list[type[BaseModel]] = []


def body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring a required JSON body of `model`, as a `body: model` parameter
    would; the model's schema joins the components (see `add_body_schemas`)."""
    if model not in BODY_MODELS:
        BODY_MODELS.append(model)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


def add_body_schemas(schemas: dict[str, Any]) -> None:
    """Put the models of `body_openapi` bodies into an OpenAPI document's component schemas."""
    for model in BODY_MODELS:
        schemas.setdefault(
            model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}")
        )
