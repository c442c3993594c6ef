"""API throttles that count requests per fixed window with one atomic counter.

DRF's throttles keep each client's request history as a list in the cache, read and rewritten on
every request: two cache round trips, a list as long as the rate to unpickle, and two concurrent
requests can both read the old list and both get through. These count instead: one atomic
increment (a Redis script: one round trip; a locked increment in the local-memory cache),
so a client never gets past its rate however many requests race. The price of a fixed window is
that a client can spend one window's allowance at its end and the next one's at the start.

The rates, scopes and keys are DRF's (`DEFAULT_THROTTLE_RATES`, `throttle_scope`); only the counting differs,
and the client's address, which is common.client_ip's (X-Forwarded-For through TRUSTED_PROXY_COUNT proxies only).
"""

from __future__ import annotations

import logging
import math
import time

from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework import throttling

from common.cache import redis_client, redis_script
from common.client_ip import client_ip

logger = logging.getLogger(__name__)

# KEYS[1] the window's counter; ARGV[1] its lifetime. The first request of a window sets the expiry.
_INCREMENT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


def _count(key: str, window: int) -> int:
    """Add one to the counter for `key`, which lives `window` seconds; returns the new count."""
    increment = redis_script(_INCREMENT)
    if increment is not None:
        try:
            return increment(keys=[key], args=[window])
        except RedisError as exc:
            # Rate limits protect the service; an unreachable cache should not take the API down with it.
            logger.warning("Throttle counter unavailable, letting the request through: %s", exc)
            return 0
    cache.add(key, 0, window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens the next window
        cache.add(key, 1, window)
        return 1


def _peek(key: str) -> int:
    client = redis_client()
    if client is not None:
        try:
            return int(client.get(key) or 0)
        except RedisError:
            return 0
    return cache.get(key, 0)


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's spelling of a rate: "30/hour" -> (30, 3600)."""
    limit, period = throttling.SimpleRateThrottle.parse_rate(None, rate)  # type: ignore[arg-type]  # uses no self
    assert limit is not None and period is not None  # a rate string always parses to both
    return limit, period


def rate_limit_wait(key: str, rate: str, *, count: bool = True) -> int | None:
    """Count one use of `key` against `rate` in its fixed window (with `count=False`, only look); the seconds
    until the window ends if that is over the rate, else None. For rules kept in services, whatever the entry
    point (page, API, admin), counted exactly like the API throttles."""
    num_requests, duration = parse_rate(rate)
    now = time.time()
    start = int(now // duration) * duration
    counter = f"ratelimit:{key}:{start}"
    used = _count(counter, duration + 1) if count else _peek(counter) + 1
    if used > num_requests:
        return max(1, math.ceil(start + duration - now))
    return None


class FixedWindowRateThrottle(throttling.SimpleRateThrottle):
    """SimpleRateThrottle's rates and keys, counted per fixed window. Subclasses put DRF's class first,
    so DRF's own setup (the scoped throttle's choice of rate) runs before this counting."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = time.time()
        window = int(self.duration)
        start = int(now // window) * window
        count = _count(f"throttle:{self.key}:{start}", window + 1)
        if count > self.num_requests:
            self.retry_after = max(1, math.ceil(start + window - now))
            return False
        return True

    def wait(self):
        return getattr(self, "retry_after", None)

    def get_ident(self, request):
        # DRF's trusts any X-Forwarded-For when NUM_PROXIES is unset: a rotating header would get a new allowance
        # per request. The address comes from common.client_ip, through our trusted proxies only.
        return client_ip(request)


class AnonRateThrottle(throttling.AnonRateThrottle, FixedWindowRateThrottle):
    pass


class UserRateThrottle(throttling.UserRateThrottle, FixedWindowRateThrottle):
    pass


class ScopedRateThrottle(throttling.ScopedRateThrottle, FixedWindowRateThrottle):
    pass
