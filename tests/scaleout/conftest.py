"""Scale-out fixtures: the private, stoppable Redis server of the Redis tests."""

from tests.calls.redis.conftest import redis_server

__all__ = ["redis_server"]
