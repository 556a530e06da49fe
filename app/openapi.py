"""The OpenAPI document's finish: tag descriptions, readable operation ids, one error schema."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

TAGS: list[dict[str, str]] = [
    {"name": "lessons", "description": "The course: every served lesson, and one lesson's HTML."},
    {
        "name": "quizzes",
        "description": "A lesson's knowledge check without its answers, and grading a submission "
        "(stored for signed-in learners).",
    },
    {
        "name": "training",
        "description": "Train the lesson's NumPy network on the server: JSON, or Server-Sent "
        "Events with `Accept: text/event-stream`.",
    },
    {
        "name": "accounts",
        "description": "Registering, bearer tokens (OAuth2 password flow), who I am, my data "
        "and my attempts.",
    },
    {"name": "progress", "description": "Where a learner stands on each lesson."},
    {
        "name": "review",
        "description": "Spaced review: the questions I answered in quizzes, due again as FSRS "
        "schedules them, each graded as its quiz grades it.",
    },
    {"name": "instructors", "description": "Statistics for instructors (403 for learners)."},
    {"name": "meta", "description": "Liveness and readiness probes."},
]

#: Every error body the app sends (app/web/errors.py's handlers): `{"detail": "..."}`.
ERROR_SCHEMA = {
    "title": "ErrorBody",
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string", "title": "Detail"}},
}
#: What the validation handler really sends for a 422: a readable `detail` and the items.
VALIDATION_SCHEMA = {
    "title": "HTTPValidationError",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "title": "Detail"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
    },
}
TOO_LARGE = "The request body is larger than MAX_BODY_BYTES"
#: Examples for bodies whose schema FastAPI writes itself (the OAuth2 password form).
FORM_EXAMPLES = {"token": {"username": "ada", "password": "correct horse battery"}}


def operation_id(route: APIRoute) -> str:
    """The route's function name (`list_lessons`, `train`), not FastAPI's name_path_method."""
    return route.name


def polish(schema: dict[str, Any]) -> dict[str, Any]:
    """Give every error response the shared error schema (422: the validation body), document
    413 wherever a body is read, and file each operation under its most specific tag only.

    Idempotent: FastAPI keeps the schema it built, and this runs on it each time it is asked.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ERROR_SCHEMA
    if "HTTPValidationError" in components:
        components["HTTPValidationError"] = VALIDATION_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    invalid = {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation and "413" not in responses:
                responses["413"] = {"description": TOO_LARGE}
            for code, response in responses.items():
                if code[0] in "45" and not response.get("content"):
                    validation = code == "422" and "HTTPValidationError" in components
                    response["content"] = invalid if validation else error
            example = FORM_EXAMPLES.get(operation.get("operationId", ""))
            if example:
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    media.setdefault("example", example)
            if len(operation.get("tags", ())) > 1:  # router tag + the route's own: keep its own
                operation["tags"] = operation["tags"][-1:]
    return schema


def under_root(schema: dict[str, Any], root: str) -> dict[str, Any]:
    """The schema as served under the prefix `root`: a server URL that includes it (for "Try it
    out") and the token URL of "Authorize" with it; at the top of the host, as it is."""
    if not root:
        return schema
    served = {**schema, "servers": [{"url": root}]}
    schemes = schema.get("components", {}).get("securitySchemes", {})
    if schemes:
        patched = {}
        for name, scheme in schemes.items():
            flows = {
                kind: {**flow, "tokenUrl": root + flow["tokenUrl"]}
                if str(flow.get("tokenUrl", "")).startswith("/")
                else flow
                for kind, flow in scheme.get("flows", {}).items()
            }
            patched[name] = {**scheme, "flows": flows} if flows else scheme
        served["components"] = {**schema["components"], "securitySchemes": patched}
    return served
