"""sqlc-style query files: parsing in memory, preparing against a real PostgreSQL.

A live step passes only if every query of the old code still prepares on
the new schema, so the parser must find every query (with the line a
failure points at) and the preparation must report each broken query by
name without one failure hiding the next.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from rollsafe.engines import Database
from rollsafe.errors import QueryFileError
from rollsafe.pairs._queries import (
    parse_query_file,
    parse_query_files,
    prepare_queries,
    to_postgres,
)

FILE = """\
-- Queries of the machines service.
-- name: CreateMachine :one
INSERT INTO machines (hostname, region)
VALUES ($1, $2)
RETURNING id;

-- name: ListMachines :many
-- Every machine, by name.
SELECT id, hostname, region
FROM machines
ORDER BY hostname;

/* name: DeleteMachine :exec */
DELETE FROM machines WHERE id = @id;
"""


def test_every_query_with_its_name_kind_and_first_line() -> None:
    queries = parse_query_file("queries/machines.sql", FILE)
    assert [(q.name, q.kind, q.line) for q in queries] == [
        ("CreateMachine", "one", 3),
        ("ListMachines", "many", 9),
        ("DeleteMachine", "exec", 14),
    ]
    assert queries[1].text == "SELECT id, hostname, region\nFROM machines\nORDER BY hostname;"
    assert queries[2].sql == "DELETE FROM machines WHERE id = $1;"
    assert queries[0].where == "queries/machines.sql:3"


def test_files_are_read_in_path_order() -> None:
    queries = parse_query_files(
        {"q/b.sql": "-- name: B :exec\nSELECT 2;\n", "q/a.sql": "-- name: A :exec\nSELECT 1;\n"}
    )
    assert [q.name for q in queries] == ["A", "B"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("SELECT 1;\n-- name: A :one\nSELECT 1;\n", 1, "SQL before the first `-- name:` header"),
        ("-- name: A\nSELECT 1;\n", 1, "query A has no kind"),
        ("-- name: A :ones\nSELECT 1;\n", 1, "query A has an unknown kind `:ones`"),
        ("-- name: A :one\n\n-- name: B :one\nSELECT 1;\n", 1, "query A has no SQL"),
    ],
)
def test_malformed_files_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(QueryFileError) as raised:
        parse_query_file("queries/x.sql", text)
    assert raised.value.line == line
    assert raised.value.file == "queries/x.sql"
    assert message in raised.value.what


def test_named_parameters_become_numbered_ones() -> None:
    text = (
        "SELECT * FROM t WHERE a = @a AND b = sqlc.arg(b) AND c = sqlc.narg('a') "
        "AND d = $1 AND tags @> $2 AND note = '@not_a_param' -- @nor_this\n"
        "AND sqlc.embed(t) IS NOT NULL AND body = $$ @x $$"
    )
    assert to_postgres(text) == (
        "SELECT * FROM t WHERE a = $3 AND b = $4 AND c = $3 "
        "AND d = $1 AND tags @> $2 AND note = '@not_a_param' -- @nor_this\n"
        "AND t.* IS NOT NULL AND body = $$ @x $$"
    )


@pytest.fixture
def conn(database: Database) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(database.dsn, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE machines (id bigserial PRIMARY KEY, hostname text NOT NULL UNIQUE)"
        )
        yield connection


@pytest.mark.db
def test_queries_that_no_longer_prepare_are_each_named(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    queries = parse_query_file("queries/machines.sql", FILE)
    failures = prepare_queries(conn, queries)
    # region is gone: both queries that use it fail, the DELETE still prepares.
    assert [f.query.name for f in failures] == ["CreateMachine", "ListMachines"]
    first = failures[0]
    assert first.error.message == 'column "region" of relation "machines" does not exist'
    assert first.error.sqlstate == "42703"
    assert first.line == 3  # the position the server gives, mapped into the file
    assert failures[1].line == 9
    assert failures[1].sentence() == (
        'query ListMachines (queries/machines.sql:9) does not prepare: column "region" '
        "does not exist"
    )


@pytest.mark.db
def test_preparing_leaves_nothing_behind(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    text = "-- name: A :one\nSELECT id FROM machines WHERE id = $1;\n"
    queries = parse_query_files({"q.sql": text})
    assert prepare_queries(conn, queries) == ()
    assert prepare_queries(conn, queries) == ()  # the statement name is free again
    left = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert left == (0,)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.db
def test_a_query_text_with_two_statements_is_only_prepared(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    conn.execute("CREATE SEQUENCE ticks")
    text = (
        "-- name: Fine :one\nSELECT id FROM machines WHERE id = $1;\n\n"
        "-- name: Sneaky :exec\nSELECT 1; SELECT nextval('ticks');\n"
    )
    failures = prepare_queries(conn, parse_query_files({"q.sql": text}))
    assert [f.query.name for f in failures] == ["Sneaky"]
    assert "multiple commands" in failures[0].error.message
    # The second statement never ran (a sequence does not roll back).
    assert conn.execute("SELECT last_value, is_called FROM ticks").fetchone() == (1, False)


@pytest.mark.db
def test_queries_after_a_refused_one_are_still_prepared(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    text = "".join(
        f"-- name: Q{i} :one\nSELECT {column} FROM machines;\n\n"
        for i, column in enumerate(["id", "nope", "hostname", "gone", "id"])
    )
    failures = prepare_queries(conn, parse_query_files({"q.sql": text}))
    assert [(f.query.name, f.line) for f in failures] == [("Q1", 5), ("Q3", 11)]
    left = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert left == (0,)
