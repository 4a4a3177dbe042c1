"""golang-migrate's migration lock: its ids on both of its routes, a bounded wait, who holds it.

Why: a Go component migrating on start and ``rollsafe migrate`` must never
run at once, so rollsafe takes the very lock golang-migrate takes.
golang-migrate derives the id from the database name, and that name comes
from one of two routes: ``migrate.New(url)`` (and the CLI) use the URL's
path *with its leading slash* (``/app``), ``WithInstance`` asks
``current_database()`` (``app``).  The ids differ, so rollsafe holds both,
always in ascending order so two rollsafe processes cannot deadlock.

golang-migrate gives up after 15 s (``ErrLockTimeout``); so does rollsafe by
default, and after a second it says who holds the lock.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Iterable

import psycopg

from rollsafe._db import Connection, quote_ident
from rollsafe.errors import DatabaseError

#: golang-migrate's ``advisoryLockIDSalt`` (database/util.go).
LOCK_SALT = 1486364155
#: golang-migrate's ``DefaultLockTimeout`` (migrate.go), in seconds.
DEFAULT_LOCK_TIMEOUT = 15.0
#: How long to wait quietly before saying who holds the lock.
REPORT_AFTER = 1.0


def lock_id(database: str, *names: str) -> int:
    """golang-migrate's ``GenerateAdvisoryLockId(database, names...)``.

    The names are joined with NUL as ``names..., database`` (schema, table,
    database on PostgreSQL), CRC-32 (IEEE) is taken and multiplied by the
    salt in uint32 arithmetic.
    """
    parts = (*names, database) if names else (database,)
    data = b"\x00".join(part.encode() for part in parts)
    return (zlib.crc32(data) * LOCK_SALT) & 0xFFFFFFFF


def database_names(database: str, url_path: str | None) -> tuple[str, ...]:
    """The names golang-migrate may derive its lock id from, for one database.

    ``current_database()`` (``WithInstance``, or a URL without a path) and
    the URL path with its slash (``migrate.New``, the CLI): ``/<database>``
    for every ordinary URL, and the path rollsafe itself was given when it
    was given a URL that spells it another way.
    """
    names = {database, f"/{database}"}
    if url_path:
        names.add(url_path)
    return tuple(sorted(names))


def postgres_lock_ids(
    database: str, schema: str, table: str, *, url_path: str | None = None
) -> tuple[int, ...]:
    """The advisory lock ids of golang-migrate's postgres driver on both routes, ascending."""
    return tuple(
        sorted({lock_id(name, schema, table) for name in database_names(database, url_path)})
    )


def cockroach_lock_ids(database: str, *, url_path: str | None = None) -> tuple[int, ...]:
    """The lock-row ids of golang-migrate's cockroachdb driver on both routes, ascending.

    Its ``Lock`` calls ``GenerateAdvisoryLockId(c.config.DatabaseName)``, the
    database name alone (``database/cockroachdb/cockroachdb.go`` in
    golang-migrate/migrate v4), and inserts that id into ``schema_lock``.
    """
    return tuple(sorted({lock_id(name) for name in database_names(database, url_path)}))


def cockroach_lock_sql(lock_table: str, ids: Iterable[int]) -> str:
    """One INSERT taking every lock row at once (all or none: a held row fails it whole).

    golang-migrate inserts ``(lock_id) VALUES ($1)`` into the lock table and
    fails when the row exists; one multi-row INSERT keeps rollsafe's two
    routes atomic, so it never holds one row while waiting for the other.
    """
    values = ", ".join(f"({int(i)})" for i in ids)
    return f"INSERT INTO {quote_ident(lock_table)} (lock_id) VALUES {values}"


def cockroach_unlock_sql(lock_table: str, ids: Iterable[int]) -> str:
    """Release the lock rows `cockroach_lock_sql` took."""
    listed = ", ".join(str(int(i)) for i in ids)
    return f"DELETE FROM {quote_ident(lock_table)} WHERE lock_id IN ({listed})"


def take_cockroach_locks(
    conn: Connection, lock_table: str, ids: Iterable[int], *, timeout: float, where: str
) -> None:
    """Take golang-migrate's CockroachDB lock rows, retrying up to ``timeout`` seconds.

    golang-migrate fails at once when a row exists; waiting a while, as on
    PostgreSQL, serves a release engineer better.  A row left by a crashed
    migrator stays until deleted: the timeout error says how.
    """
    ids = tuple(ids)
    try:
        table = quote_ident(lock_table)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (lock_id INT NOT NULL PRIMARY KEY)")
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot create the lock table: {exc}", where=where, fix="check the role's privileges"
        ) from None
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        try:
            conn.execute(cockroach_lock_sql(lock_table, ids))
            return
        except psycopg.errors.UniqueViolation:
            if time.monotonic() > deadline:
                raise DatabaseError(
                    f"another migrator has held the lock for over {timeout:g} s",
                    where=where,
                    fix=f"wait for it; if none runs, {cockroach_unlock_sql(lock_table, ids)}",
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        except psycopg.Error as exc:
            raise _lock_error(exc, where) from None


_HOLDER = """
SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''),
       coalesce(host(a.client_addr), 'local socket'), coalesce(a.state, ''),
       coalesce(to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), ''),
       coalesce(a.query, '')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid::bigint = %s AND l.objid::bigint = %s
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.pid <> pg_backend_pid()
"""


def lock_holder(conn: Connection, lock: int) -> str:
    """Who holds advisory lock ``lock``, from ``pg_locks`` and ``pg_stat_activity``, as words."""
    try:
        row = conn.execute(_HOLDER, (lock >> 32, lock & 0xFFFFFFFF)).fetchone()
    except psycopg.Error:
        return "another session (pg_locks is not readable)"
    if row is None:
        return "another session (it has just released it)"
    pid, user, application, client, state, since, query = row
    words = [f"pid {pid}", f"user {user or '?'}"]
    words.append(f"application '{application}'" if application else "no application_name")
    words.append(f"from {client}")
    if since:
        words.append(f"in a transaction since {since} UTC")
    first = " ".join(str(query).split())[:60]
    if first:
        words.append(f"{state or 'last'} query: {first}")
    return ", ".join(words)


def take_advisory_locks(
    conn: Connection,
    ids: Iterable[int],
    *,
    timeout: float,
    where: str,
    notify: Callable[[str], None] | None = None,
) -> None:
    """Take each advisory lock in order, waiting ``timeout`` seconds in all, then fail.

    The wait is PostgreSQL's own queue (``lock_timeout`` bounds it), so a
    migrator that waits gets the lock as soon as it is free, in turn.  After
    `REPORT_AFTER` seconds ``notify`` hears who holds it; the timeout error
    names the holder too.  On failure the locks already taken are released.
    """
    row = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
    previous = str(row[0]) if row else "0"
    deadline = time.monotonic() + max(timeout, 0.0)
    taken: list[int] = []
    try:
        for lock in ids:
            _take(conn, lock, deadline, timeout=timeout, where=where, notify=notify)
            taken.append(lock)
    except BaseException:
        for lock in taken:
            _quietly(conn, "SELECT pg_advisory_unlock(%s)", lock)
        raise
    finally:
        _quietly(conn, "SELECT set_config('lock_timeout', %s, false)", previous)


def _take(
    conn: Connection,
    lock: int,
    deadline: float,
    *,
    timeout: float,
    where: str,
    notify: Callable[[str], None] | None,
) -> None:
    reported = False
    started = time.monotonic()
    while True:
        remaining = deadline - time.monotonic()
        quiet = REPORT_AFTER - (time.monotonic() - started)
        wait = remaining if reported else min(remaining, quiet)
        # lock_timeout 0 would mean "forever": the shortest real wait is 1 ms.
        limit = f"{max(int(wait * 1000), 1)}ms"
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (limit,))
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (lock,))
            return
        except psycopg.errors.LockNotAvailable:
            holder = lock_holder(conn, lock)
        except psycopg.Error as exc:
            raise _lock_error(exc, where) from None
        if time.monotonic() >= deadline:
            raise DatabaseError(
                f"timeout: the migration lock (advisory lock {lock}) is still held after "
                f"{timeout:g} s, by {holder}",
                where=where,
                fix="wait for that migration to finish, or pass a longer --lock-timeout",
            )
        if not reported:
            reported = True
            if notify is not None:
                notify(f"waiting for the migration lock (advisory lock {lock}), held by {holder}")


def _lock_error(exc: psycopg.Error, where: str) -> DatabaseError:
    return DatabaseError(
        f"cannot take the migration lock: {exc}",
        where=where,
        fix="check the database's log and permissions",
    )


def _quietly(conn: Connection, sql: str, value: object) -> None:
    """Best effort on the way out: a broken connection released its session locks anyway."""
    if conn.closed:
        return
    with contextlib.suppress(psycopg.Error):
        conn.execute(sql, (value,))
