"""Log-in lock-outs (django-axes): who is trying, from where, and what a locked-out person reads.

Axes counts failed log-ins per account and per client address on every `authenticate()` that carries a request:
the site's log-in (allauth), the admin's and the API token. The settings point axes at the callables below.
"""

from __future__ import annotations

import ipaddress

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import get_user_model
from django.shortcuts import render


class LoginLimitBackend(AxesStandaloneBackend):
    """Axes' check before any password check. A call without a request (a script, the test client's
    `login()`) is no log-in from the web: it is not limited instead of crashing."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies append to X-Forwarded-For, in which
    case the entry the farthest trusted proxy wrote. Entries to its left come from the client and are never read,
    so rotating them changes nothing."""
    remote = request.META.get("REMOTE_ADDR", "")
    count = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",")]
    if len(hops) < count:
        return remote  # did not come through all our proxies: the nearest peer is all we know
    candidate = hops[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def attempted_account(request, credentials) -> str:
    """The account a log-in names, one key however it is typed: the username (lower case), also when the person
    typed the account's email address, so switching between the two does not double the tries."""
    credentials = credentials or {}
    typed = credentials.get("username") or credentials.get("email")
    if typed is None and request is not None:
        typed = request.POST.get("login") or request.POST.get("username")
    typed = (typed or "").strip()
    if "@" in typed:
        user = get_user_model().objects.filter(email__iexact=typed).only("username").first()
        if user is not None:
            typed = user.get_username()
    return typed.lower()


def lockout_minutes() -> int:
    return max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_response(request, original_response=None, credentials=None):
    minutes = lockout_minutes()
    return render(
        request,
        "account/lockout.html",
        {"minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
