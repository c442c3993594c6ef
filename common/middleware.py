"""Middleware: a database that cannot be reached answers 503 (with Retry-After), not a 500; and the site's
Content-Security-Policy, the same on every page, the admin's included.

A view's exception reaches `process_exception`; one raised in another middleware (the session saved on
the way out) reaches the 500 handler, which calls the same `unavailable_response` (common.views).
"""

from __future__ import annotations

import logging

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpResponse
from django.template import loader

from common.db import database_unreachable
from common.exceptions import error_json_response

logger = logging.getLogger(__name__)


def is_api_request(request) -> bool:
    return request.path_info.startswith("/api/")


def unavailable_response(request) -> HttpResponse:
    retry_after = settings.DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS
    if is_api_request(request):
        return error_json_response(
            503,
            "service_unavailable",
            "The service is briefly unavailable (its database cannot be reached). Try again in a few seconds.",
            retry_after=retry_after,
        )
    # Rendered without the request: context processors would ask the database for the user.
    response = HttpResponse(loader.render_to_string("503.html"), status=503)
    response["Retry-After"] = str(retry_after)
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not database_unreachable(exception):
            return None
        logger.warning("Database unreachable, answering 503 for %s: %s", request.path, exception)
        return unavailable_response(request)


# django-csp's, with no exception: the admin renders no style attribute either (common/admin_html.py, admin.css),
# so /admin/ is held to settings.CONTENT_SECURITY_POLICY like every other page. Settings name it here.
ContentSecurityPolicyMiddleware = CSPMiddleware
