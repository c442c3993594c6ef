import logging
import os
import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views import csrf as django_csrf
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from common.db import database_unreachable
from common.exceptions import RequestTooLarge, error_json_response
from common.middleware import is_api_request, unavailable_response

logger = logging.getLogger(__name__)


# --- Health, for a load balancer ---------------------------------------------------------------


@never_cache
def healthz(request):
    """The process is up and answering. Touches nothing else, so a database outage does not restart it."""
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        connection.close()  # the next request connects afresh
        raise


def _check_redis() -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def _check_storage() -> None:
    if isinstance(default_storage, FileSystemStorage):
        root = default_storage.location
        if not (os.path.isdir(root) and os.access(root, os.W_OK)):
            raise OSError(f"{root} is not a writable folder")
        return
    default_storage.exists("readyz-probe")  # a HEAD on S3: answers (404 or 200) only if the bucket is reachable


@never_cache
def readyz(request):
    """Ready to serve: the database, Redis (when configured) and media storage answer. 503 names what failed."""
    checks = {"database": _check_database, "storage": _check_storage}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis
    results, failed = {}, []
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means not ready; the reason is for the operator
            logger.warning("Readiness check %s failed: %s", name, exc)
            results[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
            failed.append(name)
    status = 503 if failed else 200
    return JsonResponse(
        {"status": "unavailable" if failed else "ok", "failed": failed, "checks": results}, status=status
    )


# --- Errors: the API's JSON shape under /api/, pages elsewhere ---------------------------------


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """The last /api/ route: an unknown API path answers the API's 404, whatever the method."""
    return error_json_response(404, "not_found", f"There is no API endpoint at {request.path}.")


def page_not_found(request, exception=None):
    if is_api_request(request):
        return error_json_response(404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        message = str(RequestTooLarge.default_detail)
        if is_api_request(request):
            return error_json_response(413, "request_too_large", message)
        return HttpResponse(loader.render_to_string("413.html"), status=413)
    if is_api_request(request):
        return error_json_response(400, "bad_request", "The request could not be understood.")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if is_api_request(request):
        return error_json_response(403, "permission_denied", "You do not have permission to do this.")
    return defaults.permission_denied(request, exception)


def server_error(request):
    # Called inside Django's exception handling: sys.exc_info() is the exception that got here, which may have
    # been raised outside a view (another middleware), where DatabaseUnavailableMiddleware cannot see it.
    exc = sys.exc_info()[1]
    if exc is not None and database_unreachable(exc):
        return unavailable_response(request)
    if is_api_request(request):
        return error_json_response(500, "server_error", "The server hit an unexpected error; it has been logged.")
    return defaults.server_error(request)


def csrf_failure(request, reason=""):
    if is_api_request(request):
        return error_json_response(
            403,
            "csrf_failed",
            "CSRF check failed. Send `Authorization: Bearer <token>`, or the X-CSRFToken header with a session.",
            {"reason": reason},
        )
    return django_csrf.csrf_failure(request, reason)
