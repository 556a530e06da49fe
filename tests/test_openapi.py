"""The OpenAPI document reads well: described tags, readable operation ids, examples on request
bodies, every error response with its schema, /train's event stream."""

from __future__ import annotations

import pytest


@pytest.fixture
def schema(client) -> dict:
    return client.get("/openapi.json").json()


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_tag_in_use_is_described_and_each_operation_has_one(schema):
    described = {tag["name"]: tag.get("description") for tag in schema["tags"]}
    assert all(described.values()), described
    for name, operation in operations(schema):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in described, name


def test_operation_ids_are_the_functions_names_and_unique(schema):
    ids = {name: operation["operationId"] for name, operation in operations(schema)}
    assert len(set(ids.values())) == len(ids)
    assert ids["GET /api/lessons"] == "list_lessons"
    assert ids["POST /train"] == "train"
    assert ids["GET /api/me/attempts"] == "my_attempts"
    assert ids["GET /readyz"] == "readyz"
    for name, operation_id in ids.items():
        assert operation_id.isidentifier() and not operation_id.endswith(
            ("_get", "_post", "_delete")
        ), (name, operation_id)
    assert not [c for c in schema["components"]["schemas"] if "__" in c or c.endswith("_post")]


def test_every_request_body_has_an_example(schema):
    components = schema["components"]["schemas"]
    for name, operation in operations(schema):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            ref = media["schema"].get("$ref") or next(
                (s["$ref"] for s in media["schema"].get("anyOf", []) if "$ref" in s), None
            )
            component = components[ref.rsplit("/", 1)[-1]] if ref else {}
            assert "example" in media or "examples" in media or component.get("examples"), (
                name,
                media_type,
            )


def test_every_error_response_has_a_json_schema(schema):
    for name, operation in operations(schema):
        for code, response in operation["responses"].items():
            if code[0] in "45":
                media = response.get("content", {}).get("application/json", {})
                assert "$ref" in media.get("schema", {}), (name, code)


def test_a_body_that_is_too_large_is_documented_wherever_a_body_is_read(schema):
    for name, operation in operations(schema):
        if "requestBody" in operation:
            assert "413" in operation["responses"], name


def test_train_documents_its_event_stream_and_its_json(schema):
    ok = schema["paths"]["/train"]["post"]["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/TrainResult"}
    stream = ok["text/event-stream"]
    assert "`epoch`" in stream["schema"]["description"]
    assert "`result`" in stream["schema"]["description"]
    assert stream["example"].startswith("event: epoch")
    assert set(schema["paths"]["/train"]["post"]["responses"]) >= {"200", "400", "422", "429"}


def test_readyz_documents_its_503(schema):
    responses = schema["paths"]["/readyz"]["get"]["responses"]
    assert responses["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }
