"""One round trip for many statements, on a real PostgreSQL.

Seeds, checks and old queries take this fast path only to learn that all is
well; a wrong answer here would let a failing check pass (the slow path that
names failures never runs), so what each statement returned and where a
batch stopped must be exact, and a failed batch must leave nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from rollsafe.engines import Database
from rollsafe.pairs._batch import batchable, run_batch

pytestmark = pytest.mark.db

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def conn(database: Database) -> Iterator[Conn]:
    with psycopg.connect(database.dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE t (id int PRIMARY KEY, flag boolean, note text)")
        yield connection


def count(conn: Conn) -> object:
    row = conn.execute("SELECT count(*) FROM t").fetchone()
    return row[0] if row else None


def test_first_columns_tell_false_and_null_from_values(conn: Conn) -> None:
    conn.execute("INSERT INTO t VALUES (1, true, 'f'), (2, false, NULL)")
    outcome = run_batch(
        conn,
        [
            "SELECT flag FROM t ORDER BY id",
            "SELECT note FROM t ORDER BY id",  # text 'f' is a value, not false
            "SELECT 1 WHERE false",
            "UPDATE t SET note = 'x'",
            "SELECT",
        ],
        end="ROLLBACK",
    )
    assert outcome.ok
    assert outcome.first_columns == ((True, False), (True, None), (), None, None)
    assert conn.execute("SELECT note FROM t WHERE id = 1").fetchone() == ("f",)  # rolled back


def test_a_batch_commits_or_leaves_nothing(conn: Conn) -> None:
    assert run_batch(
        conn, ["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"], end="COMMIT"
    ).ok
    assert count(conn) == 2
    failed = run_batch(
        conn,
        ["INSERT INTO t VALUES (3)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (4)"],
        end="COMMIT",
    )
    assert failed.failed == 1  # the duplicate key, after one statement that completed
    assert len(failed.first_columns) == 1
    assert count(conn) == 2
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_syntax_error_runs_nothing(conn: Conn) -> None:
    failed = run_batch(conn, ["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES ("], end="COMMIT")
    assert failed.failed == 0
    assert count(conn) == 0
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_trailing_comment_cannot_swallow_the_end(conn: Conn) -> None:
    assert run_batch(conn, ["INSERT INTO t VALUES (1) -- the first row"], end="COMMIT").ok
    assert count(conn) == 1


@pytest.mark.parametrize(
    "statement",
    ["COMMIT", "begin", "ROLLBACK", "SAVEPOINT a", "release a", "END", "COPY t FROM STDIN"],
)
def test_statements_that_would_end_the_batch_stay_out(statement: str) -> None:
    assert not batchable(["SELECT 1", statement])
    assert batchable(["SELECT 1", "INSERT INTO commits VALUES (1)"])
