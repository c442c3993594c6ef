"""One shape for every API error: {"error": {"code", "message", "details"}} plus the HTTP status.

Services raise `ServiceError` (or a subclass) with a message a person can act on; views do not
catch it, this handler turns it into a 4xx.
"""

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ServiceError(Exception):
    """A business rule refused the request. `status_code` is the HTTP status the API answers."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details or {}
        # Seconds until the request may succeed (429, 503): sent as the Retry-After header.
        self.retry_after = retry_after
        if retry_after is not None:
            self.details.setdefault("retry_after_seconds", retry_after)


class NotFound(ServiceError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the server accepts."
    default_code = "request_too_large"


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_json_response(
    status_code: int, code: str, message: str, details=None, *, retry_after: int | None = None
) -> JsonResponse:
    """The API's error shape outside DRF (Django's 404/500/CSRF handlers, middleware)."""
    response = JsonResponse(error_body(code, message, details), status=status_code)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _first_message(detail) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        text = _first_message(value)
        return text if key in ("non_field_errors", "detail") else f"{key}: {text}"
    return str(detail)


def api_exception_handler(exc, context):
    response = _error_response(exc, context)
    request = context.get("request")
    if response is not None and request is not None:
        # Errors are JSON whatever renderer the endpoint would pick (the schema's YAML, the browsable API).
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    return response


def _error_response(exc, context):
    if isinstance(exc, ServiceError):
        body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return Response(body, status=exc.status_code, headers=headers)
    if isinstance(exc, RequestDataTooBig):  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, read through request.body
        exc = RequestTooLarge()
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        body = {"error": {"code": "invalid", "message": _first_message(detail), "details": detail}}
    else:
        message = detail.get("detail", detail) if isinstance(detail, dict) else detail
        body = {"error": {"code": getattr(message, "code", code), "message": str(message), "details": {}}}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        body["error"]["details"] = {"retry_after_seconds": int(exc.wait)}
    response.data = body
    return response
