from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Django tries patterns in order: the vote endpoint, the busiest by far, comes first. (No two
    # API patterns match the same path, so the order changes nothing else.)
    path("api/v1/", include("voting.api.urls")),
    path("api/v1/", include("common.api_urls")),
    path("api/v1/", include("characters.clips.api.urls")),
    path("api/v1/", include("characters.dna.api.urls")),
    path("api/v1/", include("characters.pins.api.urls")),
    path("api/v1/", include("generation.api.urls")),
    path("api/v1/", include("marketplace.api.urls")),
    path("", include("common.urls")),
    path("", include("characters.clips.urls")),
    path("", include("characters.dna.urls")),
    path("", include("generation.urls")),
    path("", include("marketplace.urls")),
    path("", include("voting.urls")),
]

if settings.DEBUG or not settings.S3_BUCKET:
    # Local media (the embedded default) is served by a Range-aware view so <video> can seek.
    from common.media import serve_media

    urlpatterns += [path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", serve_media, name="media")]
