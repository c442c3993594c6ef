"""Absolute URLs in API bodies: the one place that decides their scheme and host.

Links a client follows come from its own request (`build_absolute_uri`: the host it used, which
Django has already checked against ALLOWED_HOSTS, and the scheme it used, behind a trusted proxy
too), so a client on an internal name or a second domain gets links it can reach. What is stored or
handed to someone else — `dna.json`, the reference images and webhook URL given to generation
providers — uses the configured public SITE_URL instead; those do not come through here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def absolute_url(request: HttpRequest | None, path_or_url: str) -> str:
    """`path_or_url` made absolute on the request's scheme and host. A URL that already is absolute (a
    presigned S3 URL) is kept as it is; with no request (a body built outside one), SITE_URL."""
    if urlsplit(path_or_url).scheme:
        return path_or_url
    if request is not None:
        return request.build_absolute_uri(path_or_url)
    return settings.SITE_URL.rstrip("/") + path_or_url


def absolute_file_url(request: HttpRequest | None, field_file) -> str | None:
    """A stored file's URL, absolute (see absolute_url); None when there is no file."""
    if not field_file:
        return None
    return absolute_url(request, field_file.url)


@extend_schema_field({"type": "string", "format": "uri", "nullable": True})
class AbsoluteFileUrlField(serializers.Field):
    """A file field as its absolute URL, on the host of the serializer context's `request`; null without a file."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return absolute_file_url(self.context.get("request"), value)
