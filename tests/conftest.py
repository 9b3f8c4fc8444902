"""Shared fixtures: an injected clock, so no test reads real time; hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI runs derandomized (the same examples every run) and every failure prints the blob that
# reproduces it: @reproduce_failure(...) pasted above the test, or --hypothesis-seed.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", print_blob=True, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# Redis servers (a real redis-server when there is one, else fakeredis) for the Redis tests.
from .redis_servers import (  # noqa: E402, F401
    redis_backend,
    redis_cluster,
    redis_server,
    redis_store,
    redis_topology,
    restartable_redis,
)
