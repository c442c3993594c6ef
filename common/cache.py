"""Django's Redis cache, keeping one redis-py client per connection pool.

Django's RedisCacheClient builds a new `redis.Redis` for every cache operation, and redis-py's
constructor copies its table of ~170 response callbacks each time: about 0.1 ms of CPU per get, set
or incr, paid on every API request (its throttle). A client is thread-safe and cheap to keep.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.core.signals import setting_changed
from django.dispatch import receiver


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class ReusedClientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient

    def redis(self):
        """The redis-py client behind this cache (same server, database and pool), for atomic scripts."""
        return self._cache.get_client(write=True)


def redis_client():
    """The default cache's redis-py client, or None when the cache is not Redis (the embedded default)."""
    from django.core.cache import caches

    backend = caches["default"]
    return backend.redis() if isinstance(backend, ReusedClientRedisCache) else None


_scripts: dict[str, object] = {}


def redis_script(source: str):
    """A Lua script registered on the default cache's Redis (run with `script(keys=..., args=...)`),
    or None without Redis. redis-py sends it by its SHA, and the source again only if Redis lost it.

    Kept per process (a redis-py client is thread-safe, and its pool reconnects after a fork), since
    finding the cache's client costs more than the call on the vote path; forgotten when the cache
    settings change.
    """
    if source not in _scripts:
        client = redis_client()
        _scripts[source] = client.register_script(source) if client is not None else None
    return _scripts[source]


@receiver(setting_changed)
def _forget_scripts(*, setting, **kwargs):
    if setting in ("CACHES", "REDIS_URL"):
        _scripts.clear()
