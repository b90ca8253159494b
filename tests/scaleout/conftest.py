"""Scale-out fixtures: the private, stoppable Redis server of the Redis tests."""

from tests.redis.conftest import redis_server

__all__ = ["redis_server"]
