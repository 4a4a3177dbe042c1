"""The same folder and operation through golang-migrate and rollsafe: same state, schema, outcome.

Where rollsafe differs on purpose (README, "Compatibility with golang-migrate"),
the test asserts the documented difference instead of equality.
"""

from __future__ import annotations

import pytest

from rollsafe.engines import Database
from tests.interop.conftest import Tools, execute, go_url, rows, schema, state

THREE = {
    "1_machines.up.sql": "CREATE TABLE machines (id bigint PRIMARY KEY, host text);\n",
    "1_machines.down.sql": "DROP TABLE machines;\n",
    "2_sessions.up.sql": "CREATE TABLE sessions (id bigint);\nCREATE INDEX s ON sessions (id);\n",
    "2_sessions.down.sql": "DROP TABLE sessions;\n",
    "3_notes.up.sql": "ALTER TABLE machines ADD COLUMN note text;\n",
    "3_notes.down.sql": "ALTER TABLE machines DROP COLUMN note;\n",
}

#: (golang-migrate's arguments, rollsafe's operation and version), run in turn.
Steps = list[tuple[tuple[str, ...], str, int | None]]

SCENARIOS: dict[str, Steps] = {
    "up": [(("up",), "up", None)],
    "goto-then-up": [(("goto", "2"), "goto", 2), (("up",), "up", None)],
    "up-then-down-2": [(("up",), "up", None), (("down", "2"), "down-to", 1)],
    "down-all": [(("up",), "up", None), (("down", "-all"), "down-to", None)],
    "force-without-file": [(("up",), "up", None), (("force", "9"), "force", 9)],
    "force-minus-one": [(("goto", "1"), "goto", 1), (("force", "--", "-1"), "force", None)],
}


def _same(tools: Tools, twin: tuple[Database, Database], steps: Steps) -> None:
    go_db, rs_db = twin
    for go_args, operation, version in steps:
        go = tools.go(go_url(go_db), *go_args)
        ours = tools.rollsafe(rs_db.dsn, operation, version)
        assert (go.ok, ours.ok) == (True, True), (go.message, ours.message)
        assert state(go_db) == state(rs_db)
    assert schema(go_db) == schema(rs_db)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_operations_leave_the_same_state_and_schema(
    tools: Tools, twin: tuple[Database, Database], name: str
) -> None:
    tools.write(THREE)
    _same(tools, twin, SCENARIOS[name])


def test_file_names_are_read_alike(tools: Tools, twin: tuple[Database, Database]) -> None:
    tools.write(
        {
            "0002_1.7.0_schema.up.sql": "CREATE TABLE a (id int);\n",
            "0002_other-title.down.sql": "DROP TABLE a;\n",
            "3_x.up.txt": "CREATE TABLE b (id int);\n",
            "3_x.down.txt": "DROP TABLE b;\n",
            "4_.up.sql": "CREATE TABLE c (id int);\n",
            "4_.down.sql": "DROP TABLE c;\n",
            "5_a+b c.up.sql": "CREATE TABLE d (id int);\n",
            "5_a+b c.down.sql": "DROP TABLE d;\n",
            "6_x.up.SQL": "CREATE TABLE e (id int);\n",
            "6_x.down.SQL": "DROP TABLE e;\n",
            "7_ignored.sql": "CREATE TABLE never (id int);\n",
            "README.md": "prose\n",
        }
    )
    _same(tools, twin, [(("up",), "up", None)])
    assert state(twin[0]) == [(6, False)]
    _same(tools, twin, [(("goto", "2"), "goto", 2), (("down", "1"), "down-to", None)])
    assert state(twin[0]) == []


def test_a_missing_down_file_differs_as_documented(
    tools: Tools, twin: tuple[Database, Database]
) -> None:
    """golang-migrate records the version without running anything; rollsafe refuses."""
    tools.write({"1_a.up.sql": "CREATE TABLE a (id int);\n", "2_b.up.sql": "SELECT 1;\n"})
    go_db, rs_db = twin
    assert tools.go(go_url(go_db), "up").ok and tools.rollsafe(rs_db.dsn, "up").ok
    go = tools.go(go_url(go_db), "down", "1")
    ours = tools.rollsafe(rs_db.dsn, "down-to", 1)
    assert go.ok and not ours.ok and "cannot be undone" in ours.message
    assert state(go_db) == [(1, False)] and state(rs_db) == [(2, False)]


def test_a_failing_migration_differs_as_documented(
    tools: Tools, twin: tuple[Database, Database]
) -> None:
    """golang-migrate leaves the version dirty; rollsafe's transaction leaves the previous one."""
    tools.write({**THREE, "4_broken.up.sql": "CREATE TABLE x (id int);\nSELECT 1/0;\n"})
    go_db, rs_db = twin
    go, ours = tools.go(go_url(go_db), "up"), tools.rollsafe(rs_db.dsn, "up")
    assert not go.ok and not ours.ok
    assert "division by zero" in go.message and "division by zero" in ours.message
    assert state(go_db) == [(4, True)]
    assert state(rs_db) == [(3, False)]
    assert schema(go_db) == schema(rs_db), "the file ran as one implicit transaction in both"


@pytest.mark.parametrize(
    ("files", "ok"),
    [
        ({"2_ix.up.sql": "CREATE INDEX CONCURRENTLY ix ON machines (host);\n"}, True),
        (
            {
                "2_ix.up.sql": "CREATE INDEX CONCURRENTLY ix ON machines (host);\n"
                "CREATE INDEX CONCURRENTLY iy ON machines (id);\n"
            },
            False,
        ),
        ({"2_own.up.sql": "BEGIN;\nCREATE TABLE own (id int);\nCOMMIT;\n"}, True),
        ({"2_x.up.sql": "-- transaction: none\nCREATE TABLE y (id int);\nSELECT 1/0;\n"}, False),
    ],
    ids=["concurrently", "two-concurrently", "own-transaction", "declared-none"],
)
def test_files_outside_a_transaction_run_as_golang_migrate_runs_them(
    tools: Tools, twin: tuple[Database, Database], files: dict[str, str], ok: bool
) -> None:
    tools.write({"1_machines.up.sql": THREE["1_machines.up.sql"], **files})
    go_db, rs_db = twin
    go, ours = tools.go(go_url(go_db), "up"), tools.rollsafe(rs_db.dsn, "up")
    assert (go.ok, ours.ok) == (ok, ok), (go.message, ours.message)
    assert state(go_db) == state(rs_db)
    assert schema(go_db) == schema(rs_db)


def test_dirty_states_written_by_either_tool_are_refused_by_the_other(
    tools: Tools, twin: tuple[Database, Database]
) -> None:
    tools.write({**THREE, "4_x.up.sql": "-- transaction: none\nSELECT 1/0;\n"})
    go_db, rs_db = twin
    assert not tools.go(go_url(go_db), "up").ok
    assert not tools.rollsafe(rs_db.dsn, "up").ok
    assert state(go_db) == state(rs_db) == [(4, True)]
    # Each tool refuses the other's dirty state, then both accept a force.
    assert "dirty" in tools.rollsafe(go_db.dsn, "up").message.lower()
    assert "Dirty" in tools.go(go_url(rs_db), "up").message
    assert tools.rollsafe(go_db.dsn, "force", 3).ok and tools.go(go_url(rs_db), "force", "3").ok
    assert state(go_db) == state(rs_db) == [(3, False)]


@pytest.mark.parametrize(
    ("params", "table"),
    [
        ({"x-migrations-table": "deploy.versions"}, '"public"."deploy.versions"'),
        (
            {"x-migrations-table": '"app"."versions"', "x-migrations-table-quoted": "1"},
            '"app"."versions"',
        ),
        ({"search_path": "app"}, '"app"."schema_migrations"'),
    ],
    ids=["dotted", "quoted", "search-path"],
)
def test_url_options_name_the_same_table(
    tools: Tools, twin: tuple[Database, Database], params: dict[str, str], table: str
) -> None:
    tools.write(THREE)
    go_db, rs_db = twin
    for db in twin:
        execute(db, "CREATE SCHEMA app")
    go = tools.go(go_url(go_db, params=params), "up")
    ours = tools.rollsafe(go_url(rs_db, params=params), "up")
    assert go.ok and ours.ok, (go.message, ours.message)
    assert state(go_db, table) == state(rs_db, table) == [(3, False)]
    assert schema(go_db) == schema(rs_db)


def test_statement_timeout_stops_a_slow_file_in_both(
    tools: Tools, twin: tuple[Database, Database]
) -> None:
    tools.write({"1_slow.up.sql": "SELECT pg_sleep(5);\n"})
    go_db, rs_db = twin
    go = tools.go(go_url(go_db, params={"x-statement-timeout": "200"}), "up")
    ours = tools.rollsafe(go_url(rs_db, params={"x-statement-timeout": "200"}), "up")
    assert not go.ok and not ours.ok
    assert "cancel" in go.message and "cancel" in ours.message


def test_multi_statement_mode_is_refused_in_one_line(tools: Tools, database: Database) -> None:
    tools.write(THREE)
    ours = tools.rollsafe(go_url(database, params={"x-multi-statement": "true"}), "up")
    assert not ours.ok and "x-multi-statement=true is not supported" in ours.message
    assert "\n" not in ours.message


def test_golang_migrates_grants_suffice_and_a_missing_one_is_not_blamed_on_the_file(
    tools: Tools, twin: tuple[Database, Database]
) -> None:
    """golang-migrate clears the version with TRUNCATE: SELECT, INSERT, TRUNCATE are enough."""
    tools.write(THREE)
    role = f"mig_{twin[0].name[-8:]}"
    execute(twin[0], f"CREATE ROLE {role} LOGIN")
    for db in twin:
        execute(db, f"GRANT CREATE ON SCHEMA public TO {role}")
        execute(
            db,
            "CREATE TABLE schema_migrations (version bigint not null primary key, "
            "dirty boolean not null)",
        )
        execute(db, f"GRANT SELECT, INSERT, TRUNCATE ON schema_migrations TO {role}")
    go_db, rs_db = twin
    as_role = {"user": role}
    go = tools.go(go_url(go_db).replace("postgres@", f"{role}@"), "goto", "1")
    ours = tools.rollsafe(f"{rs_db.dsn} user={role}", "goto", 1)
    assert go.ok and ours.ok, (go.message, ours.message, as_role)
    assert state(go_db) == state(rs_db) == [(1, False)]
    for db in twin:
        execute(db, f"REVOKE TRUNCATE ON schema_migrations FROM {role}")
    go = tools.go(go_url(go_db).replace("postgres@", f"{role}@"), "up")
    ours = tools.rollsafe(f"{rs_db.dsn} user={role}", "up")
    assert not go.ok and not ours.ok
    assert "permission denied" in go.message
    assert ours.message.count("cannot write the migration state: permission denied") == 1
    assert "2_sessions" not in ours.message
    assert rows(rs_db, "SELECT to_regclass('sessions') IS NULL") == [(True,)]
    execute(go_db, f"DROP OWNED BY {role}")
    execute(rs_db, f"DROP OWNED BY {role}")
    execute(go_db, f"DROP ROLE {role}")
