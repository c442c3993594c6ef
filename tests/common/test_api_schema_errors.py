"""The OpenAPI schema says what the API answers: real responses validate against it, and the error answers
every operation can give (429 where throttled, 503) are documented with the error component."""

import copy

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.support.factories import ClipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def as_json_schema(node):
    """OpenAPI 3.0's `nullable` spelled as JSON Schema, so jsonschema can check a response against a component."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: as_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


def validate(schema: dict, component: str, body) -> None:
    document = {
        "$ref": f"#/components/schemas/{component}",
        "components": as_json_schema(copy.deepcopy(schema["components"])),
    }
    jsonschema.validate(body, document, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_a_clip_uploaded_as_a_file_validates_against_the_clip_schema(schema):
    clip = ClipFactory(source_url="")
    body = APIClient().get(f"/api/v1/clips/{clip.pk}").json()
    assert body["source_url"] is None
    validate(schema, "Clip", body)
    assert schema["components"]["schemas"]["Clip"]["properties"]["source_url"]["format"] == "uri"


def test_a_clip_fetched_from_a_link_gives_that_link(schema):
    clip = ClipFactory(source_url="https://example.com/take.mp4")
    body = APIClient().get(f"/api/v1/clips/{clip.pk}").json()
    assert body["source_url"] == "https://example.com/take.mp4"
    validate(schema, "Clip", body)


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/auth/token", "post"),
        ("/api/v1/stories", "get"),
        ("/api/v1/stories/{story_id}/clips", "post"),
        ("/api/v1/generate/webhooks/fal", "post"),
    ],
)
def test_throttled_operations_document_429_and_every_operation_503(schema, path, method):
    responses = schema["paths"][path][method]["responses"]
    for code in ("429", "503"):
        assert code in responses, f"{method.upper()} {path} does not document {code}"
        ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/Error"


def test_every_operation_documents_503(schema):
    missing = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "503" not in operation["responses"]
    ]
    assert not missing


def test_a_real_throttled_answer_matches_the_documented_error(schema, monkeypatch):
    from common.throttling import ScopedRateThrottle

    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "auth", "1/min")
    UserFactory(username="someone")
    api = APIClient()
    api.post("/api/v1/auth/token", {"username": "someone", "password": "x"}, format="json")
    response = api.post("/api/v1/auth/token", {"username": "someone", "password": "x"}, format="json")
    assert response.status_code == 429
    validate(schema, "Error", response.json())
