"""psycopg adapter: connections, DSN masking, and scripts run with a per-statement outcome.

Why: the migrator and the engines reach the database only through here, so
psycopg's exceptions become `DatabaseError` in one place, a password never
reaches a message, and a migration file can be sent as one multi-statement
query (one round trip, like ``psql`` reading a file) while still learning
exactly which statement failed: libpq returns one result per statement of a
simple query, so the number of results before the error is the index of the
failing statement.  Everything here uses psycopg's public ``pq`` layer.
"""

from __future__ import annotations

import re
import select
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from rollsafe.errors import DatabaseError

#: Which SQL dialect answers: decides transactions, locking and snapshots.
Flavor = Literal["postgres", "cockroach"]
#: A connection with rows as tuples (the only kind the package opens).
Connection = psycopg.Connection[tuple[Any, ...]]

#: golang-migrate's URL schemes for CockroachDB; libpq only knows ``postgres(ql)``.
COCKROACH_SCHEMES = ("cockroach", "cockroachdb", "crdb-postgres")
MASK = "***"

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: The password runs from the user's colon to the *last* ``@`` of the authority, so an
#: unencoded ``@``, ``:``, ``/`` or ``%`` in it is masked too (over-masking is safe).
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s?#]*):[^\s?#]*@")
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&]+)", re.I)


@dataclass(frozen=True)
class Target:
    """A DSN split into what libpq gets and golang-migrate's ``x-`` options.

    golang-migrate users keep URLs such as
    ``postgres://...?x-migrations-table=deploy_versions``; libpq rejects the
    ``x-`` parameters, so they are taken out here and honoured by the
    migrator instead.
    """

    dsn: str
    shown: str
    options: Mapping[str, str] = field(default_factory=dict)
    #: The URL's path as golang-migrate reads it (``/app``), None for a key=value DSN.
    url_path: str | None = None


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***`` (URL and ``key=value`` forms)."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", dsn)
    return _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", masked)


def _password_of(dsn: str) -> str | None:
    try:
        value = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        return None
    return str(value) if value else None


def scrub(text: str, dsn: str) -> str:
    """``text`` with every trace of the DSN's password removed.

    libpq's messages do not quote passwords, but a DSN it cannot parse is
    echoed back; scrubbing every message is cheaper than proving that.
    """
    password = _password_of(dsn)
    text = mask_dsn(text)
    if password:
        for form in {password, quote(password, safe="")}:
            text = text.replace(form, MASK)
    return text


def _libpq_keywords() -> frozenset[str]:
    """The connection parameters libpq knows (the rest are server settings to lib/pq)."""
    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())


def _setting(key: str, value: str) -> str:
    """``-c key=value`` for libpq's ``options``, spaces and backslashes escaped as libpq wants."""
    escaped = f"{key}={value}".replace("\\", "\\\\").replace(" ", "\\ ")
    return f"-c {escaped}"


def _refuse_unencoded_at(url: str) -> None:
    """Refuse a URL whose user or password holds an unencoded ``@`` (or ``/`` before its ``@``).

    libpq splits the authority at the first ``@`` and the path at the first
    ``/``, so ``postgresql://app:p@ss@host/db`` would reach a host named
    ``ss@host`` and echo that name, a piece of the password, in its error.
    Nothing can connect with such a URL; saying how to encode it is the help.
    """
    head = url.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]
    if "@" not in head:
        return
    userinfo = head[: head.rindex("@")]
    if "@" in userinfo or "/" in userinfo:
        raise DatabaseError(
            "the URL's user or password holds an unencoded '@' or '/'",
            where=mask_dsn(url),
            fix="percent-encode them in the URL: '@' as %40, '/' as %2F (':' in a password as %3A)",
        )


def parse_target(dsn: str) -> Target:
    """Accept libpq DSNs and golang-migrate URLs (``cockroach://``, ``x-*`` parameters).

    A URL parameter libpq does not know (``search_path=app``) is, to lib/pq
    and so to golang-migrate, a server setting sent at connection start; it
    becomes ``-c key=value`` in libpq's ``options`` here, to the same effect.
    """
    dsn = dsn.strip()
    if not _URL.match(dsn):
        return Target(dsn=dsn, shown=mask_dsn(dsn))
    _refuse_unencoded_at(dsn)
    parts = urlsplit(dsn)
    scheme = "postgresql" if parts.scheme in COCKROACH_SCHEMES else parts.scheme
    options: dict[str, str] = {}
    kept: list[str] = []
    settings: list[str] = []
    known = _libpq_keywords()
    # Split by hand so the parameters kept stay byte for byte as the user wrote them.
    for item in parts.query.split("&") if parts.query else []:
        pairs = parse_qsl(item, keep_blank_values=True)
        if pairs and pairs[0][0].startswith("x-"):
            options[pairs[0][0]] = pairs[0][1]
        elif pairs and pairs[0][0] == "options":
            settings.insert(0, pairs[0][1])
        elif pairs and pairs[0][0] not in known:
            settings.append(_setting(*pairs[0]))
        else:
            kept.append(item)
    if settings:
        kept.append("options=" + quote(" ".join(settings), safe=""))
    # Not urlunsplit: it drops the empty authority of `postgresql:///db?host=/sock`, and
    # libpq does not read `postgresql:/db`.
    query = "&".join(kept)
    clean = f"{scheme}://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")
    clean += f"#{parts.fragment}" if parts.fragment else ""
    path = unquote(parts.path)
    return Target(dsn=clean, shown=mask_dsn(clean), options=options, url_path=path)


def connect(target: Target, *, application_name: str = "rollsafe") -> Connection:
    """An autocommit connection; a failure is one line naming the (masked) DSN.

    Autocommit because every transaction is spelled out in the SQL sent
    (``BEGIN ... COMMIT`` around a migration), so no hidden ``BEGIN`` costs a
    round trip or wraps a statement that must run outside a transaction.
    """
    settings: dict[str, Any] = {"autocommit": True}
    try:
        given = conninfo_to_dict(target.dsn)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"bad DSN: {scrub(str(exc), target.dsn)}",
            where=target.shown,
            fix="give a postgresql:// URL or a libpq key=value string",
        ) from None
    if "connect_timeout" not in given:
        settings["connect_timeout"] = 10
    if "application_name" not in given:
        settings["application_name"] = application_name
    try:
        return psycopg.connect(target.dsn, **settings)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot connect: {scrub(str(exc), target.dsn)}",
            where=target.shown,
            fix="check the DSN (--dsn or ROLLSAFE_DATABASE_URL) and that the server is running",
        ) from None


def flavor_of(conn: Connection) -> Flavor:
    """CockroachDB speaks the PostgreSQL protocol; its version string tells it apart."""
    row = conn.execute("SELECT version()").fetchone()
    return "cockroach" if row and "CockroachDB" in str(row[0]) else "postgres"


def quote_ident(name: str) -> str:
    """Quote an identifier the way ``pq.QuoteIdentifier`` does in golang-migrate."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class ServerError:
    """What the server said about a failed statement."""

    message: str
    sqlstate: str | None = None
    detail: str | None = None
    hint: str | None = None
    position: int | None = None  # 1-based character offset in the query text sent

    @property
    def text(self) -> str:
        """The message with its detail, as one line."""
        text = self.message if not self.detail else f"{self.message} ({self.detail})"
        return " ".join(text.split())

    @classmethod
    def from_diag(cls, diag: psycopg.errors.Diagnostic) -> ServerError:
        """From a psycopg exception's diagnostic."""
        position = diag.statement_position
        return cls(
            message=diag.message_primary or "unknown error",
            sqlstate=diag.sqlstate,
            detail=diag.message_detail,
            hint=diag.message_hint,
            position=int(position) if position and position.isdigit() else None,
        )


@dataclass(frozen=True)
class ScriptOutcome:
    """How far a multi-statement query got: ``completed`` statements, then ``error``."""

    completed: int
    error: ServerError | None


def _field(result: pq.abc.PGresult, name: pq.DiagnosticField, encoding: str) -> str | None:
    raw = result.error_field(name)
    return raw.decode(encoding, "replace") if raw is not None else None


def _error_of(result: pq.abc.PGresult, encoding: str) -> ServerError:
    position = _field(result, pq.DiagnosticField.STATEMENT_POSITION, encoding)
    message = _field(result, pq.DiagnosticField.MESSAGE_PRIMARY, encoding)
    if message is None:
        message = result.error_message.decode(encoding, "replace").strip() or "unknown error"
    return ServerError(
        message=message,
        sqlstate=_field(result, pq.DiagnosticField.SQLSTATE, encoding),
        detail=_field(result, pq.DiagnosticField.MESSAGE_DETAIL, encoding),
        hint=_field(result, pq.DiagnosticField.MESSAGE_HINT, encoding),
        position=int(position) if position and position.isdigit() else None,
    )


def _wait(pgconn: pq.abc.PGconn, *, write: bool) -> None:
    """Block on the socket with the GIL released (other threads and Ctrl-C keep working)."""
    sock = pgconn.socket
    if write:
        select.select([sock], [sock], [])
    else:
        select.select([sock], [], [])


def send(pgconn: pq.abc.PGconn, query: bytes) -> None:
    """Send one simple query (any number of statements) without waiting for results."""
    pgconn.send_query(query)
    while pgconn.flush():
        _wait(pgconn, write=True)


def results(pgconn: pq.abc.PGconn, *, refuse_copy: bytes) -> Iterator[pq.abc.PGresult]:
    """Every result of the query in flight, one per statement, waiting on the socket.

    COPY has no data stream here: ``COPY FROM STDIN`` is ended with
    ``refuse_copy`` as its error (the server then reports it like any failed
    statement) and ``COPY TO STDOUT`` is drained; neither is yielded.
    """
    while True:
        while pgconn.is_busy():
            _wait(pgconn, write=False)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            return
        if result.status == pq.ExecStatus.COPY_IN:
            pgconn.put_copy_end(refuse_copy)
            while pgconn.flush():
                _wait(pgconn, write=True)
        elif result.status == pq.ExecStatus.COPY_OUT:
            while True:
                while pgconn.is_busy():
                    _wait(pgconn, write=False)
                    pgconn.consume_input()
                size, _ = pgconn.get_copy_data(1)
                if size == 0:
                    _wait(pgconn, write=False)
                    pgconn.consume_input()
                elif size < 0:
                    break
        else:
            yield result


#: Statuses of a statement that failed.
FAILED = (pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.BAD_RESPONSE)


def _collect(pgconn: pq.abc.PGconn, encoding: str) -> ScriptOutcome:
    completed = 0
    error: ServerError | None = None
    for result in results(
        pgconn, refuse_copy=b"COPY FROM STDIN is not supported in a migration file"
    ):
        if result.status in FAILED:
            if error is None:
                error = _error_of(result, encoding)
        elif error is None:
            completed += 1
    return ScriptOutcome(completed=completed, error=error)


def run_script(conn: Connection, sql: str) -> ScriptOutcome:
    """Send ``sql`` (any number of statements) as one simple query; never raises on SQL errors.

    The server parses the whole text first (a syntax error runs nothing and
    carries a position), then runs statements in order and stops at the
    first error.  Ctrl-C cancels the query on the server before it propagates.
    """
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    try:
        send(pgconn, sql.encode(encoding))
        return _collect(pgconn, encoding)
    except KeyboardInterrupt:
        conn.cancel_safe()
        _collect(pgconn, encoding)
        raise
    except psycopg.Error as exc:
        message = str(exc)
        password = conn.info.password
        if password:
            message = message.replace(password, MASK)
        raise DatabaseError(
            f"lost the connection to the database: {message}",
            fix="check the server's log; the migration state may be dirty",
        ) from None
