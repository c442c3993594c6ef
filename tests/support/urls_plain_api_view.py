"""The project's URLs plus two plain Django views: one under /api/ (CSRF-protected, not DRF) to reach
Django's own CSRF refusal there, and a page that writes the session without touching the database itself
(the session is saved by middleware on the way out)."""

from django.http import HttpResponse, JsonResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500  # noqa: F401 (looked up here)
from config.urls import urlpatterns as project_urlpatterns


def plain_post(request):
    return JsonResponse({"ok": True})


def session_write(request):
    request.session["seen"] = True
    return HttpResponse("ok")


urlpatterns = [
    path("api/v1/test-plain-post", plain_post),
    path("test-session-write/", session_write),
    *project_urlpatterns,
]
