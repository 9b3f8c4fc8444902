"""Every vector on the Redis stores: sync and async, either decode_responses, server and cluster.

Each target is the reference adapter over a store on one client that lives as long as the
target (a fresh RedisStore per reset, as the runner asks), reached through the runner's
in-process transport. The runner's own target strings (``--target redis://...``) are checked
too, with a store and a client made at every reset.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from actiongate import Gate, Policy
from actiongate.stores.redis import (
    AsyncRedisStore,
    RedisStore,
    async_store_from_redis_url,
    store_from_redis_url,
)
from actiongate_conformance.data.vectors import Vector, load_all
from actiongate_conformance.layers.vectors import PASS, run_vector
from actiongate_conformance.reports.terminal import failure_lines
from actiongate_conformance.targets import Target, target_from_string
from actiongate_conformance.targets.adapter import ReferenceAdapter
from actiongate_conformance.targets.protocol import Connection, InProcessTransport

from .redis_servers import Backend

VECTORS = [vector for vector_file in load_all() for vector in vector_file.vectors]
VARIANTS = ("sync", "sync-decoded", "async", "async-decoded")
URL_VECTORS = [v for v in VECTORS if v.file in ("identity.json", "store-errors.json")]


class ClosingAsyncStore:
    """An AsyncRedisStore that closes its client at the first ``clear_all`` after ``close_next``.

    The adapter runs coroutines on an event loop of its own, where the client's connections
    live; a last ``clear_all`` request is how the test gets to close them on that loop.
    """

    def __init__(self, store: AsyncRedisStore) -> None:
        self.store = store
        self.close_next = False

    async def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        return await self.store.check_and_reserve(gate, now, policy)

    async def clear(self, gate: Gate) -> None:
        await self.store.clear(gate)

    async def clear_all(self) -> None:
        await self.store.clear_all()
        if self.close_next:
            await self.store.aclose()


def _connect(adapter: ReferenceAdapter) -> Connection:
    return Connection(lambda: InProcessTransport(adapter.handle))


@pytest.fixture(scope="module", params=VARIANTS)
def redis_vector_target(
    request: pytest.FixtureRequest, redis_topology: Backend
) -> Iterator[Target]:
    variant: str = request.param
    prefix = f"vectors-{uuid.uuid4().hex}"
    url = redis_topology.url_with(decode_responses=str(variant.endswith("decoded")).lower())
    if variant.startswith("sync"):
        client = store_from_redis_url(url).client
        adapter = ReferenceAdapter(lambda: RedisStore(client, prefix), name=variant)
        connection = _connect(adapter)
        yield connection
        connection.close()
        adapter.close()
        client.close()
        return
    async_client = async_store_from_redis_url(url).client
    stores: list[ClosingAsyncStore] = []

    def make() -> ClosingAsyncStore:
        stores.append(ClosingAsyncStore(AsyncRedisStore(async_client, prefix)))
        return stores[-1]

    adapter = ReferenceAdapter(make, name=variant)
    connection = _connect(adapter)
    yield connection
    stores[-1].close_next = True
    assert connection.request({"op": "clear_all"}) == {"ok": True}
    connection.close()
    adapter.close()


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{v.file} > {v.id}" for v in VECTORS])
def test_redis_store_passes(redis_vector_target: Target, vector: Vector) -> None:
    outcome = run_vector(redis_vector_target, vector)
    assert outcome.result == PASS, "\n".join(failure_lines(outcome))


@pytest.fixture(scope="module")
def redis_url_target(redis_topology: Backend) -> Iterator[Target]:
    target = target_from_string(redis_topology.url_with(prefix="url-target"))
    yield target
    target.close()


@pytest.mark.parametrize("vector", URL_VECTORS, ids=[f"{v.file} > {v.id}" for v in URL_VECTORS])
def test_the_runner_target_string_names_the_redis_store(
    redis_url_target: Target, vector: Vector
) -> None:
    outcome = run_vector(redis_url_target, vector)
    assert outcome.result == PASS, "\n".join(failure_lines(outcome))
