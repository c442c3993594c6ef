"""Django's Redis cache, keeping one redis-py client per connection pool.

Django's RedisCacheClient builds a new `redis.Redis` for every cache operation, and redis-py's
constructor copies its table of ~170 response callbacks each time: about 0.1 ms of CPU per get, set
or incr, which the vote endpoint pays three times. A client is thread-safe and cheap to keep.
"""
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


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
