"""OpenAPI pieces every app's API shares: the error body that common.exceptions gives, and the schema class
that documents the errors any operation can answer (429 where throttled, 503 everywhere)."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorDetail",
            {
                "code": serializers.CharField(help_text="Machine-readable, e.g. `invalid_clip`, `not_found`."),
                "message": serializers.CharField(help_text="What went wrong and what to do, for a person."),
                "details": serializers.DictField(help_text="Field errors or extra facts; may be empty."),
            },
        )
    },
)

_DESCRIPTIONS = {
    400: "The request was refused; `error.message` says why.",
    401: "Not signed in: send `Authorization: Bearer <token>` (or use a session).",
    403: "Signed in, but not allowed to do this.",
    404: "No such object.",
    409: "The request conflicts with the object's current state; `error.message` says which.",
    422: "The request was understood but its result would be invalid; `error.message` says why.",
    413: "The file is larger than the limit.",
    415: "Unsupported request content type.",
    429: "Too many requests; `error.details.retry_after_seconds` says when to retry.",
    502: "The remote host could not be fetched.",
    503: "Briefly unavailable (the database or a key server cannot be reached); retry after `Retry-After` seconds.",
    504: "The remote host took too long.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """`responses=` entries for the error statuses an endpoint can answer."""
    return {code: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[code]) for code in statuses}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, adding to each operation the error answers that do not depend on the endpoint: 429 when
    a throttle applies to it, 503 always (common.middleware answers it for any request while the database is
    unreachable)."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = [429] if self.view.get_throttles() else []
        codes.append(503)
        for code in codes:
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    error_responses(code)[code], str(code), direction=direction
                )
        return responses
