"""Schema snapshots read from a real PostgreSQL catalog, and the diff a reviewer reads.

The snapshot is what step 6 of the pair test compares, so each test makes a
real database differ in one way a broken down migration would leave it, and
checks that the diff names exactly that, and that harmless differences
(column order) are not reported.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from rollsafe.engines import Database
from rollsafe.pairs import _catalog
from rollsafe.pairs._schema import (
    SchemaReader,
    SchemaSnapshot,
    Scope,
    count_rows,
    diff_schemas,
    render_diff,
    scope_of,
    snapshot_schema,
)

pytestmark = pytest.mark.db

SCHEMA = """
CREATE TYPE state AS ENUM ('queued', 'running', 'done');
CREATE DOMAIN hostname AS text NOT NULL CHECK (VALUE <> '');
CREATE TABLE machines (
    id bigserial PRIMARY KEY,
    name hostname UNIQUE,
    region text DEFAULT 'eu',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    machine_id bigint REFERENCES machines (id) ON DELETE CASCADE,
    state state NOT NULL DEFAULT 'queued',
    CHECK (id > 0)
);
CREATE INDEX jobs_state_idx ON jobs (state);
CREATE VIEW busy AS SELECT machine_id FROM jobs WHERE state = 'running';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER jobs_touch BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
"""


@pytest.fixture
def conn(database: Database) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(database.dsn, autocommit=True) as connection:
        connection.execute(SCHEMA)
        yield connection


def snap(conn: psycopg.Connection[tuple[object, ...]]) -> SchemaSnapshot:
    return snapshot_schema(conn, exclude_tables=("schema_migrations",))


def test_snapshot_lists_every_kind_in_a_stable_order(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    first = snap(conn)
    kinds = {o.kind for o in first.objects}
    assert kinds >= {
        "schema",
        "enum",
        "domain",
        "sequence",
        "table",
        "view",
        "column",
        "constraint",
        "index",
        "trigger",
        "function",
    }
    text = first.render()
    assert "enum public.state (labels queued, running, done)" in text
    assert "column public.jobs.state (type state, nullable NOT NULL, default 'queued'::state)" in (
        text
    )
    assert "index public.jobs_state_idx" in text
    # The state table is golang-migrate's, not the schema under test.
    assert "schema_migrations" not in text
    assert snap(conn) == first


def test_identical_schemas_have_no_diff(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    assert diff_schemas(snap(conn), snap(conn)) == ()


def test_column_order_is_not_compared(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    before = snap(conn)
    # What a down migration does when it re-adds a column the up migration dropped.
    conn.execute("ALTER TABLE machines DROP COLUMN region")
    conn.execute("ALTER TABLE machines ADD COLUMN region text DEFAULT 'eu'")
    assert diff_schemas(before, snap(conn)) == ()


def test_a_changed_column_names_each_attribute(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    before = snap(conn)
    conn.execute("ALTER TABLE machines ALTER COLUMN region SET NOT NULL")
    conn.execute("ALTER TABLE machines ALTER COLUMN region SET DEFAULT 'us'")
    changes = diff_schemas(before, snap(conn))
    assert [(c.change, c.kind, c.name) for c in changes] == [
        ("changed", "column", "public.machines.region")
    ]
    text = render_diff(changes, expected="before the upgrade", actual="after down")
    assert text == (
        "~ column public.machines.region: nullable NULL -> NOT NULL; "
        "default 'eu'::text -> 'us'::text"
    )


def test_debris_and_missing_objects_are_named(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    before = snap(conn)
    conn.execute("CREATE INDEX machines_region_idx ON machines (region)")
    conn.execute("ALTER TABLE jobs DROP CONSTRAINT jobs_id_check")
    conn.execute("ALTER TYPE state ADD VALUE 'failed'")
    changes = diff_schemas(before, snap(conn))
    text = render_diff(changes, expected="before the upgrade", actual="after down")
    lines = text.splitlines()
    assert lines[0] == (
        "~ enum public.state: labels queued, running, done -> queued, running, done, failed"
    )
    assert lines[1].startswith("- constraint public.jobs.jobs_id_check (type check")
    assert lines[1].endswith("only before the upgrade")
    assert lines[2].startswith("+ index public.machines_region_idx (table public.machines")
    assert lines[2].endswith("only after down")
    assert len(lines) == 3


def test_a_table_left_behind_brings_its_parts(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    before = snap(conn)
    conn.execute("CREATE TABLE leftovers (id serial PRIMARY KEY, note text)")
    changes = diff_schemas(before, snap(conn))
    assert {(c.change, c.kind, c.name) for c in changes} == {
        ("extra", "sequence", "public.leftovers_id_seq"),
        ("extra", "table", "public.leftovers"),
        ("extra", "column", "public.leftovers.id"),
        ("extra", "column", "public.leftovers.note"),
        ("extra", "constraint", "public.leftovers.leftovers_pkey"),
    }
    # Containers first: a reader sees the table before its columns.
    assert [c.kind for c in changes] == ["sequence", "table", "column", "column", "constraint"]


def test_count_rows_reads_every_table(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("INSERT INTO machines (name) VALUES ('a'), ('b')")
    conn.execute("INSERT INTO jobs (machine_id) SELECT id FROM machines")
    conn.execute("INSERT INTO jobs (machine_id) SELECT id FROM machines")
    counts = count_rows(conn, snap(conn).tables)
    assert counts == {"public.jobs": 4, "public.machines": 2}
    assert count_rows(conn, []) == {}


def test_a_schema_named_table_is_excluded_only_there(database: Database) -> None:
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA ops")
        conn.execute("CREATE TABLE ops.versions (v int PRIMARY KEY)")
        conn.execute("CREATE TABLE public.versions (v int PRIMARY KEY)")
        names = {o.name for o in snapshot_schema(conn, exclude_tables=("ops.versions",)).objects}
    assert "public.versions" in names
    assert "ops.versions" not in names
    assert "ops.versions.versions_pkey" not in names


def test_scope_names_what_the_files_touch() -> None:
    scope = scope_of(
        [
            "CREATE TABLE sessions (id int, machine_id int REFERENCES machines (id));\n"
            "CREATE INDEX sessions_idx ON sessions (machine_id);\n"
            "ALTER TABLE ops.jobs RENAME TO tasks;\n"
            "CREATE TYPE mood AS ENUM ('ok');\n"
            "DROP FUNCTION touch();\n"
            "INSERT INTO sessions SELECT 1, id FROM machines WHERE created_at < now();\n",
            "DROP INDEX sessions_idx;",
        ],
        builtins={"now"},
    )
    assert scope == Scope(
        relations=('"machines"', '"ops"."jobs"', '"ops"."tasks"', '"sessions"', '"sessions_idx"'),
        types=('"mood"',),
        functions=("touch",),
    )
    assert scope.relation_names >= {"machines", "tasks", "sessions"}


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE machines CASCADE",
        "DO $$ BEGIN EXECUTE 'DROP TABLE machines'; END $$",
        "SET search_path = ops",
        "ALTER TYPE state RENAME TO status",
        "SELECT make_everything()",
        "CREATE EXTENSION pgcrypto",
        "this is not SQL",
    ],
)
def test_sql_whose_reach_is_unknown_reads_everything(sql: str) -> None:
    assert scope_of([sql], builtins={"now"}) is None


def test_a_scoped_snapshot_brings_what_hangs_off_a_relation(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    full = {(o.kind, o.name) for o in snap(conn).objects}

    def scoped(*names: str) -> set[tuple[str, str]]:
        found = snapshot_schema(
            conn, exclude_tables=("schema_migrations",), scope=Scope(relations=names)
        )
        return {(o.kind, o.name) for o in found.objects if o.kind != "schema"}

    jobs = scoped('"jobs"')
    assert jobs <= full
    assert {
        ("table", "public.jobs"),
        ("column", "public.jobs.state"),
        ("constraint", "public.jobs.jobs_machine_id_fkey"),
        ("index", "public.jobs_state_idx"),
        ("trigger", "public.jobs.jobs_touch"),
        ("sequence", "public.jobs_id_seq"),
        ("view", "public.busy"),
    } <= jobs
    assert ("table", "public.machines") not in jobs
    # The table whose foreign key names machines comes with it: renaming machines
    # changes that constraint's text.
    assert ("constraint", "public.jobs.jobs_machine_id_fkey") in scoped('"machines"')
    # An index stands for its table (a down that drops an index names only the index).
    assert ("table", "public.jobs") in scoped('"jobs_state_idx"')
    # A name that does not exist in this state is simply absent.
    assert scoped('"nowhere"') == set()


SCOPES = [
    Scope(relations=('"jobs"',)),
    Scope(relations=('"machines"',)),
    Scope(relations=('"jobs_state_idx"', '"nowhere"')),
    Scope(relations=('"busy"', '"jobs_id_seq"'), types=('"state"', '"hostname"')),
    Scope(types=('"state"',), functions=("touch", "missing")),
]


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: ",".join(s.relations + s.types))
def test_the_one_statement_snapshot_reads_what_the_two_step_one_does(
    conn: psycopg.Connection[tuple[object, ...]], scope: Scope
) -> None:
    # PostgreSQL resolves the scope inside one statement; other engines get the plain
    # two-step form.  Both must read exactly the same objects.
    names = (scope.relations, scope.types, scope.functions)
    one = _catalog.scoped_rows_postgres(conn, *names, count=False)
    two = _catalog.scoped_rows_other(conn, *names)
    assert sorted(map(tuple, one)) == sorted(map(tuple, two))
    assert len(one) > 1  # more than the schema row: the scope found something


def test_a_snapshot_counts_the_rows_of_its_tables(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    conn.execute("INSERT INTO machines (name) VALUES ('a'), ('b')")
    conn.execute("INSERT INTO jobs (machine_id) SELECT id FROM machines")
    scoped = snapshot_schema(
        conn,
        exclude_tables=("schema_migrations",),
        scope=Scope(relations=('"machines"',)),
        rows=True,
    )
    # machines, and jobs because its foreign key names machines.
    assert scoped.rows == {"public.jobs": 2, "public.machines": 2}
    full = snapshot_schema(conn, exclude_tables=("schema_migrations",), rows=True)
    assert full.rows == {"public.jobs": 2, "public.machines": 2}
    conn.execute("DELETE FROM jobs")
    after = snapshot_schema(conn, exclude_tables=("schema_migrations",), rows=True)
    assert after.rows["public.jobs"] == 0
    assert after == full  # counts are not part of the schema


def test_a_reader_snapshots_like_the_function_and_leaves_callers_alone(
    database: Database, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    scope = Scope(relations=('"jobs"',))
    with psycopg.connect(database.dsn, autocommit=True) as own:
        reader = SchemaReader(own, exclude_tables=("schema_migrations",))
        for _ in range(3):  # prepared, then run from the cached plan
            assert reader.snapshot(scope) == snapshot_schema(
                conn, exclude_tables=("schema_migrations",), scope=scope
            )
    # snapshot_schema made its planner settings for its own transaction only.
    assert conn.execute("SHOW plan_cache_mode").fetchone() == ("auto",)
    assert conn.execute("SHOW random_page_cost").fetchone() == ("4",)


def test_a_domain_is_named_by_its_own_name_not_its_base_type() -> None:
    scope = scope_of(
        ["CREATE DOMAIN ops.hostname AS text NOT NULL;\nALTER DOMAIN ops.hostname DROP NOT NULL;"]
    )
    assert scope == Scope(types=('"ops"."hostname"',))
