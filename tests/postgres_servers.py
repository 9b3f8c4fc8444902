"""PostgreSQL servers for the tests: ``initdb`` into a temp dir, ``postgres`` on a loopback port.

The fixture finds the server binaries (``initdb`` on PATH, ``pg_config --bindir``, or Debian's
``/usr/lib/postgresql/<version>/bin``), initialise a cluster in a fresh temp dir, and start
``postgres`` on a free port of 127.0.0.1 with its unix socket inside that dir, without fsync:
what it writes survives a crash of the server, which the tests cause, not one of the machine
(``synchronous_commit`` stays on: a commit must outlive the postmaster's SIGKILL). It is ready
when ``postmaster.pid`` says so; it is stopped by its PID. PostgreSQL refuses to run as
root, so under root (as in CI) both run as the ``postgres`` user (Debian's package makes it),
else ``nobody``, owning the temp dir. Without the binaries the fixture skips, saying so.

PostgreSQL's children leave the postmaster's process group (each calls setsid), so ``pause``
signals the postmaster, then each process whose parent it is, by PID; ``kill`` SIGKILLs the
postmaster alone, as a crash of it would, and its backends end themselves on seeing it gone.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "postgres_server", "server_binaries"]

STARTUP_SECONDS = 30.0  # the bound on initdb, on a start, and on a stop
SUPERUSER = "actiongate"  # the role initdb creates; trust authentication, loopback only
DATABASE = "postgres"
SPEED_OVER_DURABILITY = (
    "fsync=off",
    "full_page_writes=off",
    "max_connections=100",
    "shared_buffers=32MB",
)


def server_binaries() -> tuple[Path, Path] | None:
    """``(initdb, postgres)`` from one bin directory, or None when there is no server."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:  # follow the link: Debian's /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:  # libpq-dev's pg_config may name a bindir without a server: checked below
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found:
            candidates.append(Path(found))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [path for path in debian.iterdir() if path.name.isdigit()]
        candidates += [path / "bin" for path in sorted(versions, key=lambda p: -int(p.name))]
    for directory in candidates:
        initdb, postgres = directory / "initdb", directory / "postgres"
        if os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK):
            return initdb, postgres
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Whom initdb and postgres run as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root with neither a postgres nor a nobody user")


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _alive(pid: int) -> bool:
    """Whether the process runs; a zombie (dead, not yet reaped by init) does not."""
    return _status(pid).get("State", "Z").strip()[:1] not in ("Z", "X")


def _live_children(parent: int) -> list[int]:
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [pid for pid in pids if _status(pid).get("PPid") == str(parent) and _alive(pid)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    """One ``postgres`` on 127.0.0.1:``port``, its cluster and socket in ``directory``."""

    initdb: Path
    postgres: Path
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def dsn(self) -> str:
        """A libpq connection string for the server, over TCP."""
        return f"host=127.0.0.1 port={self.port} dbname={DATABASE} user={SUPERUSER}"

    def _run_as(self) -> dict[str, object]:
        user = _unprivileged_user()
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def create(self) -> None:
        """Initialise the cluster (no fsync: a test's cluster dies with it)."""
        user = _unprivileged_user()
        if user is not None:
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        subprocess.run(
            [
                *(str(self.initdb), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust"),
                *("--no-sync", "--encoding=UTF8", "--locale=C"),
            ],
            cwd=self.directory,
            capture_output=True,
            check=True,
            timeout=STARTUP_SECONDS,
            **self._run_as(),  # type: ignore[arg-type]
        )

    def start(self) -> None:
        """Start it (again, on the same port and data) and wait, bounded, until it is ready."""
        self.port = self.port or _free_port()
        settings = [
            "listen_addresses=127.0.0.1",
            f"port={self.port}",
            f"unix_socket_directories={self.directory}",
            *SPEED_OVER_DURABILITY,
        ]
        log = (self.directory / "postgres.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [str(self.postgres), "-D", str(self.data)]
                + [argument for setting in settings for argument in ("-c", setting)],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its PID is its group: kill and pause reach backends
                **self._run_as(),  # type: ignore[arg-type]
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._ready():
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"postgres exited at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"postgres was not ready in time:\n{self.log_tail()}")
            time.sleep(0.02)

    def _ready(self) -> bool:
        # PostgreSQL 10+ writes its state on the pid file's 8th line, as pg_ctl reads it; the
        # first line names the postmaster, so a killed one's stale file does not count.
        assert self.process is not None
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0] == str(self.process.pid) and lines[7].strip() == "ready"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.directory / "postgres.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def children(self) -> list[int]:
        """The PIDs of the postmaster's live children: backends and auxiliary processes."""
        if self.process is None:
            return []
        return _live_children(self.process.pid)

    def pause(self) -> None:
        """SIGSTOP the server, postmaster first (so it starts nothing new): its sockets stay
        open, the kernel acknowledges what clients send, and nothing answers."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)
            for pid in self.children():
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT to every process ``pause`` stopped: it answers again."""
        if self.process is not None and self.process.poll() is None:
            for pid in self.children():
                os.kill(pid, signal.SIGCONT)
            os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the postmaster by its PID and reap it; wait, bounded, until its orphaned
        backends have noticed and exited, so that nothing of it still answers."""
        if self.process is None:
            return
        orphans = self.children()
        self.process.kill()
        self.process.wait(timeout=STARTUP_SECONDS)
        self.process = None
        deadline = time.monotonic() + STARTUP_SECONDS
        while any(_alive(pid) for pid in orphans):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the killed postmaster's children {orphans} live on")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop it for good: SIGQUIT (immediate shutdown, which frees its shared memory)."""
        if self.process is None:
            return
        self.resume()  # a paused server cannot act on SIGQUIT
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=STARTUP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the module's tests, which may kill, pause and restart it."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, postgres) not found: on Debian, "
            "apt-get install postgresql"
        )
    # Not pytest's tmp_path: its parents are root's 0700 dirs, closed to the postgres user.
    directory = Path(tempfile.mkdtemp(prefix="actiongate-postgres-"))
    server = PostgresServer(*binaries, directory)
    try:
        server.create()
        for attempt in range(3):  # a port taken between probe and bind: another
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                server.port = 0
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
