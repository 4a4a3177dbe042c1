"""What every engine shares: databases, snapshots, the `Server` protocol, process helpers.

Why: the pair runner talks to one `Server` protocol whatever the engine,
and every engine creates, snapshots, clones and drops databases through
one admin connection.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from psycopg.conninfo import make_conninfo

from rollsafe._db import Connection, Flavor, connect, parse_target, quote_ident, scrub
from rollsafe.engines._processes import stop_group
from rollsafe.errors import ConfigError, DatabaseError, EngineUnavailable

EngineKind = Literal["postgres", "cockroach", "external"]


ENGINE_ENV = "ROLLSAFE_ENGINE"


URL_ENV = "ROLLSAFE_DATABASE_URL"


START_TIMEOUT = 60.0


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

    def identity(self) -> str: ...

    def dump(self, db: Database) -> bytes: ...

    def restore(self, dump: bytes, name: str | None = None) -> Database: ...


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
    #: Where pg_dump and pg_restore of the server's own release are (None: look on PATH).
    client_bindir: Path | None = None

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
            # CockroachDB v22.1+: `RESTORE DATABASE d FROM LATEST IN '<collection>' WITH
            # new_db_name = '<name>'` restores d beside the original (cockroachdb/docs
            # src/current/v22.1/restore.md, "Rename a database on restore").
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

    def identity(self) -> str:
        """What a dump of this server depends on: engine, flavor and the server's exact release."""
        if not self._server_version:
            self._execute("SELECT 1")
        return f"{self.kind} {self.flavor} {self._server_version}"

    def _client(self, tool: str) -> str:
        found = (
            self.client_bindir / tool
            if self.client_bindir is not None
            else Path(shutil.which(tool) or tool)
        )
        if self.flavor == "cockroach" or not found.is_file():
            raise EngineUnavailable(
                f"no `{tool}` for this {self.kind} server: database states cannot be saved",
                fix="install PostgreSQL's client programs, or run without a state cache",
            )
        return str(found)

    def _run_client(self, args: list[str], data: bytes | None, doing: str) -> bytes:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        try:
            done = subprocess.run(args, input=data, capture_output=True, env=env, check=False)
        except OSError as exc:
            raise EngineUnavailable(f"cannot run {args[0]}: {exc.strerror}", fix="") from exc
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            last = lines[-1] if lines else f"exit {done.returncode}"
            raise DatabaseError(
                f"{doing} failed: {scrub(last, self.admin_dsn)}",
                where=f"{self.kind} server",
                fix="the state is rebuilt from the migrations instead",
            )
        return done.stdout

    def dump(self, db: Database) -> bytes:
        """The database as ``pg_dump --format=custom`` bytes, roles and grants included.

        Why a dump and not the template's files: it outlives the throwaway
        server, so another process (another CI job) can start from it.
        """
        return self._run_client(
            [self._client("pg_dump"), "--format=custom", "--compress=0", "--dbname", db.dsn],
            None,
            f"pg_dump of {db.name}",
        )

    def restore(self, dump: bytes, name: str | None = None) -> Database:
        """A new database holding ``dump``; on any error it is dropped and the error raised.

        ``--exit-on-error --single-transaction``: a dump that does not restore
        whole (a role the server lacks, a damaged file) is never half used.
        """
        db = self.create_database(name)
        try:
            self._run_client(
                [
                    self._client("pg_restore"),
                    "--exit-on-error",
                    "--single-transaction",
                    "--dbname",
                    db.dsn,
                ],
                dump,
                f"pg_restore into {db.name}",
            )
        except (DatabaseError, EngineUnavailable):
            with contextlib.suppress(DatabaseError):
                self.drop(db)
            raise
        return db

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
        # `BACKUP DATABASE d INTO '<collection>'`: a full backup in a new subfolder of the
        # collection, which `FROM LATEST IN` finds (cockroachdb/docs src/current/v22.1/backup.md).
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
    """Stop a server we started (see `stop_group`: by pid, then its group, then its memory)."""
    stop_group(process, sig)


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
