"""A golang-migrate compatible migration runner on psycopg 3.

Why: Go components that embed golang-migrate and this tool must share one
database, so the state lives in golang-migrate's table
(``schema_migrations(version bigint not null primary key, dirty boolean not
null)``, one row) and the lock is the one golang-migrate takes (the same
advisory lock id on PostgreSQL, the same lock table row on CockroachDB).  On
top of that protocol the runner adds what golang-migrate's users keep asking
for: on PostgreSQL each migration and its version change commit in one
transaction, so a failure leaves the previous clean version instead of a
dirty one, and every failure names the file and line of the statement.

How a file runs:

* PostgreSQL, transactional (the default): the file is sent as one
  multi-statement query wrapped as ``BEGIN; <file>; <version change>;
  COMMIT`` — one round trip per migration.  libpq returns one result per
  statement, so the count of results before the error is the index of the
  failing statement, mapped to its line with pglast's statement splitter.
* Files PostgreSQL cannot run inside a transaction block — detected with
  pglast (``CREATE/DROP INDEX CONCURRENTLY``, ``REINDEX ... CONCURRENTLY``,
  ``REINDEX DATABASE/SYSTEM``, ``VACUUM``, ``CLUSTER`` without a table,
  ``DETACH PARTITION ... CONCURRENTLY``, ``CREATE/DROP DATABASE``,
  ``ALTER DATABASE ... SET TABLESPACE``, tablespaces, ``ALTER SYSTEM``,
  subscriptions, ``DISCARD ALL``, files with their own ``BEGIN``/``COMMIT``)
  or declared with a ``-- transaction: none`` line in the comment block at
  the top — and every migration on CockroachDB (which commits DDL on its
  own) follow golang-migrate's protocol: the version is marked dirty, the
  whole file is sent as one query (as golang-migrate sends it; PostgreSQL
  runs it as one implicit transaction), then the version is marked clean; a
  failure leaves it dirty until `Migrator.force`.  ``-- transaction:
  per-statement`` sends the statements one at a time instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

import psycopg
from psycopg import pq

from rollsafe._db import (
    Connection,
    Flavor,
    ScriptOutcome,
    ServerError,
    connect,
    flavor_of,
    parse_target,
    quote_ident,
    run_script,
    scrub,
)
from rollsafe._sqltext import Statement, error_offset, line_at, split_statements
from rollsafe.errors import (
    DatabaseAhead,
    DatabaseError,
    DirtyDatabase,
    IrreversibleMigration,
    MigrationFailed,
    UnknownVersion,
)
from rollsafe.migrate._catalogue import Catalogue
from rollsafe.migrate._lock import (
    DEFAULT_LOCK_TIMEOUT,
    cockroach_lock_ids,
    cockroach_unlock_sql,
    lock_id,
    postgres_lock_ids,
    take_advisory_locks,
    take_cockroach_locks,
)
from rollsafe.migrate._options import TableName, table_name, url_options
from rollsafe.migrate._statements import no_transaction_reason, per_statement

__all__ = ["DEFAULT_TABLE", "Migrator", "Status", "lock_id"]

DEFAULT_TABLE = "schema_migrations"


#: golang-migrate's CockroachDB driver keeps its lock in this table.
DEFAULT_LOCK_TABLE = "schema_lock"


@dataclass(frozen=True)
class Status:
    """Where a database stands relative to the migrations folder.

    ``ahead`` is true when the database's version is newer than the newest
    migration this code knows: an old component restarting during a rolling
    upgrade sees that, and must leave the database alone.
    """

    version: int | None
    dirty: bool
    pending: tuple[int, ...]
    ahead: bool


class Migrator:
    """Applies a catalogue's migrations to one database over one psycopg connection.

    Use as a context manager (or call `close`).  Every operation but
    `status` holds the migration lock for its whole run, so two migrators
    never interleave, and re-reads the version after taking it.
    ``x-migrations-table`` / ``x-lock-table`` in a golang-migrate URL are
    honoured when ``table`` / ``lock_table`` are left at their defaults; a
    ``table`` given in the quoted form ``"schema"."table"`` is read as
    ``x-migrations-table-quoted`` reads it.  ``notify`` hears progress a
    person should see (who holds the lock while this waits for it).
    """

    def __init__(
        self,
        dsn: str,
        catalogue: Catalogue,
        *,
        table: str = DEFAULT_TABLE,
        lock_table: str = DEFAULT_LOCK_TABLE,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        notify: Callable[[str], None] | None = None,
        progress: Callable[[int, int, int], None] | None = None,
    ) -> None:
        self._target = parse_target(dsn)
        #: Called after each file as ``progress(done, total, version)`` (a terminal's counter).
        self.progress = progress
        options = url_options(self._target.options)
        name = table_name(table, quoted=table.startswith('"'))
        if table == DEFAULT_TABLE and options.table is not None:
            name = options.table
        if lock_table == DEFAULT_LOCK_TABLE and options.lock_table:
            lock_table = options.lock_table
        self.catalogue = catalogue
        self.table = name.name if name.schema is None else f"{name.schema}.{name.name}"
        self.lock_table = lock_table
        self.lock_timeout = lock_timeout
        self.statement_timeout = options.statement_timeout
        self._notify = notify
        self._table_name: TableName = name
        self._conn: Connection | None = None
        self._flavor: Flavor = "postgres"
        self._qualified = quote_ident(name.name)
        self._schema = ""
        self._lock_ids: tuple[int, ...] = ()

    # -- connection --------------------------------------------------------------------------

    def __enter__(self) -> Migrator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a session advisory lock dies with it)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def where(self) -> str:
        """The database as shown in messages: DSN without password, and the state table."""
        return f"{self._target.shown} ({self.table})"

    @property
    def flavor(self) -> Flavor:
        """``postgres`` or ``cockroach``, known after the first operation."""
        self._connection()
        return self._flavor

    @property
    def lock_ids(self) -> tuple[int, ...]:
        """The lock ids held while migrating (golang-migrate's two routes), ascending."""
        self._connection()
        return self._lock_ids

    def _connection(self) -> Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = connect(self._target, application_name="rollsafe migrate")
        try:
            self._flavor = flavor_of(conn)
            row = conn.execute("SELECT current_database(), current_schema()").fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise self._database_error(exc, "cannot read the database's name") from None
        database, schema = (str(row[0]), row[1]) if row else ("", None)
        path = self._target.url_path
        if self._flavor == "cockroach":
            # golang-migrate's CockroachDB driver: an unqualified name, lock id from the database.
            self._qualified = quote_ident(self._table_name.name)
            self._lock_ids = cockroach_lock_ids(database, url_path=path)
        else:
            if schema is None:
                # golang-migrate's ErrNoSchema, even for a quoted "schema"."table".
                conn.close()
                raise DatabaseError(
                    "no current schema: search_path names no existing schema",
                    where=self.where,
                    fix="create the schema or fix search_path (e.g. ?search_path=app in the URL)",
                )
            self._schema = self._table_name.schema or str(schema)
            name = self._table_name.name
            self._qualified = f"{quote_ident(self._schema)}.{quote_ident(name)}"
            self._lock_ids = postgres_lock_ids(database, self._schema, name, url_path=path)
        self._conn = conn
        return conn

    def _database_error(self, exc: psycopg.Error, what: str) -> DatabaseError:
        return DatabaseError(
            f"{what}: {scrub(str(exc), self._target.dsn)}",
            where=self.where,
            fix="check the database's log and permissions",
        )

    # -- state table and lock ------------------------------------------------------------------

    def _read_state(self) -> tuple[int | None, bool]:
        conn = self._connection()
        try:
            row = conn.execute(f"SELECT version, dirty FROM {self._qualified} LIMIT 1").fetchone()
        except psycopg.errors.UndefinedTable:
            return None, False
        except psycopg.Error as exc:
            raise self._database_error(exc, "cannot read the migration state") from None
        if row is None:
            return None, False
        version = int(row[0])
        # golang-migrate writes -1 (NilVersion) for "no migration" when a first one failed dirty.
        return (None if version < 0 else version), bool(row[1])

    def _ensure_table(self) -> None:
        conn = self._connection()
        try:
            if self._flavor == "cockroach":
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._qualified} "
                    "(version INT NOT NULL PRIMARY KEY, dirty BOOL NOT NULL)"
                )
                return
            # Check first, as golang-migrate does, so a user without CREATE can still migrate.
            row = conn.execute(
                "SELECT count(1) FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = %s",
                (self._schema, self._table_name.name),
            ).fetchone()
            if not row or row[0] == 0:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._qualified} "
                    "(version bigint not null primary key, dirty boolean not null)"
                )
        except psycopg.Error as exc:
            raise self._database_error(exc, "cannot create the migration state table") from None

    def _state_sql(self, version: int | None, dirty: bool) -> str:
        """SQL that leaves exactly one state row, as golang-migrate's ``SetVersion`` does.

        ``TRUNCATE`` as golang-migrate's postgres driver (a role granted what
        golang-migrate needs has no DELETE); its CockroachDB driver deletes.
        """
        clear = "DELETE FROM" if self._flavor == "cockroach" else "TRUNCATE"
        sql = f"{clear} {self._qualified}"
        if version is not None or dirty:
            number = -1 if version is None else int(version)
            sql += (
                f";\nINSERT INTO {self._qualified} (version, dirty) "
                f"VALUES ({number}, {'true' if dirty else 'false'})"
            )
        return sql

    def _state_error(self, error: ServerError) -> DatabaseError:
        """The state table refused a write: the migration file is not to blame."""
        return DatabaseError(
            f"cannot write the migration state: {error.text}",
            where=self.where,
            fix=f"grant SELECT, INSERT and TRUNCATE on {self.table} to this role (what "
            "golang-migrate needs), or connect as its owner",
        )

    def _set_state(self, version: int | None, *, dirty: bool) -> None:
        conn = self._connection()
        outcome = run_script(conn, f"BEGIN;\n{self._state_sql(version, dirty)};\nCOMMIT")
        if outcome.error is not None:
            self._rollback(conn)
            raise self._state_error(outcome.error)

    @staticmethod
    def _rollback(conn: Connection) -> None:
        if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            run_script(conn, "ROLLBACK")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        conn = self._connection()
        if self._flavor == "cockroach":
            take_cockroach_locks(
                conn, self.lock_table, self._lock_ids, timeout=self.lock_timeout, where=self.where
            )
        else:
            take_advisory_locks(
                conn,
                self._lock_ids,
                timeout=self.lock_timeout,
                where=self.where,
                notify=self._notify,
            )
        try:
            yield
        finally:
            self._unlock(conn)

    def _unlock(self, conn: Connection) -> None:
        if conn.closed:
            return
        try:
            self._rollback(conn)
            if self._flavor == "cockroach":
                conn.execute(cockroach_unlock_sql(self.lock_table, self._lock_ids))
            else:
                for lock in reversed(self._lock_ids):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (lock,))
        except (psycopg.Error, DatabaseError):
            # A broken connection released PostgreSQL's session lock already.  A
            # CockroachDB lock row stays, as with golang-migrate; the next migrator's
            # timeout message says how to delete it.
            self.close()

    @contextmanager
    def _session(self) -> Iterator[int | None]:
        """Lock, make sure the state table exists, refuse a dirty database; yield the version."""
        with self._locked():
            self._ensure_table()
            version, dirty = self._read_state()
            if dirty:
                raise DirtyDatabase(-1 if version is None else version, where=self.where)
            yield version

    # -- operations ----------------------------------------------------------------------------

    def status(self) -> Status:
        """The version, dirty flag, pending migrations and whether the database is ahead."""
        version, dirty = self._read_state()
        return self._status(version, dirty)

    def _status(self, version: int | None, dirty: bool) -> Status:
        head = self.catalogue.head
        ahead = version is not None and (head is None or version > head)
        pending = tuple(v for v in self.catalogue.versions if version is None or v > version)
        return Status(version=version, dirty=dirty, pending=pending, ahead=ahead)

    def _target_version(self, version: int | None) -> None:
        if version is not None and version not in self.catalogue:
            raise UnknownVersion(
                version, folder=self.catalogue.folder, known=self.catalogue.versions
            )

    def _known_current(self, current: int | None) -> None:
        """The database's version must be one of ours to move from it."""
        if current is None or current in self.catalogue:
            return
        if self._status(current, False).ahead:
            raise DatabaseAhead(current, head=self.catalogue.head, where=self.where)
        raise DatabaseError(
            f"database is at version {current}, which is not a migration in "
            f"{self.catalogue.folder}",
            where=self.where,
            fix="restore the missing migration file, or `--force` the version the schema matches",
        )

    def up(self, *, strict: bool = False) -> tuple[int, ...]:
        """Apply every pending migration; returns the versions applied.

        A database ahead of this code is left alone (an old component in a
        rolling upgrade), unless ``strict``.
        """
        with self._session() as current:
            if current is not None and self._status(current, False).ahead:
                if strict:
                    raise DatabaseAhead(current, head=self.catalogue.head, where=self.where)
                return ()
            self._known_current(current)
            return self._apply_up(current, None)

    def up_to(self, version: int) -> tuple[int, ...]:
        """Apply pending migrations up to and including ``version``."""
        self._target_version(version)
        with self._session() as current:
            self._known_current(current)
            if current is not None and current > version:
                raise DatabaseError(
                    f"database is at version {current}, past {version}",
                    where=self.where,
                    fix=f"use --down-to {version} or --goto {version} to go back",
                )
            return self._apply_up(current, version)

    def down_to(self, version: int | None) -> tuple[int, ...]:
        """Undo migrations newer than ``version`` (None: all of them); returns versions undone."""
        self._target_version(version)
        with self._session() as current:
            self._known_current(current)
            if version is not None and (current is None or current < version):
                raise DatabaseError(
                    f"database is at version {'none' if current is None else current}, "
                    f"below {version}",
                    where=self.where,
                    fix=f"use --to {version} to go up",
                )
            return self._apply_down(current, version)

    def goto(self, version: int | None) -> tuple[int, ...]:
        """Move to ``version`` in whichever direction; returns the versions applied or undone."""
        self._target_version(version)
        with self._session() as current:
            self._known_current(current)
            if version is not None and (current is None or version > current):
                return self._apply_up(current, version)
            return self._apply_down(current, version)

    def force(self, version: int | None) -> None:
        """Set the version and clear the dirty flag without running anything (after a repair).

        Any version golang-migrate's ``force`` takes (>= -1, None being -1),
        with or without a file: forcing a version the folder lacks is how a
        database is aligned with migrations that are not there yet.
        """
        if version is not None and version < 0:
            raise UnknownVersion(
                version, folder=self.catalogue.folder, known=self.catalogue.versions
            )
        with self._locked():
            self._ensure_table()
            self._set_state(version, dirty=False)

    # -- running files -------------------------------------------------------------------------

    def _apply_up(self, current: int | None, last: int | None) -> tuple[int, ...]:
        steps = [
            m
            for m in self.catalogue
            if (current is None or m.version > current) and (last is None or m.version <= last)
        ]
        applied: list[int] = []
        for migration in steps:
            self._run(migration.up_path, migration.up_sql, migration.version)
            applied.append(migration.version)
            if self.progress is not None:
                self.progress(len(applied), len(steps), migration.version)
        return tuple(applied)

    def _apply_down(self, current: int | None, last: int | None) -> tuple[int, ...]:
        migrations = list(self.catalogue)
        steps = [
            (index, m)
            for index, m in reversed(list(enumerate(migrations)))
            if current is not None and m.version <= current and (last is None or m.version > last)
        ]
        # Check every down file before running any: nothing half-done for a missing file.
        for _, migration in steps:
            if migration.down_path is None or migration.down_sql is None:
                raise IrreversibleMigration(migration.version, file=migration.up_path)
        undone: list[int] = []
        for index, migration in steps:
            previous = migrations[index - 1].version if index > 0 else None
            assert migration.down_path is not None and migration.down_sql is not None
            self._run(migration.down_path, migration.down_sql, previous)
            undone.append(migration.version)
            if self.progress is not None:
                self.progress(len(undone), len(steps), migration.version)
        return tuple(undone)

    def _run(self, file: str, sql: str, new_version: int | None) -> None:
        if self._flavor == "postgres" and no_transaction_reason(sql) is None:
            self._run_in_transaction(file, sql, new_version)
        else:
            self._run_dirty_first(file, sql, new_version)

    def _script(self, conn: Connection, sql: str) -> ScriptOutcome:
        """Run ``sql`` as one query, cancelled after ``x-statement-timeout`` as golang-migrate's."""
        if self.statement_timeout is None:
            return run_script(conn, sql)
        timer = threading.Timer(self.statement_timeout, conn.cancel_safe)
        timer.start()
        try:
            return run_script(conn, sql)
        finally:
            timer.cancel()

    def _run_in_transaction(self, file: str, sql: str, new_version: int | None) -> None:
        """One round trip: the file and the version change commit together, or neither does."""
        conn = self._connection()
        prefix = "BEGIN;\n"
        script = f"{prefix}{sql}\n;\n{self._state_sql(new_version, False)};\nCOMMIT"
        outcome = self._script(conn, script)
        if outcome.error is None:
            return
        self._rollback(conn)
        statements = split_statements(sql)
        # Result 0 is BEGIN, so statement i of the file is result i + 1; past the file's
        # statements comes the version change, which a privilege error may refuse.
        index = outcome.completed - 1
        if statements is not None and index >= len(statements):
            raise self._state_error(outcome.error)
        raise self._failure(file, sql, index, outcome.error, len(prefix), False)

    def _run_dirty_first(self, file: str, sql: str, new_version: int | None) -> None:
        """golang-migrate's protocol: dirty, run the file, clean.

        Like golang-migrate, the file goes as one query (PostgreSQL runs a
        multi-statement query as one implicit transaction, where two
        ``CREATE INDEX CONCURRENTLY`` fail); ``-- transaction: per-statement``
        sends the statements one at a time instead.
        """
        conn = self._connection()
        self._set_state(new_version, dirty=True)
        statements = split_statements(sql)
        one_by_one = statements is not None and per_statement(sql)
        pieces = statements if one_by_one and statements is not None else (Statement(sql, 0, 1),)
        for index, statement in enumerate(pieces):
            if not statement.text.strip():
                continue
            outcome = self._script(conn, statement.text)
            if outcome.error is not None:
                self._rollback(conn)
                raise self._failure(
                    file,
                    sql,
                    index if one_by_one else outcome.completed,
                    outcome.error,
                    -statement.start,
                    True,
                )
        self._set_state(new_version, dirty=False)

    def _failure(
        self,
        file: str,
        sql: str,
        index: int,
        error: ServerError,
        prefix: int,
        dirty: bool,
    ) -> MigrationFailed:
        """Name the file, the line and the statement that failed."""
        statements = split_statements(sql)
        offset = error_offset(error.position, sql, prefix=prefix)
        statement: Statement | None = None
        if statements is not None and 0 <= index < len(statements):
            statement = statements[index]
        elif statements is not None and offset is not None:
            statement = next(
                (s for s in statements if s.start <= offset <= s.end),
                None,
            )
        if statement is not None:
            inside = offset is not None and statement.start <= offset <= statement.end
            line = line_at(sql, offset) if inside and offset is not None else statement.line
            text = statement.text
        elif offset is not None:
            line, text = line_at(sql, offset), sql.strip()
        elif statements is not None and index >= len(statements):
            line, text = None, "COMMIT (the version change after the file's statements)"
        else:
            line, text = None, sql.strip()
        return MigrationFailed(
            file=file,
            line=line,
            statement=text,
            server_message=error.text,
            hint=error.hint,
            dirty=dirty,
        )
