"""Several SQL statements in one round trip, with what each of them returned.

Why: a pair of the upgrade test loads seeds, runs checks and prepares the
old code's queries several times.  Sent one statement at a time, each in its
own savepoint, they cost more round trips than the migrations they test.
Sent as one simple query (``BEGIN; s1; s2; ...; COMMIT``), PostgreSQL runs
them in order in one transaction and answers with one result per statement.

This is a fast path only: callers use it to learn that everything passed,
and when something failed they run their statement-by-statement path, which
names the failing statement, its line and the server's message exactly as
before.  Statements that would change the batch's own transaction (``BEGIN``,
``COMMIT``, savepoints, two-phase commands) or stream data (``COPY``) never
take it (`batchable`).

Everything here uses psycopg's public ``pq`` layer on a psycopg connection in
autocommit mode, so psycopg's own state (its prepared statements) is left
alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq

from rollsafe._db import FAILED, results, send

#: A connection with rows as tuples.
Connection = psycopg.Connection[tuple[Any, ...]]

#: Statements that must not run inside the batch's transaction.
_UNBATCHABLE = re.compile(
    r"^(?:BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION|COPY)\b",
    re.IGNORECASE,
)
_BOOL_OID = 16


def batchable(statements: Iterable[str]) -> bool:
    """Whether ``statements`` (split, comments before each removed) can share one batch."""
    return not any(_UNBATCHABLE.match(statement.lstrip()) for statement in statements)


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch did: which statement failed (if one did), and what each one returned.

    ``first_columns`` has one entry per statement that completed: ``None``
    when it returned no row description (``INSERT``, ``SET``), otherwise the
    first column of each row it returned as ``True`` (a value), ``False`` (a
    boolean false) or ``None`` (NULL): what a check looks at.
    """

    failed: int | None
    first_columns: tuple[tuple[bool | None, ...] | None, ...]

    @property
    def ok(self) -> bool:
        return self.failed is None


def run_batch(conn: Connection, statements: Sequence[str], *, end: str) -> BatchOutcome:
    """Run ``statements`` in one transaction and one round trip; ``end`` is COMMIT or ROLLBACK.

    The server parses the whole text first, then runs the statements in order
    and stops at the first error; the transaction is then rolled back, so a
    failed batch leaves nothing behind.  Only statements split by PostgreSQL's
    scanner belong here: each is sent as written, followed by its own ``;``
    on a new line (so a trailing comment cannot swallow it).
    """
    text = "BEGIN;\n" + "".join(f"{statement}\n;\n" for statement in statements) + end
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    try:
        send(pgconn, text.encode(encoding))
        first_columns, error_at = _collect(pgconn)
    except KeyboardInterrupt:
        conn.cancel_safe()
        _collect(pgconn)
        _end_transaction(conn)
        raise
    if error_at is not None:
        _end_transaction(conn)
    # Result 0 is BEGIN; statement i is result i + 1.
    body = first_columns[1 : 1 + len(statements)]
    failed = None if error_at is None else max(error_at - 1, 0)
    return BatchOutcome(failed=failed, first_columns=tuple(body))


def _end_transaction(conn: Connection) -> None:
    """Roll back what a failed batch left open, so the connection is idle again."""
    if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        send(conn.pgconn, b"ROLLBACK")
        _collect(conn.pgconn)


def _first_column(result: pq.abc.PGresult) -> tuple[bool | None, ...] | None:
    if result.nfields == 0:
        return None
    is_bool = result.ftype(0) == _BOOL_OID
    values: list[bool | None] = []
    for row in range(result.ntuples):
        value = result.get_value(row, 0)
        if value is None:
            values.append(None)
        else:
            values.append(not (is_bool and bytes(value) == b"f"))
    return tuple(values)


def _collect(
    pgconn: pq.abc.PGconn,
) -> tuple[list[tuple[bool | None, ...] | None], int | None]:
    """Every result of the query in flight: first columns, and the index of a failure."""
    found: list[tuple[bool | None, ...] | None] = []
    error_at: int | None = None
    for result in results(pgconn, refuse_copy=b"COPY FROM STDIN has no data in a batch"):
        if result.status in FAILED:
            if error_at is None:
                error_at = len(found)
        elif error_at is None:
            found.append(
                _first_column(result) if result.status == pq.ExecStatus.TUPLES_OK else None
            )
    return found, error_at
