"""Seed rows generated from the catalog, on a real PostgreSQL.

Each type family gets a value the server accepts; keys stay distinct;
foreign keys find their parents (a chain, a self reference, a cycle); a
check is met with the literals it names, and a check no value can meet
skips its table with the server's reason.  The same schema gives the same
rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from rollsafe import _db
from rollsafe.engines import Database
from rollsafe.pairs._generate import Column, Constraint, Table, dependency_order, rows_for
from rollsafe.pairs._seeding import GeneratedSeeds, fill, read_tables

pytestmark = pytest.mark.db

Connection = psycopg.Connection[tuple[Any, ...]]

EVERY_TYPE = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE DOMAIN code AS varchar(4) NOT NULL;
CREATE TABLE everything (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    i2 smallint NOT NULL, i4 integer NOT NULL, i8 bigint NOT NULL,
    n numeric(6, 2) NOT NULL, f double precision NOT NULL, r real,
    t text NOT NULL, v varchar(5) NOT NULL UNIQUE, c char(3) NOT NULL,
    u uuid NOT NULL UNIQUE, b boolean NOT NULL,
    ts timestamp NOT NULL, tstz timestamptz NOT NULL, d date NOT NULL, tm time NOT NULL,
    iv interval NOT NULL,
    j json NOT NULL, jb jsonb NOT NULL, raw bytea NOT NULL,
    ip inet NOT NULL, net cidr NOT NULL, mac macaddr,
    ints integer[] NOT NULL, texts text[] NOT NULL, moods mood[] NOT NULL,
    m mood NOT NULL, p positive NOT NULL, k code,
    doubled integer GENERATED ALWAYS AS (i4 * 2) STORED,
    s serial,
    with_default text NOT NULL DEFAULT 'dflt',
    note text
);
"""


@pytest.fixture
def conn(database: Database) -> Iterator[Connection]:
    connection = _db.connect(_db.parse_target(database.dsn))
    try:
        yield connection
    finally:
        connection.close()


def test_every_type_family_gets_values_the_server_accepts(conn: Connection) -> None:
    conn.execute(EVERY_TYPE)
    (table,) = read_tables(conn, None)
    filled = fill(conn, 1, [table], count=3, first=0)
    assert filled.skipped == ()
    assert filled.rows == 3
    rows = conn.execute(
        "SELECT id, v, u, m::text, with_default, note, r, doubled, s, p, k, moods::text[], jb "
        "FROM everything ORDER BY id"
    ).fetchall()
    assert len(rows) == 3
    # Identity, generated and serial columns are the server's.
    assert [row[0] for row in rows] == [1, 2, 3]
    assert all(row[7] is not None and row[8] is not None for row in rows)
    # Keys distinct; enums by label; domains by their base type (and their checks).
    assert len({row[1] for row in rows}) == 3 and all(len(row[1]) <= 5 for row in rows)
    assert len({row[2] for row in rows}) == 3
    assert {row[3] for row in rows} <= {"sad", "ok", "happy"}
    assert all(row[9] > 0 for row in rows)
    assert all(row[10] is not None and len(row[10]) <= 4 for row in rows)  # NOT NULL domain
    assert all(set(row[11]) <= {"sad", "ok", "happy"} for row in rows)
    # Row 1 takes the defaults, row 2 NULL in nullable columns.
    assert [row[4] for row in rows][1] == "dflt"
    assert rows[2][5] is None and rows[2][6] is None
    assert rows[0][5] is not None
    assert rows[0][12] == {"jb": 0, "generated": True}


def test_the_same_schema_gives_the_same_rows(pg_server: Any) -> None:
    dumps = []
    for _ in range(2):
        db = pg_server.create_database()
        try:
            connection = _db.connect(_db.parse_target(db.dsn))
            try:
                connection.execute(EVERY_TYPE.replace("s serial,", ""))
                filled = fill(connection, 1, read_tables(connection, None), count=3, first=6)
                statements = [i.sql for t in filled.tables for i in t.inserts]
                data = connection.execute(
                    "SELECT to_jsonb(e) - 'with_default' FROM everything AS e ORDER BY id"
                ).fetchall()
                dumps.append((statements, data))
            finally:
                connection.close()
        finally:
            pg_server.drop(db)
    assert dumps[0] == dumps[1]
    assert dumps[0][0][0].startswith("INSERT INTO public.everything (i2, i4, i8, n, f, r, t, v,")


def test_foreign_key_chains_a_self_reference_and_a_cycle(conn: Connection) -> None:
    conn.execute(
        """
        CREATE TABLE a (id uuid PRIMARY KEY, name text NOT NULL);
        CREATE TABLE b (code text PRIMARY KEY, a_id uuid NOT NULL REFERENCES a);
        CREATE TABLE c (id bigserial PRIMARY KEY, b_code text NOT NULL REFERENCES b,
                        parent_id bigint REFERENCES c);
        CREATE TABLE nodes (id int PRIMARY KEY, parent int NOT NULL REFERENCES nodes);
        CREATE TABLE x (id int PRIMARY KEY, y_id int);
        CREATE TABLE y (id int PRIMARY KEY, x_id int NOT NULL REFERENCES x);
        ALTER TABLE x ADD FOREIGN KEY (y_id) REFERENCES y;
        """
    )
    tables = read_tables(conn, None)
    names = [t.name for t in dependency_order(tables)]
    assert names.index("a") < names.index("b") < names.index("c")
    filled = fill(conn, 1, tables, count=3, first=0)
    assert filled.skipped == ()
    counts: dict[str, int] = dict(
        conn.execute(
            "SELECT 'a', count(*) FROM a UNION ALL SELECT 'b', count(*) FROM b "
            "UNION ALL SELECT 'c', count(*) FROM c UNION ALL SELECT 'nodes', count(*) FROM nodes "
            "UNION ALL SELECT 'x', count(*) FROM x UNION ALL SELECT 'y', count(*) FROM y"
        ).fetchall()
    )
    assert counts == {"a": 3, "b": 3, "c": 3, "nodes": 3, "x": 3, "y": 3}
    # Children point at generated parents; the chain of c's self reference is followed.
    assert conn.execute("SELECT count(*) FROM c WHERE parent_id IS NOT NULL").fetchone() == (2,)
    # A NOT NULL self reference: the first row points at itself, the next at the one before.
    assert conn.execute("SELECT id, parent FROM nodes ORDER BY id").fetchall() == [
        (1, 1),
        (2, 1),
        (3, 2),
    ]
    # The cycle: x comes first (its key into y is nullable), so x.y_id stays NULL.
    assert conn.execute("SELECT count(*) FROM x WHERE y_id IS NULL").fetchone() == (3,)


def test_checks_are_met_or_the_table_is_skipped_with_the_reason(conn: Connection) -> None:
    conn.execute(
        """
        CREATE TABLE rules (
            id int PRIMARY KEY,
            status text NOT NULL CHECK (status IN ('draft', 'live')),
            percent double precision NOT NULL CHECK (percent BETWEEN 0 AND 100),
            below int NOT NULL CHECK (below < 50)
        );
        CREATE TABLE impossible (id int PRIMARY KEY, a int NOT NULL, CHECK (a <> a));
        CREATE TABLE child (id int PRIMARY KEY, rule_id int NOT NULL REFERENCES rules);
        """
    )
    filled = fill(conn, 1, read_tables(conn, None), count=3, first=0)
    assert {t.table.name for t in filled.tables} == {"child", "rules"}
    assert conn.execute("SELECT array_agg(DISTINCT status) FROM rules").fetchone() == (
        ["draft", "live"],
    )
    (skipped,) = filled.skipped
    assert skipped.table == "public.impossible"
    assert 'violates check constraint "impossible_a_check"' in skipped.reason
    assert skipped.reason.endswith("(after 5 sets of values)")
    assert skipped.statement.startswith("INSERT INTO public.impossible (id, a) VALUES")
    assert conn.execute("SELECT count(*) FROM impossible").fetchone() == (0,)


def test_a_row_clashing_with_a_hand_written_one_is_tried_again(conn: Connection) -> None:
    conn.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)")
    filled = fill(conn, 1, read_tables(conn, None), count=3, first=0)
    assert filled.skipped == ()
    assert filled.tables[0].attempts == {"id": 1}
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (6,)


def test_generated_seeds_fill_named_tables_and_replay_them(conn: Connection) -> None:
    conn.execute(
        "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);"
        "CREATE TABLE other (id int PRIMARY KEY);"
        "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty bool)"
    )
    seeds = GeneratedSeeds((1, 2), rows=2, exclude=("schema_migrations",))
    filled = seeds.fill(conn, 1, ["items"])
    assert [t.table.name for t in filled.tables] == ["items"]
    assert seeds.fill(conn, 2, []).tables == ()
    # Old code's writes: the same columns, new serial numbers (the unique name holds).
    conn.execute(
        "ALTER TABLE items ADD COLUMN size int NOT NULL DEFAULT 0;"
        "ALTER TABLE items ALTER COLUMN size DROP DEFAULT"
    )
    tables, rows, failures = seeds.replay(conn, 1, frozenset({"items"}))
    assert (tables, rows) == (0, 0)
    (failure,) = failures
    assert failure.statement == "INSERT INTO public.items (name) VALUES ('name-2')"
    assert 'null value in column "size"' in failure.message
    assert seeds.fill(conn, 2, None).skipped == ()  # every table, the state table excepted
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_rows_for_is_pure_and_names_what_it_cannot_make() -> None:
    point = Column("where", "point", "point", "G", not_null=True)
    table = Table("public", "places", (Column("id", "integer", "int4", "N", not_null=True), point))
    assert rows_for(table, count=1, first=0) == (
        "no value can be generated for column where (point)"
    )
    keyed = Table(
        "public",
        "t",
        (Column("id", "integer", "int4", "N", not_null=True),),
        (Constraint("p", ("id",)),),
    )
    first = rows_for(keyed, count=3, first=0)
    again = rows_for(keyed, count=3, first=0)
    assert first == again and not isinstance(first, str)
    assert [i.sql for i in first.inserts] == [
        "INSERT INTO public.t (id) VALUES (1)",
        "INSERT INTO public.t (id) VALUES (2)",
        "INSERT INTO public.t (id) VALUES (3)",
    ]
