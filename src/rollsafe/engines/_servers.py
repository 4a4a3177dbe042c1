"""Throwaway database servers: an embedded PostgreSQL, a CockroachDB node, or an external cluster.

Why: every database test and every upgrade pair needs a real server, on a
developer's laptop, as root in CI, and on a shared cluster, without anything
running beforehand and without anything left behind.  `ephemeral_server`
starts one (or attaches to ``ROLLSAFE_DATABASE_URL``), yields a `Server`
that creates, snapshots, clones and drops databases, and stops it and removes
its folder on every exit path: normal exit, exception, Ctrl-C and SIGTERM.

Engines:

* ``postgres`` — ``initdb`` and ``postgres`` from PATH, else the newest
  ``/usr/lib/postgresql/<N>/bin`` (Debian) or ``/usr/pgsql-<N>/bin`` (RHEL),
  else the ``pgserver`` wheel.  initdb refuses to run as root, so as root the
  server runs as the existing unprivileged account ``postgres`` (else
  ``nobody``) in a temporary folder that account owns; no account is
  created.  It listens on a Unix socket in that folder only (no TCP unless
  asked), with durability off (fsync, synchronous_commit, full_page_writes),
  its files in ``/dev/shm`` when that tmpfs has a GiB free.
  A snapshot is ``CREATE DATABASE snap TEMPLATE source`` and a clone
  ``CREATE DATABASE x TEMPLATE snap``: one file copy, whatever the history.
* ``cockroach`` — ``cockroach start-single-node --insecure`` with an
  in-memory store on random loopback ports, ready when its listening-URL file
  is written.  CockroachDB has no template databases; a snapshot is
  ``BACKUP DATABASE source INTO 'nodelocal://1/...'`` (into the temporary
  folder) and a clone ``RESTORE DATABASE ... WITH new_db_name``: a copy of
  the data as it is, seed rows included, at a cost that does not grow with
  the number of migrations, where replaying the migration prefix would cost
  one schema-change job (hundreds of milliseconds each on CockroachDB) per
  migration per clone and could not reproduce the seeded rows.
* ``external`` — ``ROLLSAFE_DATABASE_URL``; every database gets a random
  suffix and is dropped afterwards, so several runners share one cluster.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal, Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from rollsafe._db import Connection, Flavor, connect, flavor_of, parse_target, quote_ident, scrub
from rollsafe.errors import ConfigError, DatabaseError, EngineUnavailable

EngineKind = Literal["postgres", "cockroach", "external"]
ENGINE_ENV = "ROLLSAFE_ENGINE"
URL_ENV = "ROLLSAFE_DATABASE_URL"
#: Accounts tried, in order, to run PostgreSQL when we are root.
SERVER_ACCOUNTS = ("postgres", "nobody")
#: Longest Unix socket path (``sun_path`` is 108 bytes with the terminating NUL).
SOCKET_PATH_MAX = 107
#: Memory-backed scratch space, used for the server's files when it has room.
SHM = "/dev/shm"
SHM_MIN_FREE = 1 << 30
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
INSTALL_POSTGRES = "apt-get install postgresql, or pip install 'rollsafe[pgserver]'"


@dataclass(frozen=True)
class Database:
    """A database on a server, and the DSN to reach it."""

    name: str
    dsn: str


@dataclass(frozen=True)
class Snapshot:
    """A frozen copy of a database that clones are made from.

    On PostgreSQL ``name`` is a database that accepts no connections (so a
    stray session never blocks a clone); on CockroachDB ``location`` is the
    backup collection and ``source`` the database name inside it.
    """

    name: str
    source: str
    location: str | None = None


class Server(Protocol):
    """A running throwaway server (or an external cluster) that hands out databases."""

    @property
    def kind(self) -> EngineKind: ...

    @property
    def flavor(self) -> Flavor: ...

    def create_database(self, name: str | None = None) -> Database: ...

    def snapshot(self, source: Database, name: str) -> Snapshot: ...

    def clone(self, snapshot: Snapshot, name: str | None = None) -> Database: ...

    def drop(self, db: Database | Snapshot) -> None: ...


def unique_name(prefix: str = "rollsafe") -> str:
    """A database name no other runner will pick (lower case, fits in 63 bytes)."""
    return f"{prefix[:40]}_{secrets.token_hex(6)}".lower()


def _literal(text: str) -> str:
    """A SQL string literal (CockroachDB's BACKUP/RESTORE options take strings, not parameters)."""
    return "'" + text.replace("'", "''") + "'"


class _SqlServer:
    """What every engine shares: one admin connection and database DDL through it."""

    kind: EngineKind = "postgres"
    flavor: Flavor = "postgres"
    suffix_names = False

    def __init__(self, admin_dsn: str, *, flavor: Flavor) -> None:
        self.admin_dsn = admin_dsn
        self.flavor = flavor
        self._admin: Connection | None = None
        self._lock = threading.Lock()
        self._owned: set[str] = set()
        self._server_version = 0

    def dsn_for(self, name: str) -> str:
        """The DSN of database ``name`` on this server."""
        return make_conninfo(self.admin_dsn, dbname=name)

    def _execute(self, sql: str, params: tuple[Any, ...] | None = None) -> None:
        with self._lock:
            if self._admin is None or self._admin.closed:
                self._admin = connect(parse_target(self.admin_dsn), application_name="rollsafe")
                self._server_version = self._admin.info.server_version
            try:
                self._admin.execute(sql, params)
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"{scrub(str(exc), self.admin_dsn)}",
                    where=f"{self.kind} server",
                    fix="check the server's log",
                ) from None

    def _name(self, name: str | None, prefix: str) -> str:
        if name is None:
            return unique_name(prefix)
        if self.suffix_names:
            return unique_name(name)
        if len(name.encode()) > 63:
            raise ConfigError(f"database name `{name}` is longer than 63 bytes", fix="shorten it")
        return name

    def create_database(self, name: str | None = None) -> Database:
        """A new empty database (a unique name when none is given)."""
        name = self._name(name, "rollsafe")
        self._execute(f"CREATE DATABASE {quote_ident(name)}")
        self._owned.add(name)
        return Database(name=name, dsn=self.dsn_for(name))

    def _strategy(self) -> str:
        # PostgreSQL 15's default WAL_LOG copies block by block through the WAL;
        # FILE_COPY copies files, faster for the small databases tests make.
        return " STRATEGY FILE_COPY" if self._server_version >= 150000 else ""

    def snapshot(self, source: Database, name: str) -> Snapshot:
        """Freeze a copy of ``source``; sessions still connected to it are terminated."""
        if self.flavor == "cockroach":
            return self._backup(source, name)
        name = self._name(name, "snapshot")
        self._terminate(source.name)
        self._execute(
            f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(source.name)}"
            f"{self._strategy()}"
        )
        self._owned.add(name)
        self._execute(f"ALTER DATABASE {quote_ident(name)} WITH ALLOW_CONNECTIONS false")
        return Snapshot(name=name, source=source.name)

    def clone(self, snapshot: Snapshot, name: str | None = None) -> Database:
        """A new database with the snapshot's schema and rows: one copy, no replay."""
        name = self._name(name, "clone")
        if snapshot.location is not None:
            self._execute(
                f"RESTORE DATABASE {quote_ident(snapshot.source)} FROM LATEST IN "
                f"{_literal(snapshot.location)} WITH new_db_name = {_literal(name)}"
            )
        else:
            self._execute(
                f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(snapshot.name)}"
                f"{self._strategy()}"
            )
        self._owned.add(name)
        return Database(name=name, dsn=self.dsn_for(name))

    def drop(self, db: Database | Snapshot) -> None:
        """Drop a database or snapshot; open sessions on it are terminated."""
        if isinstance(db, Snapshot) and db.location is not None:
            self._drop_backup(db)
        elif self.flavor == "cockroach":
            self._execute(f"DROP DATABASE IF EXISTS {quote_ident(db.name)} CASCADE")
        elif self._server_version >= 130000:
            self._execute(f"DROP DATABASE IF EXISTS {quote_ident(db.name)} WITH (FORCE)")
        else:
            self._terminate(db.name)
            self._execute(f"DROP DATABASE IF EXISTS {quote_ident(db.name)}")
        self._owned.discard(db.name)

    def _terminate(self, name: str) -> None:
        self._execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )

    def _backup_root(self) -> str:
        return "nodelocal://1/rollsafe"

    def _backup(self, source: Database, name: str) -> Snapshot:
        location = f"{self._backup_root()}/{re.sub(r'[^A-Za-z0-9_-]', '_', name)}"
        location += f"-{secrets.token_hex(4)}"
        self._execute(f"BACKUP DATABASE {quote_ident(source.name)} INTO {_literal(location)}")
        return Snapshot(name=name, source=source.name, location=location)

    def _drop_backup(self, snapshot: Snapshot) -> None:
        """Backups in an external cluster's nodelocal storage cannot be removed over SQL."""

    def close(self) -> None:
        """Close the admin connection (an external server first drops what it created)."""
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None


class PostgresServer(_SqlServer):
    """A PostgreSQL server in a temporary folder, reached over its Unix socket."""

    kind: EngineKind = "postgres"

    def __init__(
        self, *, folder: Path, process: subprocess.Popen[bytes], port: int, account: str
    ) -> None:
        super().__init__(
            make_conninfo(host=str(folder), port=port, user="postgres", dbname="postgres"),
            flavor="postgres",
        )
        self.folder = folder
        self.process = process
        self.port = port
        self.account = account

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        return self.process.pid


class CockroachServer(_SqlServer):
    """A single in-memory CockroachDB node on loopback."""

    kind: EngineKind = "cockroach"

    def __init__(self, *, url: str, folder: Path, process: subprocess.Popen[bytes]) -> None:
        super().__init__(url, flavor="cockroach")
        self.folder = folder
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def _drop_backup(self, snapshot: Snapshot) -> None:
        assert snapshot.location is not None
        relative = snapshot.location.removeprefix("nodelocal://1/")
        shutil.rmtree(self.folder / "extern" / relative, ignore_errors=True)


class ExternalServer(_SqlServer):
    """A cluster someone else runs: unique names, and everything created is dropped."""

    kind: EngineKind = "external"
    suffix_names = True

    def close(self) -> None:
        for name in sorted(self._owned):
            with contextlib.suppress(DatabaseError):
                self.drop(Database(name=name, dsn=""))
        super().close()


# -- finding and running binaries --------------------------------------------------------------


def _version_key(path: Path) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", path.name)
    return tuple(int(n) for n in numbers) or (0,)


def find_postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: PATH, distribution folders, pgserver."""
    initdb = shutil.which("initdb")
    if initdb:
        folder = Path(initdb).resolve().parent
        if (folder / "postgres").is_file():
            return folder
        postgres = shutil.which("postgres")
        if postgres:
            return Path(postgres).resolve().parent
    candidates = [
        *Path("/usr/lib/postgresql").glob("*/bin"),
        *(p / "bin" for p in Path("/usr").glob("pgsql-*")),
    ]
    for folder in sorted(candidates, key=lambda p: _version_key(p.parent), reverse=True):
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (folder / "initdb").is_file():
            return folder
    return None


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run PostgreSQL as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_ACCOUNTS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise EngineUnavailable(
        "running as root, and neither a `postgres` nor a `nobody` account exists "
        "to run PostgreSQL (initdb refuses root)",
        fix="run as a normal user, or install PostgreSQL (which creates `postgres`)",
    )


def _in_memory_folder() -> Path | None:
    """``/dev/shm`` when it is a writable tmpfs with room to spare, else None."""
    shm = Path(SHM)
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    if not os.access(shm, os.W_OK | os.X_OK) or stats.f_bavail * stats.f_frsize < SHM_MIN_FREE:
        return None
    return shm


def temp_parent(account: pwd.struct_passwd | None = None) -> Path:
    """Where the server's folder goes: in memory when possible, reachable, socket-short.

    A throwaway cluster's files need no disk: on tmpfs a template clone of a
    database with hundreds of tables is a memory copy (tens of milliseconds)
    instead of hundreds of file creations on disk (a second or more).
    """
    parent = _in_memory_folder() or Path(tempfile.gettempdir())
    too_long = len(str(parent)) + len("/rollsafe-pg-XXXXXXXX/.s.PGSQL.65535") > SOCKET_PATH_MAX
    unreachable = account is not None and any(
        not (p.stat().st_mode & 0o001) for p in (parent, *parent.parents)
    )
    return Path("/tmp") if too_long or unreachable else parent


def _as_account(account: pwd.struct_passwd | None, folder: Path) -> dict[str, Any]:
    """subprocess arguments that run a command as ``account`` (no supplementary groups)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    if account is None:
        return {"env": env}
    env.update(HOME=str(folder), USER=account.pw_name, LOGNAME=account.pw_name)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": [], "env": env}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Stop a server we started: ``sig`` first, then SIGKILL to its whole process group.

    For PostgreSQL ``sig`` is SIGQUIT, which is what ``pg_ctl stop -m
    immediate`` sends: a throwaway server has nothing worth a clean shutdown.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _start_postgres(stack: ExitStack, *, tcp: bool) -> PostgresServer:
    bindir = find_postgres_bindir()
    if bindir is None:
        raise EngineUnavailable(
            "no PostgreSQL server binaries (initdb, postgres) on PATH, in "
            "/usr/lib/postgresql/<N>/bin or from the pgserver wheel",
            fix=INSTALL_POSTGRES,
        )
    account = _server_account()
    folder = Path(tempfile.mkdtemp(prefix="rollsafe-pg-", dir=temp_parent(account)))
    stack.callback(_remove, folder)
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
    running = _as_account(account, folder)
    data = folder / "data"
    done = subprocess.run(
        [
            str(bindir / "initdb"),
            *("-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
            *("--locale=C", "--no-sync"),
        ],
        cwd=folder,
        capture_output=True,
        check=False,
        **running,
    )
    if done.returncode != 0:
        last = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        raise EngineUnavailable(
            f"initdb failed: {last[-1] if last else f'exit {done.returncode}'}",
            where=str(bindir),
            fix=INSTALL_POSTGRES,
        )
    port = _free_port() if tcp else 5432
    settings = {
        "listen_addresses": "127.0.0.1" if tcp else "",
        "unix_socket_directories": str(folder),
        "port": str(port),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "wal_level": "minimal",
        "max_wal_senders": "0",
        "autovacuum": "off",
        "max_connections": "200",
    }
    log = folder / "postgres.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data)]
            + [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **running,
        )
    stack.callback(_stop, process, signal.SIGQUIT)
    _wait_postgres(process, data / "postmaster.pid", log)
    name = account.pw_name if account else pwd.getpwuid(os.geteuid()).pw_name
    return PostgresServer(folder=folder, process=process, port=port, account=name)


def _wait_postgres(process: subprocess.Popen[bytes], pid_file: Path, log: Path) -> None:
    """Ready when postmaster.pid says so (PostgreSQL 10+ writes a status line)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineUnavailable(
                f"postgres exited with code {process.returncode}: {_tail(log)}",
                fix=INSTALL_POSTGRES,
            )
        with contextlib.suppress(OSError):
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 8 and lines[7].strip() == "ready":
                return
        time.sleep(0.01)
    raise EngineUnavailable(
        f"postgres did not become ready in {START_TIMEOUT:.0f} s: {_tail(log)}",
        fix="check the log above",
    )


def _start_cockroach(stack: ExitStack) -> CockroachServer:
    binary = shutil.which("cockroach")
    if binary is None:
        raise EngineUnavailable(
            "no `cockroach` binary on PATH",
            fix="install CockroachDB, or set ROLLSAFE_ENGINE=postgres",
        )
    folder = Path(tempfile.mkdtemp(prefix="rollsafe-crdb-"))
    stack.callback(_remove, folder)
    (folder / "extern").mkdir()
    (folder / "tmp").mkdir()
    url_file = folder / "listen-url"
    log = folder / "cockroach.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                "start-single-node",
                "--insecure",
                "--store=type=mem,size=1GiB",
                "--listen-addr=127.0.0.1:0",
                "--http-addr=127.0.0.1:0",
                f"--listening-url-file={url_file}",
                f"--external-io-dir={folder / 'extern'}",
                f"--temp-dir={folder / 'tmp'}",
                "--cache=128MiB",
                "--max-sql-memory=256MiB",
            ],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # An in-memory store has nothing to shut down cleanly.
    stack.callback(_stop, process, signal.SIGKILL)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EngineUnavailable(
                f"cockroach exited with code {process.returncode}: {_tail(log)}",
                fix="run `cockroach version` to check the binary",
            )
        with contextlib.suppress(OSError):
            text = url_file.read_text()
            if text.endswith("\n"):
                return CockroachServer(url=text.strip(), folder=folder, process=process)
        time.sleep(0.02)
    raise EngineUnavailable(
        f"cockroach did not write its URL in {START_TIMEOUT:.0f} s: {_tail(log)}",
        fix="check the log above",
    )


def _attach_external() -> ExternalServer:
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        raise EngineUnavailable(
            f"engine `external` needs {URL_ENV}",
            fix=f"export {URL_ENV}=postgresql://USER:PASSWORD@HOST/DB (a role with CREATEDB)",
        )
    target = parse_target(url)
    with connect(target) as conn:
        flavor = flavor_of(conn)
    return ExternalServer(target.dsn, flavor=flavor)


# -- selection and lifetime ---------------------------------------------------------------------


def resolve_engine(engine: str = "auto") -> EngineKind:
    """The engine to use: the argument, else ``ROLLSAFE_ENGINE``; ``auto`` prefers cockroach."""
    source = "--engine"
    choice = engine.strip().lower()
    if choice == "auto":
        from_env = os.environ.get(ENGINE_ENV, "").strip().lower()
        if from_env:
            choice, source = from_env, ENGINE_ENV
    if choice == "auto":
        return "cockroach" if shutil.which("cockroach") else "postgres"
    if choice == "postgres":
        return "postgres"
    if choice == "cockroach":
        return "cockroach"
    if choice == "external":
        return "external"
    raise ConfigError(
        f"unknown engine `{choice}`",
        where=source,
        fix="choose auto, postgres, cockroach or external",
    )


@contextmanager
def _terminate_raises() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while a server runs, so cleanup code gets to run.

    Python's default for SIGTERM is to die on the spot, skipping ``finally``.
    KeyboardInterrupt rather than SystemExit, because pytest stops the whole
    session on it (running fixture teardown) where it would report a
    SystemExit as one failed test and carry on.  Only the main thread can
    install handlers, and a handler someone else installed is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def ephemeral_server(engine: str = "auto", *, tcp: bool = False) -> Iterator[Server]:
    """Start (or attach to) a server for the engine; stop it and remove its folder on exit.

    ``tcp`` also opens a loopback TCP port on PostgreSQL, for tools that
    cannot use a Unix socket.
    """
    kind = resolve_engine(engine)
    with ExitStack() as stack:
        stack.enter_context(_terminate_raises())
        server: _SqlServer
        if kind == "postgres":
            server = _start_postgres(stack, tcp=tcp)
        elif kind == "cockroach":
            server = _start_cockroach(stack)
        else:
            server = _attach_external()
        stack.callback(server.close)
        yield server
