from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from common import views as common_views

# Under /api/ these answer the API's error shape ({"error": {...}}), elsewhere a page.
handler400 = "common.views.bad_request"
handler403 = "common.views.permission_denied"
handler404 = "common.views.page_not_found"
handler500 = "common.views.server_error"

urlpatterns = [
    # For a load balancer: the process is up / it can serve (database, Redis, storage).
    path("healthz", common_views.healthz, name="healthz"),
    path("readyz", common_views.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # Browsers and crawlers ask for /favicon.ico whatever the pages link: send them to the static icon. Its URL
    # is looked up per request (lazily: the manifest of hashed names may not exist at import), and the
    # redirect is temporary because that name changes with the file.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg")), name="favicon"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Django tries patterns in order: the vote endpoint, the busiest by far, comes first. (No two
    # API patterns match the same path, so the order changes nothing else.)
    path("api/v1/", include("voting.api.urls")),
    path("api/v1/", include("common.api_urls")),
    path("api/v1/", include("characters.clips.api.urls")),
    path("api/v1/", include("characters.dna.api.urls")),
    path("api/v1/", include("characters.pins.api.urls")),
    path("api/v1/", include("characters.groups.api.urls")),
    path("api/v1/", include("generation.api.urls")),
    path("api/v1/", include("marketplace.api.urls")),
    # Last of the API: any other /api/ path is the API's JSON 404, not a page.
    re_path(r"^api/", common_views.api_not_found, name="api-not-found"),
    path("", include("common.urls")),
    path("", include("characters.clips.urls")),
    path("", include("characters.dna.urls")),
    path("", include("characters.groups.urls")),
    path("", include("generation.urls")),
    path("", include("marketplace.urls")),
    path("", include("voting.urls")),
]

if settings.DEBUG or not settings.S3_BUCKET:
    # Local media (the embedded default) is served by a Range-aware view so <video> can seek.
    from common.media import serve_media

    urlpatterns += [path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", serve_media, name="media")]
