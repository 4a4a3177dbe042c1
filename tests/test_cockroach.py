"""The CockroachDB path, pinned without a CockroachDB server.

No ``cockroach`` binary can be installed where these tests run, so what the
code sends to CockroachDB is built by pure functions and checked here: the
``start-single-node`` arguments, the version gate, and every statement a
schema snapshot may send.  The snapshot's CockroachDB queries are plain SQL,
so they also run on the real PostgreSQL of the test session and must read
the same schema as PostgreSQL's own form.  Tests that need the binary live
in test_engines.py and skip with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rollsafe.engines import Database
from rollsafe.engines._cockroach import MIN_VERSION, check_version, parse_version, start_command
from rollsafe.errors import EngineUnavailable
from rollsafe.pairs import _catalog
from rollsafe.pairs._catalog import POSTGRES, Dialect, statements_for
from rollsafe.pairs._schema import SchemaReader, Scope, snapshot_schema

#: CockroachDB as released: no pg_get_triggerdef.
CRDB = Dialect(cockroach=True, triggerdef=False)


# -- the node's command line ----------------------------------------------------------------------


def test_start_single_node_arguments(tmp_path: Path) -> None:
    args = start_command("/opt/crdb/cockroach", tmp_path)
    assert args == [
        "/opt/crdb/cockroach",
        "start-single-node",
        "--insecure",
        "--store=type=mem,size=1GiB",
        "--listen-addr=127.0.0.1:0",
        "--http-addr=127.0.0.1:0",
        f"--listening-url-file={tmp_path / 'listen-url'}",
        f"--external-io-dir={tmp_path / 'extern'}",
        "--cache=128MiB",
        "--max-sql-memory=256MiB",
    ]
    # Temporary storage stays in memory with an in-memory store unless --temp-dir moves it.
    assert not any(arg.startswith("--temp-dir") for arg in args)


# -- the version gate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "version"),
    [
        ("CockroachDB CCL v22.1.7 (x86_64-pc-linux-gnu, built 2022/09/06, go1.17.11)", (22, 1, 7)),
        ("CockroachDB OSS v23.2.0-rc.1 (aarch64-unknown-linux-gnu)", (23, 2, 0)),
        ("v24.1", (24, 1, 0)),
        ("PostgreSQL 16.2", None),
    ],
)
def test_versions_are_read_from_the_crdb_version_report(
    report: str, version: tuple[int, int, int] | None
) -> None:
    assert parse_version(report) == version


@pytest.mark.parametrize("report", ["CockroachDB CCL v22.1.0 (x)", "CockroachDB CCL v25.2.1 (x)"])
def test_supported_versions_pass(report: str) -> None:
    check_version(report, where="cockroach")


@pytest.mark.parametrize(
    ("report", "shown"),
    [
        ("CockroachDB CCL v21.2.17 (x86_64-pc-linux-gnu)", "v21.2.17"),
        ("CockroachDB CCL v20.2.0", "v20.2.0"),
        (None, "`no version`"),
    ],
)
def test_older_versions_get_one_line(report: str | None, shown: str) -> None:
    with pytest.raises(EngineUnavailable) as caught:
        check_version(report, where="/usr/bin/cockroach")
    message = caught.value.message
    assert message.startswith(f"/usr/bin/cockroach: CockroachDB {shown} is too old")
    assert f"v{MIN_VERSION[0]}.{MIN_VERSION[1]} or newer" in message
    assert "new_db_name" in message
    assert "\n" not in message


# -- what a snapshot sends -------------------------------------------------------------------------


def _sent(dialect: Dialect) -> str:
    return "\n;\n".join(statements_for(dialect)).lower()


@pytest.mark.parametrize("dialect", [CRDB, Dialect(cockroach=True, triggerdef=True)])
def test_cockroach_snapshots_send_no_postgres_only_sql(dialect: Dialect) -> None:
    sent = _sent(dialect)
    assert "query_to_xml" not in sent
    assert "random_page_cost" not in sent and "plan_cache_mode" not in sent
    statements = [s.strip().lower() for s in statements_for(dialect)]
    assert not any(s.startswith(("set ", "set\n")) for s in statements)
    assert ("pg_get_triggerdef(tg.oid)" in sent) == dialect.triggerdef
    # What is asked of the server: whether it has the trigger function, nothing else special.
    assert statements[0] == _catalog.TRIGGERDEF_PROBE.lower()


def test_postgres_snapshots_keep_their_own_tricks() -> None:
    # The checks above can fail: PostgreSQL's statements do use every one of them.
    sent = _sent(POSTGRES)
    assert "query_to_xml" in sent and "random_page_cost" in sent
    assert "pg_get_triggerdef(tg.oid)" in sent


# -- the CockroachDB queries on a real PostgreSQL -------------------------------------------------

SCHEMA = """
CREATE TYPE state AS ENUM ('queued', 'running');
CREATE TABLE hosts (id bigserial PRIMARY KEY, rack text NOT NULL DEFAULT 'r0');
CREATE TABLE leases (
    host_id bigint NOT NULL REFERENCES hosts (id), state state NOT NULL DEFAULT 'queued'
);
CREATE INDEX leases_by_state ON leases (state);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER leases_touch BEFORE UPDATE ON leases FOR EACH ROW EXECUTE FUNCTION touch();
"""


@pytest.fixture
def conn(database: Database) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(database.dsn, autocommit=True) as connection:
        connection.execute(SCHEMA)
        yield connection


@pytest.mark.db
def test_postgres_is_told_apart_from_the_server_itself(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    # psycopg's plain ConnectionInfo.vendor says "PostgreSQL" for CockroachDB too; the
    # server's own report decides.
    assert _catalog.dialect_of(conn) == POSTGRES
    assert conn.pgconn.parameter_status(b"crdb_version") is None


@pytest.mark.db
@pytest.mark.parametrize("scope", [None, Scope(relations=('"hosts"',))], ids=["full", "scoped"])
def test_the_cockroach_queries_read_the_schema_postgres_reads(
    conn: psycopg.Connection[tuple[object, ...]], scope: Scope | None
) -> None:
    ours = snapshot_schema(conn, scope=scope, dialect=POSTGRES)
    theirs = snapshot_schema(conn, scope=scope, dialect=CRDB)
    assert theirs.tables == ours.tables and "public.leases" in theirs.tables
    # Without pg_get_triggerdef a trigger is known by name only; everything else is equal.
    triggers = {o.name: dict(o.attributes) for o in theirs.objects if o.kind == "trigger"}
    assert triggers == {"public.leases.leases_touch": {"definition": ""}}
    strip = [o for o in ours.objects if o.kind != "trigger"]
    assert strip == [o for o in theirs.objects if o.kind != "trigger"]


@pytest.mark.db
def test_a_cockroach_reader_sets_nothing_on_its_session(database: Database) -> None:
    with psycopg.connect(database.dsn, autocommit=True) as own:
        own.execute(SCHEMA)
        reader = SchemaReader(own, dialect=CRDB)
        snapshot = reader.snapshot(Scope(relations=('"hosts"',)), rows=True)
        assert snapshot.rows == {"public.hosts": 0, "public.leases": 0}
        assert own.execute("SHOW plan_cache_mode").fetchone() == ("auto",)
        assert own.execute("SHOW random_page_cost").fetchone() == ("4",)
        # The same reader on PostgreSQL's dialect does make its settings (the check can fail).
        SchemaReader(own)
        assert own.execute("SHOW plan_cache_mode").fetchone() == ("force_generic_plan",)
