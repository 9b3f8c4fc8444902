"""Redis servers for the tests: a real redis-server, a 3-master cluster, or fakeredis.

With ``redis-server`` and ``redis-cli`` on PATH the fixtures start real servers on free loopback
ports (``--save "" --appendonly no``, so nothing touches disk but a temp dir), wait until they
answer PING, and stop them by PID. Without them every test falls back to fakeredis, and the
backend's name is in each test id (``redis-server``, ``redis-cluster`` or ``fakeredis``), so a
report says which one ran. Fakeredis has no cluster and no second process; the tests that need
those skip with that reason.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from actiongate.stores.redis import RedisStore, fakeredis_server, store_from_redis_url

__all__ = [
    "HAVE_REDIS_SERVER",
    "SINGLE",
    "TOPOLOGIES",
    "Backend",
    "RedisServerProcess",
    "redis_backend",
    "redis_cluster",
    "redis_server",
    "redis_store",
    "redis_topology",
    "restartable_redis",
]

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
HAVE_REDIS_SERVER = REDIS_SERVER is not None
HAVE_REDIS_CLUSTER = REDIS_SERVER is not None and REDIS_CLI is not None
SINGLE = "redis-server" if HAVE_REDIS_SERVER else "fakeredis"
TOPOLOGIES = ("redis-server", "redis-cluster") if HAVE_REDIS_CLUSTER else ((SINGLE,))
STARTUP_SECONDS = 15.0  # the bound on waiting for a server or a cluster to come up
NEEDS_REAL_REDIS = "needs a real redis-server: fakeredis has no other processes and no INFO"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_candidates = itertools.count(20000 + os.getpid() % 1000 * 30)


def free_port(bus: bool = False) -> int:
    """A loopback port nothing listens on; with ``bus``, port + 10000 too (the cluster bus)."""
    for port in _candidates:
        if port > 55000:
            break
        if _port_free(port) and (not bus or _port_free(port + 10000)):
            return port
    raise RuntimeError("no free port")


def ping(port: int) -> bool:
    """True iff a Redis on the port answers PING with PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServerProcess:
    """One redis-server on 127.0.0.1:``port``, its files in ``directory``."""

    port: int
    directory: Path
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start it (again, on the same port) and wait, bounded, until it answers PING."""
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not ping(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited at start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.01)

    def stop(self) -> None:
        """Kill it by its PID (SIGKILL: no goodbye to clients, as in a crash) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STARTUP_SECONDS)
        self.process = None


def start_server(
    directory: Path, extra: tuple[str, ...] = (), bus: bool = False
) -> RedisServerProcess:
    """A started server on a free port; a port taken between probe and bind is tried again."""
    for _ in range(5):
        server = RedisServerProcess(free_port(bus), directory, extra)
        try:
            server.start()
        except RuntimeError:
            continue
        return server
    raise RuntimeError("could not start redis-server")


@dataclass
class Backend:
    """Where a test's Redis is: ``url`` is what ``store_from_url`` takes."""

    name: str
    url: str
    server: RedisServerProcess | None = None

    def url_with(self, **options: object) -> str:
        """The URL with query options added, e.g. ``prefix`` or ``decode_responses``."""
        query = "&".join(f"{name}={value}" for name, value in options.items())
        return f"{self.url}{'&' if '?' in self.url else '?'}{query}" if query else self.url

    def store(self, **options: object) -> RedisStore:
        """A RedisStore on this Redis, under a prefix of its own unless one is given."""
        options.setdefault("prefix", f"test-{uuid.uuid4().hex[:12]}")
        return store_from_redis_url(self.url_with(**options))

    def stop(self) -> None:
        """The server goes away: killed by PID, or for fakeredis, disconnected."""
        if self.server is not None:
            self.server.stop()
        else:
            fakeredis_server(self.url).connected = False

    def start(self) -> None:
        """It comes back on the same address, empty and with no scripts, as after a restart."""
        if self.server is not None:
            self.server.start()
        else:
            fake = fakeredis_server(self.url)
            fake.dbs.clear()
            fake.script_cache.clear()
            fake.connected = True


def _fake_backend() -> Backend:
    return Backend("fakeredis", f"fakeredis://tests-{uuid.uuid4().hex}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """One single Redis for the session: a real server when there is one, else fakeredis."""
    if not HAVE_REDIS_SERVER:
        yield _fake_backend()
        return
    server = start_server(tmp_path_factory.mktemp("redis"))
    try:
        yield Backend("redis-server", f"redis://127.0.0.1:{server.port}/0", server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A 3-master Redis Cluster for the session (no replicas)."""
    if not HAVE_REDIS_CLUSTER:
        pytest.skip("needs redis-server and redis-cli for a cluster")
    assert REDIS_CLI is not None
    masters: list[RedisServerProcess] = []
    try:
        for index in range(3):
            directory = tmp_path_factory.mktemp(f"cluster{index}")
            extra = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
            masters.append(start_server(directory, extra, bus=True))
        addresses = [f"127.0.0.1:{master.port}" for master in masters]
        subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=STARTUP_SECONDS,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not all(_cluster_ok(master.port) for master in masters):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.05)
        yield Backend("redis-cluster", f"redis+cluster://127.0.0.1:{masters[0].port}")
    finally:
        for master in masters:
            master.stop()


def _cluster_ok(port: int) -> bool:
    assert REDIS_CLI is not None
    out = subprocess.run(
        [REDIS_CLI, "-p", str(port), "cluster", "info"],
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
        check=False,
    )
    return "cluster_state:ok" in out.stdout


@pytest.fixture(scope="session", params=TOPOLOGIES)
def redis_topology(request: pytest.FixtureRequest) -> Backend:
    """Each topology in turn: the single server, then the cluster (or fakeredis alone)."""
    name = "redis_cluster" if request.param == "redis-cluster" else "redis_server"
    backend: Backend = request.getfixturevalue(name)
    return backend


@pytest.fixture(params=[SINGLE])
def redis_backend(redis_server: Backend) -> Backend:
    """The session's single Redis, with its backend's name in the test id."""
    return redis_server


@pytest.fixture(params=[SINGLE])
def restartable_redis(tmp_path: Path) -> Iterator[Backend]:
    """A Redis of this test's own, which the test may stop and start again on the same port."""
    if not HAVE_REDIS_SERVER:
        backend = _fake_backend()
        yield backend
        fakeredis_server(backend.url).connected = True
        return
    server = start_server(tmp_path)
    try:
        yield Backend("redis-server", f"redis://127.0.0.1:{server.port}/0", server)
    finally:
        server.stop()


@pytest.fixture
def redis_store(redis_backend: Backend) -> Iterator[RedisStore]:
    """A RedisStore under a prefix of its own on the session's single Redis; emptied after."""
    store = redis_backend.store()
    yield store
    store.clear_all()
    store.close()
