"""The address of the client a request came from: the one place that decides, for throttles and logs.

X-Forwarded-For is written by whoever sent the request, so it is believed only as far as our own proxies
wrote it: each proxy appends the address it received from, so with TRUSTED_PROXY_COUNT proxies in front of
us the client is that many entries from the right. Anything further left is the client's own claim.
With no trusted proxies (the default) the header is ignored and the socket's peer is the client.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "")
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < trusted:
        # Fewer entries than proxies: the request did not come through all of them, so none can be believed.
        return remote
    address = hops[-trusted]
    return address if _valid(address) else remote
