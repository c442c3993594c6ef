"""Serve local media with HTTP Range support (placeholder; the pages work replaces it)."""
from django.conf import settings
from django.views.static import serve


def serve_media(request, path):
    return serve(request, path, document_root=settings.MEDIA_ROOT)
