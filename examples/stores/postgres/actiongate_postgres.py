"""actiongate_postgres: an ActionGate store on PostgreSQL, for the reference engine.

Theory of operation
-------------------
A gate is a row of ``<prefix>_gates``, its events rows of ``<prefix>_events``, one per ALLOW,
each holding the check's ``now`` in a ``double precision`` column: binary64, so a time comes back
bit for bit as the engine sent it (TIME-2). Gate fields are ``bytea`` (UTF-8), because ``text``
cannot hold U+0000 (ID-2), and a gate is found by all three fields, never by a joined key; the
row also holds a SHA-256 digest of them, length-prefixed, to index the lookup.

A check (``check_and_reserve``) is one transaction on one pooled connection:

1. take the store's advisory lock shared, then the gate's (``pg_advisory_xact_lock``, keyed
   by the digest), so that checks of one gate run one at a time in every process (RES-1)
   while ``clear_all`` waits for them;
2. in one statement, discard the events the window no longer retains (RET-1, RET-2) and count
   the rest, reading the newest (later statements of a READ COMMITTED transaction see every
   check committed before the lock was granted);
3. decide here, in Python: the cooldown, then the rate limit (ORD-1, CD-1, RATE-1);
4. on ALLOW insert one event at ``now`` (RES-1, RES-2); then commit, and the locks go.

Failures. Any error of psycopg or the pool is raised as ``actiongate.StoreError``, its cause
chained, after the transaction rolled back, so a failed check recorded and pruned nothing
(ERR-2); the engine decides by ``on_store_error`` (ERR-1). Only a connection lost during COMMIT
leaves the outcome unknown (ERR-3). ``timeout`` bounds every wait: for a pooled connection, for a
statement or a lock on the server, and, on the client's clock, for the whole transaction: a
paused server answers nothing and has its kernel acknowledge what is sent, so only a client-side
deadline ends that wait (``_Watchdog``).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import os
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from actiongate import Gate, Policy, StoreError
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

__all__ = ["PostgresStore", "connect", "pool_settings", "schema", "store_from_env"]

DEFAULT_PREFIX = "actiongate"
DEFAULT_TIMEOUT = 0.5  # seconds; see the module's "Failures"
CONNECT_TIMEOUT = 2  # seconds: libpq's least (it reads 1 as 2), for a new connection only
IDLE_IN_TRANSACTION_TIMEOUT = 10.0  # seconds before the server ends a client stuck mid-check
# How long the pool retries a lost connection before leaving it to the next check to connect
# anew. Its default (5 minutes, backing off 1, 2, 4... s) can keep a store failing for as long
# after its server is back.
RECONNECT_TIMEOUT = 1.0
PREFIX_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,39}")

SCHEMA = """\
CREATE TABLE IF NOT EXISTS {prefix}_gates (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest    bytea NOT NULL UNIQUE,  -- SHA-256 of the three fields, length-prefixed
    namespace bytea NOT NULL,         -- UTF-8: text cannot hold U+0000
    action    bytea NOT NULL,
    principal bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS {prefix}_events (
    gate_id bigint NOT NULL REFERENCES {prefix}_gates (id) ON DELETE CASCADE,
    t       double precision NOT NULL  -- the check's now, binary64 (TIME-2)
);
CREATE INDEX IF NOT EXISTS {prefix}_events_gate_t ON {prefix}_events (gate_id, t);
"""


def schema(prefix: str = DEFAULT_PREFIX) -> str:
    """The DDL of a store's tables under ``prefix``; it may run again (IF NOT EXISTS)."""
    if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(f"prefix must match {PREFIX_PATTERN.pattern}, got {prefix!r}")
    return SCHEMA.format(prefix=prefix)


def _seconds(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 1e6:
        raise ValueError(f"timeout must be seconds, finite and > 0, got {timeout!r}")
    return float(timeout)


def _gate_params(gate: Gate) -> dict[str, bytes]:
    """The fields as UTF-8, and ``digest``: SHA-256 of an injective encoding of all three."""
    params = {name: getattr(gate, name).encode() for name in ("namespace", "action", "principal")}
    digest = hashlib.sha256()
    for field in params.values():
        digest.update(len(field).to_bytes(8, "big") + field)  # length-prefixed (ID-2)
    params["digest"] = digest.digest()
    return params


def _lock_key(*parts: bytes) -> int:
    """A bigint advisory-lock key. Two gates sharing one only wait for each other."""
    return int.from_bytes(hashlib.sha256(b"\0".join(parts)).digest()[:8], "big", signed=True)


class PostgresStore:
    """A Store for ``actiongate.Engine`` on a psycopg ``ConnectionPool``; see the module doc.

    Atomic per check across every process that shares the database (RES-1). ``prefix`` names
    the tables: ``clear_all`` empties those and touches nothing else (CLR-2). ``timeout`` is the
    client-side bound on each operation in seconds. ``create_schema`` runs ``schema(prefix)``.
    A pool you pass in stays yours to close; give it ``connect``'s settings (``pool_settings``)
    for bounded failures.
    """

    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        create_schema: bool = True,
        owns_pool: bool = False,
    ) -> None:
        ddl = schema(prefix)
        self.timeout = _seconds(timeout)
        self.pool = pool
        self.prefix = prefix
        self._owns_pool = owns_pool
        self._store_key = _lock_key(b"actiongate-store", prefix.encode())
        self._sql = _statements(prefix)
        if create_schema:
            with self._transaction("create_schema") as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._store_key,))
                cursor.execute(ddl)

    @property
    def closed(self) -> bool:
        return bool(self.pool.closed)

    def close(self) -> None:
        """Close the pool, if this store made it (``connect``, ``store_from_env``)."""
        if self._owns_pool:
            self.pool.close()

    def check_and_reserve(
        self, gate: Gate, now: float, policy: Policy
    ) -> tuple[int, bool, float | None]:
        now = float(now)
        names = _gate_params(gate)
        # RET-1: retained iff t >= now - window, subtracted here in binary64; no window keeps all.
        cutoff = -math.inf if policy.window is None else now - policy.window
        with self._transaction("check_and_reserve") as cursor:
            self._lock_gate(cursor, names["digest"])
            cursor.execute(self._sql["prune_and_read"], {**names, "cutoff": cutoff})
            gate_id, count, last = cursor.fetchone() or (None, 0, None)  # an aggregate: one row
            age = None if last is None else now - last  # DEC-3, before the reservation
            cooling = policy.cooldown > 0 and age is not None and age < policy.cooldown
            if cooling or count >= policy.max_calls:  # CD-1 first (ORD-1), then RATE-1
                if gate_id is not None and count == 0:  # nothing retained: drop the gate's row
                    cursor.execute(self._sql["forget_gate"], {"id": gate_id})
                return count, False, age
            if gate_id is None:
                cursor.execute(self._sql["insert_gate_and_event"], {**names, "now": now})
            else:
                cursor.execute(self._sql["insert_event"], {"id": gate_id, "now": now})
        return count + 1, True, age  # DEC-2: the call being allowed counts

    def clear(self, gate: Gate) -> None:
        names = _gate_params(gate)
        with self._transaction("clear") as cursor:
            self._lock_gate(cursor, names["digest"])  # not while a check of it is under way
            cursor.execute(self._sql["clear"], names)

    def clear_all(self) -> None:
        with self._transaction("clear_all") as cursor:
            # The store's lock alone: in-flight checks finish first, none starts meanwhile.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._store_key,))
            cursor.execute(self._sql["clear_all"])

    def _lock_gate(self, cursor: psycopg.Cursor[Any], digest: bytes) -> None:
        # The store's lock, then the gate's: the outer SELECT has no row before the CTE's, so
        # data flow fixes the order. Gate first, a check could wait on the store's lock queued
        # behind a clear_all that waits for a check waiting on this gate.
        cursor.execute(
            "WITH store AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(%s))"
            " SELECT pg_advisory_xact_lock(%s) FROM store",
            (self._store_key, _lock_key(self.prefix.encode(), digest)),
        )

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor in one transaction on a live pooled connection, bounded by ``timeout``."""
        try:
            with (
                self._connection() as connection,
                _WATCHDOG.watch(connection, self.timeout),
                connection.transaction(),
                connection.cursor() as cursor,
            ):
                yield cursor
        except (psycopg.Error, OSError) as error:
            raise StoreError(
                f"postgres {operation} failed: {type(error).__name__}: {error}"
            ) from error

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolTimeout(f"no live connection within {self.timeout} s")
            connection = self.pool.getconn(timeout=remaining)
            if _alive(connection):
                break
            connection.close()  # dead, though libpq does not know it yet
            self.pool.putconn(connection)  # the pool drops a closed one and connects anew
        try:
            yield connection
        finally:
            self.pool.putconn(connection)


def _alive(connection: psycopg.Connection[Any]) -> bool:
    """Whether an idle pooled connection still has a server behind it, with no round trip.

    An idle connection has nothing to read unless its server went away: after a restart, or a
    backend ended by the server, its last message (FATAL) and the end of the stream wait there.
    Such a connection is dropped rather than failing a check; a harmless message (a NOTICE)
    costs one reconnect.
    """
    try:
        descriptor = connection.pgconn.socket
    except psycopg.OperationalError:  # closed
        return False
    poller = select.poll()
    poller.register(descriptor, select.POLLIN)
    return not poller.poll(0)


def _statements(prefix: str) -> dict[str, str]:
    """The SQL of a store under ``prefix`` (checked by ``schema``: no quoting needed)."""
    gates, events = f"{prefix}_gates", f"{prefix}_events"
    find_gate = (
        f"SELECT id FROM {gates} WHERE digest = %(digest)s AND namespace = %(namespace)s"
        " AND action = %(action)s AND principal = %(principal)s"
    )
    return {
        # The DELETE and the SELECT read one snapshot: the SELECT counts what the DELETE keeps.
        "prune_and_read": (
            f"WITH gate AS ({find_gate}),"
            f" pruned AS (DELETE FROM {events}"
            "   WHERE gate_id = (SELECT id FROM gate) AND t < %(cutoff)s)"
            f" SELECT (SELECT id FROM gate), count(*), max(t) FROM {events}"
            " WHERE gate_id = (SELECT id FROM gate) AND t >= %(cutoff)s"
        ),
        "insert_event": f"INSERT INTO {events} (gate_id, t) VALUES (%(id)s, %(now)s)",
        "insert_gate_and_event": (
            f"WITH gate AS (INSERT INTO {gates} (digest, namespace, action, principal)"
            " VALUES (%(digest)s, %(namespace)s, %(action)s, %(principal)s) RETURNING id)"
            f" INSERT INTO {events} (gate_id, t) SELECT id, %(now)s FROM gate"
        ),
        "forget_gate": f"DELETE FROM {gates} WHERE id = %(id)s",
        "clear": f"DELETE FROM {gates} WHERE id = ({find_gate})",
        "clear_all": f"DELETE FROM {events}; DELETE FROM {gates}",
    }


class _Watchdog:
    """Cuts the connection of a transaction that outlives its deadline.

    A paused server (SIGSTOP, a frozen VM) keeps its sockets open and its kernel acknowledges
    what is sent, so neither the server's statement_timeout nor TCP's timeouts fire, and psycopg
    would wait for the reply forever. Shutting the socket down wakes the waiting thread with an
    error at once; the pool then drops the connection. One thread per process serves every store.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Empty, and with no thread yet: at start, and in a forked child."""
        self._condition = threading.Condition()
        self._armed: dict[int, tuple[float, socket.socket]] = {}  # token -> (deadline, socket)
        self._tokens = itertools.count()
        self._wakes_at = math.inf  # the deadline the thread sleeps until
        self._serving = False  # whether this process runs the thread yet

    @contextmanager
    def watch(self, connection: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
        # A duplicate of the socket: should libpq close its own descriptor meanwhile, the
        # number could be reused by another connection, which this must never cut.
        duplicate = socket.socket(fileno=os.dup(connection.pgconn.socket))
        deadline = time.monotonic() + seconds
        with self._condition:
            if not self._serving:
                self._serving = True
                threading.Thread(
                    target=self._serve, name="actiongate-postgres", daemon=True
                ).start()
            token = next(self._tokens)
            self._armed[token] = (deadline, duplicate)
            if deadline < self._wakes_at:
                self._condition.notify()
        try:
            yield
        finally:
            with self._condition:
                cut = self._armed.pop(token, None) is None
            duplicate.close()
            if cut:  # cut after its last reply arrived: the result stands, the connection not
                connection.close()

    def _serve(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                for token in [t for t, (due, _) in self._armed.items() if due <= now]:
                    _, duplicate = self._armed.pop(token)
                    with contextlib.suppress(OSError):  # already closed by the server
                        duplicate.shutdown(socket.SHUT_RDWR)
                self._wakes_at = min((due for due, _ in self._armed.values()), default=math.inf)
                self._condition.wait(None if not self._armed else self._wakes_at - now)


_WATCHDOG = _Watchdog()
# A forked child has no watchdog thread, and must not cut its parent's connections.
os.register_at_fork(after_in_child=_WATCHDOG.reset)


def pool_settings(conninfo: str = "", timeout: float = DEFAULT_TIMEOUT) -> str:
    """``conninfo`` with the settings that bound failures: a connect timeout, and server-side
    ``statement_timeout``, ``lock_timeout`` and ``idle_in_transaction_session_timeout``."""
    params = conninfo_to_dict(conninfo)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    ms = max(1, round(_seconds(timeout) * 1000))
    ours = (
        f"-c statement_timeout={ms} -c lock_timeout={ms}"
        f" -c idle_in_transaction_session_timeout={round(IDLE_IN_TRANSACTION_TIMEOUT * 1000)}"
    )
    params["options"] = f"{ours} {params.get('options', '')}".strip()  # yours win: they come last
    return make_conninfo("", **params)


def connect(
    conninfo: str = "",
    *,
    prefix: str = DEFAULT_PREFIX,
    timeout: float = DEFAULT_TIMEOUT,
    min_size: int = 2,
    max_size: int = 16,
) -> PostgresStore:
    """A store on a pool of its own over ``conninfo`` (a libpq string or URI; empty: the PG*
    environment variables). Close it with ``close()``."""
    pool: ConnectionPool[Any] = ConnectionPool(
        pool_settings(conninfo, timeout),
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        reconnect_timeout=RECONNECT_TIMEOUT,
        kwargs={"autocommit": True},  # a transaction is explicit: connection.transaction()
        open=True,
        name=f"actiongate-{prefix}",
    )
    try:
        return PostgresStore(pool, prefix=prefix, timeout=timeout, owns_pool=True)
    except BaseException:
        pool.close()
        raise


_ENV_STORES: dict[tuple[str, str, float], PostgresStore] = {}
_ENV_LOCK = threading.Lock()


def store_from_env() -> PostgresStore:
    """The store the environment names, for ``--target py:actiongate_postgres:store_from_env``.

    ``ACTIONGATE_POSTGRES_DSN`` (default empty: libpq's PGHOST, PGPORT, ... apply),
    ``ACTIONGATE_POSTGRES_PREFIX`` (default ``actiongate``), ``ACTIONGATE_POSTGRES_TIMEOUT``
    (seconds, default 0.5). The suite calls this at every reset: one store, and one pool, per
    process and settings serves them all.
    """
    conninfo = os.environ.get("ACTIONGATE_POSTGRES_DSN", "")
    prefix = os.environ.get("ACTIONGATE_POSTGRES_PREFIX", DEFAULT_PREFIX)
    timeout = float(os.environ.get("ACTIONGATE_POSTGRES_TIMEOUT", DEFAULT_TIMEOUT))
    key = (conninfo, prefix, timeout)
    with _ENV_LOCK:
        store = _ENV_STORES.get(key)
        if store is None or store.closed:
            store = _ENV_STORES[key] = connect(conninfo, prefix=prefix, timeout=timeout)
        return store
