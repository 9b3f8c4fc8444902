"""The PostgreSQL example store (examples/stores/postgres), certified against a real server.

The whole suite runs through the Python API on the target a vendor names,
``py:actiongate_postgres:store_from_env``; then the fault layer again with the failure inside
the store's own transaction, after its prune; then the server is killed and paused under a
check, and two processes hammer one gate. Every check reads an injected clock.
"""

from __future__ import annotations

import importlib
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import actiongate_conformance
import pytest
from actiongate import (
    BlockReason,
    Decision,
    Engine,
    Gate,
    Policy,
    Status,
    StoreError,
    StoreErrorMode,
)
from actiongate_conformance.targets.faulty_store import FaultyStore

from .conftest import ManualClock
from .postgres_servers import PostgresServer, postgres_server  # noqa: F401
from .processes import counts_from_processes

# The example store's own dependencies; CI installs them (the test extra).
pytest.importorskip("psycopg", reason="needs psycopg: pip install -e '.[test]'")
pytest.importorskip("psycopg_pool", reason="needs psycopg_pool: pip install -e '.[test]'")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "stores" / "postgres"
TARGET = "py:actiongate_postgres:store_from_env"
SEED = 20261124
GATE = Gate("n", "a", "p")
CLOSED = Policy(max_calls=10, window=60)
OPEN = Policy(max_calls=10, window=60, on_store_error=StoreErrorMode.FAIL_OPEN)
# Seconds: the store's timeout is 0.5 s for a connection and 0.5 s for its transaction, so about
# 1 s at worst; the margin is for a busy host. The tests print what they measured.
DECIDES_WITHIN = 1.5


@pytest.fixture(scope="module")
def store_module() -> Iterator[ModuleType]:
    """``actiongate_postgres``, imported from the example's directory as the suite would."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXAMPLE))
        yield importlib.import_module("actiongate_postgres")


@pytest.fixture
def environment(
    postgres_server: PostgresServer,  # noqa: F811
    store_module: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[None]:
    """The variables ``store_from_env`` reads; its store is closed after the test."""
    monkeypatch.setenv("ACTIONGATE_POSTGRES_DSN", postgres_server.dsn)
    monkeypatch.setenv("ACTIONGATE_POSTGRES_PREFIX", "suite")
    yield
    store_module.store_from_env().close()


def assert_store_error(decision: Decision, status: Status) -> None:
    assert (decision.status, decision.reason) == (status, BlockReason.STORE_ERROR)
    assert (decision.calls_in_window, decision.time_since_last) == (0, None)


# The suite


@pytest.mark.slow
@pytest.mark.usefixtures("environment")
def test_the_store_passes_the_whole_suite() -> None:
    result = actiongate_conformance.run(target=TARGET, seed=SEED)
    assert result.verdict.value == "conforming", result.text()
    assert result.atomicity is not None and result.atomicity.checks >= 2000
    assert result.atomicity.linearizable and result.atomicity.faults_ok
    print(result.verdict.line)


class FailsAfterItsPrune(FaultyStore):
    """The fault layer's failures, made inside the store's own transaction: while ``failing``,
    a trigger raises once the check's prune has run, so the store must roll the prune back
    and raise StoreError (ERR-1, ERR-2), not the suite's wrapper."""

    def check_and_reserve(self, gate: Gate, now: float, policy: Policy) -> Any:
        if self.failing:
            self.faults_injected += 1
            self._set_flag(True)
        try:
            return self.store.check_and_reserve(gate, now, policy)
        finally:
            if self.failing:
                self._set_flag(False)

    def _set_flag(self, failing: bool) -> None:
        with self.store.pool.connection() as connection:
            connection.execute("UPDATE faults_failing SET failing = %s", (failing,))


FAIL_AFTER_PRUNE = """
CREATE TABLE IF NOT EXISTS faults_failing (failing boolean NOT NULL);
INSERT INTO faults_failing SELECT false WHERE NOT EXISTS (SELECT FROM faults_failing);
CREATE OR REPLACE FUNCTION faults_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT failing FROM faults_failing) THEN
        RAISE EXCEPTION 'injected: the check failed after its prune';
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER fail_after_prune AFTER DELETE ON faults_events
    FOR EACH STATEMENT EXECUTE FUNCTION faults_fail();
"""


def fails_after_its_prune() -> FailsAfterItsPrune:
    """The target ``py:tests.test_postgres_store:fails_after_its_prune``."""
    store = importlib.import_module("actiongate_postgres").store_from_env()
    with store.pool.connection() as connection:  # a statement-level trigger fires even
        connection.execute(FAIL_AFTER_PRUNE)  # when the prune deletes nothing
    return FailsAfterItsPrune(store)


@pytest.mark.usefixtures("environment")
def test_failures_inside_the_transaction_are_rolled_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONGATE_POSTGRES_PREFIX", "faults")
    result = actiongate_conformance.run(
        target="py:tests.test_postgres_store:fails_after_its_prune",
        layers=("vectors", "atomicity"),
        select="ERR-2",
        atomicity=80,
    )
    assert result.conforming, result.text()
    assert result.atomicity is not None and result.atomicity.faults_ok
    assert result.atomicity.faults_injected >= 16


# Real failures: killed, paused


@pytest.fixture
def store(postgres_server: PostgresServer, store_module: ModuleType) -> Iterator[Any]:  # noqa: F811
    """A store of its own on the module's server, restarted if a test left it down."""
    made = store_module.connect(postgres_server.dsn, prefix="failures")
    made.clear_all()
    yield made
    if postgres_server.process is None:
        postgres_server.start()
    made.close()


def timed_check(engine: Engine, policy: Policy) -> tuple[Decision, float]:
    started = time.monotonic()
    decision = engine.check(GATE, policy)
    return decision, time.monotonic() - started


def assert_both_modes_decide_store_error_in_time(engine: Engine, failure: str) -> None:
    """FAIL_CLOSED blocks and FAIL_OPEN allows, each with STORE_ERROR, within the bound."""
    closed, closed_seconds = timed_check(engine, CLOSED)
    opened, open_seconds = timed_check(engine, OPEN)
    print(f"{failure}: FAIL_CLOSED {closed_seconds:.3f} s, FAIL_OPEN {open_seconds:.3f} s")
    assert_store_error(closed, Status.BLOCK)
    assert_store_error(opened, Status.ALLOW)
    assert max(closed_seconds, open_seconds) < DECIDES_WITHIN


def assert_recovers_with_nothing_recorded(engine: Engine, bound: float = 10.0) -> None:
    """Checks until one is not a STORE_ERROR (the pool reconnects in the background); it is
    the second ALLOW: the failed checks recorded nothing (ERR-2)."""
    deadline = time.monotonic() + bound
    recovered = engine.check(GATE, CLOSED)
    while recovered.reason is BlockReason.STORE_ERROR and time.monotonic() < deadline:
        recovered = engine.check(GATE, CLOSED)
    assert (recovered.status, recovered.reason) == (Status.ALLOW, None)
    assert recovered.calls_in_window == 2


def test_a_killed_server_decides_store_error_within_a_second(
    postgres_server: PostgresServer,  # noqa: F811
    store: Any,
) -> None:
    engine = Engine(store, clock=ManualClock(1.0))
    assert engine.check(GATE, CLOSED).calls_in_window == 1
    postgres_server.kill()
    assert_both_modes_decide_store_error_in_time(engine, "killed")
    with pytest.raises(StoreError):
        engine.clear(GATE)  # a clear is not a check: its failure is raised (CLR-1)
    postgres_server.start()
    assert_recovers_with_nothing_recorded(engine)


def test_a_paused_server_decides_store_error_within_a_second(
    postgres_server: PostgresServer,  # noqa: F811
    store: Any,
) -> None:
    engine = Engine(store, clock=ManualClock(1.0))
    assert engine.check(GATE, CLOSED).calls_in_window == 1
    postgres_server.pause()
    try:
        assert_both_modes_decide_store_error_in_time(engine, "paused")
    finally:
        postgres_server.resume()
    # Each cut connection's transaction never reached COMMIT: the server rolled it back.
    assert_recovers_with_nothing_recorded(engine)


# Atomic across processes (RES-1, RES-2)

HAMMERED = Gate("n", "hammered", "p")
NOW = 1000.0  # every check, in every process, at one time: each ALLOW is an event of its own
MAX_CALLS = 60


def hammer_process(dsn: str, threads: int, checks: int, start: Any, results: Any) -> None:
    """One process: a pool of its own and ``threads`` threads, once every process is ready."""
    sys.path.insert(0, str(EXAMPLE))
    store = importlib.import_module("actiongate_postgres").connect(dsn, prefix="hammer")
    engine = Engine(store, clock=lambda: NOW)
    policy = Policy(max_calls=MAX_CALLS, window=60)
    counts: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        for _ in range(checks):
            decision = engine.check(HAMMERED, policy)
            if decision.reason is None:
                with lock:
                    counts.append(decision.calls_in_window)
            elif decision.reason is not BlockReason.RATE_LIMIT:
                with lock:
                    counts.append(-1)  # a STORE_ERROR, say: fails the test

    try:
        start.wait(timeout=60)
        workers = [threading.Thread(target=run) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        results.put(counts)
    finally:
        store.close()


@pytest.mark.slow
def test_two_processes_never_allow_more_than_max_calls(
    postgres_server: PostgresServer,  # noqa: F811
    store_module: ModuleType,
) -> None:
    cleaner = store_module.connect(postgres_server.dsn, prefix="hammer")
    cleaner.clear_all()
    allowed = counts_from_processes(hammer_process, (postgres_server.dsn, 4, 25), 2, 120)
    # 200 checks for 60 calls: exactly 60 ALLOWs, counting 1 to 60, as if one after another.
    assert sorted(allowed) == list(range(1, MAX_CALLS + 1))
    cleaner.clear_all()
    cleaner.close()


# The README tells the truth


def test_the_readme_shows_the_schema_the_store_creates(store_module: ModuleType) -> None:
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", readme, re.DOTALL)
    assert store_module.schema() in blocks


def test_the_readme_certifies_with_the_target_the_tests_run(store_module: ModuleType) -> None:
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    assert f"actiongate-conformance run --target {TARGET}" in readme
    assert callable(store_module.store_from_env)
