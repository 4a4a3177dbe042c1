"""The migrator against a real PostgreSQL: operations, failures, locking, golang-migrate layout.

Why: Go components using golang-migrate share these databases, so the state
table, the lock and the dirty protocol must be golang-migrate's exactly, and a
failing migration must leave a state an operator can trust (previous clean
version, or dirty when the file could not run in a transaction) with a
message that points at the file and line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rollsafe.engines import Database, Server
from rollsafe.errors import (
    DatabaseAhead,
    DatabaseError,
    DirtyDatabase,
    IrreversibleMigration,
    MigrationFailed,
    UnknownVersion,
)
from rollsafe.migrate import Catalogue, Migration, Migrator, Status, catalogue_from_files, lock_id
from rollsafe.migrate._statements import no_transaction_reason

pytestmark = pytest.mark.db

#: golang-migrate's postgres driver, ensureVersionTable, verbatim.
GOLANG_MIGRATE_DDL = (
    'CREATE TABLE IF NOT EXISTS "public"."schema_migrations" '
    "(version bigint not null primary key, dirty boolean not null)"
)

THREE: dict[str, str] = {
    "1_machines.up.sql": "CREATE TABLE machines (id bigint PRIMARY KEY, host text NOT NULL);\n",
    "1_machines.down.sql": "DROP TABLE machines;\n",
    "2_sessions.up.sql": (
        "-- compat: live\n"
        "CREATE TABLE sessions (\n"
        "    id bigint PRIMARY KEY,\n"
        "    machine_id bigint REFERENCES machines (id)\n"
        ");\n"
    ),
    "2_sessions.down.sql": "DROP TABLE sessions;\n",
    "3_arch.up.sql": "ALTER TABLE machines ADD COLUMN arch text NOT NULL DEFAULT 'x86_64';\n",
    "3_arch.down.sql": "ALTER TABLE machines DROP COLUMN arch;\n",
}


def catalogue(files: Mapping[str, str]) -> Catalogue:
    """A catalogue from ``{file name: text}`` in folder ``migrations``."""
    return catalogue_from_files("migrations", {f"migrations/{k}": v for k, v in files.items()})


def rows(db: Database, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def execute(db: Database, sql: str) -> None:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(sql)


def tables(db: Database) -> set[str]:
    found = rows(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in found}


def state(db: Database, table: str = "schema_migrations") -> list[tuple[Any, ...]]:
    return rows(db, f'SELECT version, dirty FROM "{table}"')


# -- operations --------------------------------------------------------------------------------


def test_up_applies_every_migration_and_leaves_one_clean_row(database: Database) -> None:
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        assert migrator.status() == Status(None, False, (1, 2, 3), False)
        assert migrator.up() == (1, 2, 3)
        assert migrator.status() == Status(3, False, (), False)
        assert migrator.up() == ()
    assert {"machines", "sessions", "schema_migrations"} <= tables(database)
    assert state(database) == [(3, False)]


def test_up_to_includes_the_target_and_stops_there(database: Database) -> None:
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        assert migrator.up_to(2) == (1, 2)
        assert state(database) == [(2, False)]
        columns = rows(
            database,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'machines'",
        )
        assert ("arch",) not in columns
        assert migrator.up_to(2) == ()
        assert migrator.up() == (3,)
        with pytest.raises(DatabaseError, match="past 2"):
            migrator.up_to(2)


def test_down_to_undoes_newer_migrations_and_none_undoes_all(database: Database) -> None:
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        migrator.up()
        assert migrator.down_to(1) == (3, 2)
        assert tables(database) == {"machines", "schema_migrations"}
        assert state(database) == [(1, False)]
        assert migrator.down_to(None) == (1,)
    assert tables(database) == {"schema_migrations"}
    # golang-migrate's SetVersion(NilVersion, false) leaves the table empty.
    assert state(database) == []


def test_goto_moves_in_both_directions(database: Database) -> None:
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        assert migrator.goto(3) == (1, 2, 3)
        assert migrator.goto(1) == (3, 2)
        assert migrator.goto(2) == (2,)
        assert migrator.goto(2) == ()
        assert migrator.goto(None) == (2, 1)
        assert migrator.status().version is None


def test_force_sets_the_version_and_clears_dirty_without_running(database: Database) -> None:
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        migrator.up_to(1)
        execute(database, "UPDATE schema_migrations SET dirty = true")
        with pytest.raises(DirtyDatabase, match="force 1"):
            migrator.up()
        migrator.force(2)
        assert state(database) == [(2, False)]
        assert "sessions" not in tables(database)
        migrator.force(None)
        assert state(database) == []


def test_a_bad_target_version_runs_nothing(database: Database) -> None:
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        for operation in (migrator.up_to, migrator.down_to, migrator.goto):
            with pytest.raises(UnknownVersion, match=r"version 7 is not a migration.*1, 2, 3"):
                operation(7)
    assert tables(database) == set()


def test_force_takes_any_version_from_minus_one_up_without_a_file(database: Database) -> None:
    """golang-migrate's ``force V`` accepts every V >= -1, file or not."""
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        migrator.force(7)
        assert state(database) == [(7, False)]
        with pytest.raises(UnknownVersion):
            migrator.force(-2)
        migrator.force(None)
    assert state(database) == []


def test_a_dirty_database_refuses_every_move(database: Database) -> None:
    execute(database, GOLANG_MIGRATE_DDL)
    execute(database, "INSERT INTO schema_migrations VALUES (1, true)")
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        assert migrator.status() == Status(1, True, (2, 3), False)
        moves: list[Callable[[], object]] = [
            migrator.up,
            lambda: migrator.up_to(3),
            lambda: migrator.goto(3),
            lambda: migrator.down_to(None),
        ]
        for move in moves:
            with pytest.raises(DirtyDatabase, match="dirty at version 1"):
                move()
    assert tables(database) == {"schema_migrations"}


def test_a_missing_down_file_on_the_way_down_runs_nothing(database: Database) -> None:
    files = {k: v for k, v in THREE.items() if k != "2_sessions.down.sql"}
    with Migrator(database.dsn, catalogue(files)) as migrator:
        migrator.up()
        with pytest.raises(IrreversibleMigration, match=r"2_sessions\.up\.sql") as caught:
            migrator.down_to(None)
    assert caught.value.version == 2
    assert state(database) == [(3, False)]
    columns = rows(
        database,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'machines' AND column_name = 'arch'",
    )
    assert columns == [("arch",)], "migration 3 must not have been undone"


def test_a_database_ahead_of_the_code_is_left_alone_unless_strict(database: Database) -> None:
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        migrator.up()
        migrator.force(3)
        execute(database, "UPDATE schema_migrations SET version = 9")
        assert migrator.status() == Status(9, False, (), True)
        assert migrator.up() == ()
        assert state(database) == [(9, False)]
        with pytest.raises(DatabaseAhead, match=r"version 9, newer .* newest migration \(3\)"):
            migrator.up(strict=True)
        with pytest.raises(DatabaseAhead):
            migrator.down_to(1)


def test_a_database_at_a_version_missing_from_the_folder_is_an_error(database: Database) -> None:
    files = {k: v for k, v in THREE.items() if not k.startswith("2_")}
    execute(database, GOLANG_MIGRATE_DDL)
    execute(database, "INSERT INTO schema_migrations VALUES (2, false)")
    with (
        Migrator(database.dsn, catalogue(files)) as migrator,
        pytest.raises(DatabaseError, match="version 2, which is not a migration"),
    ):
        migrator.up()


def test_an_empty_migration_file_is_applied(database: Database) -> None:
    files = {"1_nothing.up.sql": "-- compat: live\n-- nothing yet\n", "1_nothing.down.sql": ""}
    with Migrator(database.dsn, catalogue(files)) as migrator:
        assert migrator.up() == (1,)
        assert migrator.down_to(None) == (1,)


# -- failures ----------------------------------------------------------------------------------

FAILING_SECOND = {
    "1_machines.up.sql": THREE["1_machines.up.sql"],
    "2_broken.up.sql": (
        "-- compat: live\n"
        "CREATE TABLE sessions (id bigint PRIMARY KEY);\n"
        "\n"
        "INSERT INTO sessions (id)\n"
        "SELECT id FROM no_such_table;\n"
    ),
}


def test_a_failing_migration_rolls_back_to_the_previous_clean_version(
    database: Database,
) -> None:
    with Migrator(database.dsn, catalogue(FAILING_SECOND)) as migrator:
        with pytest.raises(MigrationFailed) as caught:
            migrator.up()
        assert migrator.status() == Status(1, False, (2,), False)
    error = caught.value
    assert error.file == "migrations/2_broken.up.sql"
    assert error.line == 5  # the server points at no_such_table, inside the statement of line 4
    assert error.statement.startswith("INSERT INTO sessions")
    assert 'relation "no_such_table" does not exist' in error.server_message
    assert not error.dirty
    assert str(error).startswith("migrations/2_broken.up.sql:5: migration failed:")
    assert "sessions" not in tables(database), "the statement before the failure was rolled back"


def test_the_line_is_the_statement_start_when_the_server_gives_no_position(
    database: Database,
) -> None:
    files = {
        "1_dup.up.sql": (
            "CREATE TABLE a (id int);\n"
            "INSERT INTO a VALUES (1);\n"
            "ALTER TABLE a\n"
            "    ADD PRIMARY KEY (id);\n"
            "INSERT INTO a VALUES (1);\n"
        )
    }
    with (
        Migrator(database.dsn, catalogue(files)) as migrator,
        pytest.raises(MigrationFailed, match=r"1_dup.up.sql:5: .*duplicate key") as caught,
    ):
        migrator.up()
    assert caught.value.statement == "INSERT INTO a VALUES (1)"


def test_a_syntax_error_names_its_line_and_runs_nothing(database: Database) -> None:
    files = {"1_typo.up.sql": "CREATE TABLE a (id int);\n\nCREAT TABLE b (id int);\n"}
    with (
        Migrator(database.dsn, catalogue(files)) as migrator,
        pytest.raises(MigrationFailed, match=r"1_typo.up.sql:3: migration failed: syntax error"),
    ):
        migrator.up()
    assert tables(database) == {"schema_migrations"}


def test_the_servers_hint_is_in_the_message(database: Database) -> None:
    files = {"1_call.up.sql": "SELECT no_such_function(1, 'a');\n"}
    with (
        Migrator(database.dsn, catalogue(files)) as migrator,
        pytest.raises(MigrationFailed) as caught,
    ):
        migrator.up()
    assert caught.value.hint and "argument types" in caught.value.hint
    assert f"(hint: {caught.value.hint})" in str(caught.value)


@pytest.mark.parametrize(
    ("header", "line", "kept"),
    [("", 1, False), ("-- transaction: per-statement\n", 3, True)],
    ids=["one-query", "per-statement"],
)
def test_a_failing_non_transactional_migration_leaves_the_version_dirty(
    database: Database, header: str, line: int, kept: bool
) -> None:
    """As golang-migrate: the file is one query, an implicit transaction CONCURRENTLY refuses.

    ``per-statement`` runs each statement alone: what ran before the failure stays.
    """
    files = {
        "1_machines.up.sql": THREE["1_machines.up.sql"],
        "2_index.up.sql": (
            f"{header}CREATE INDEX CONCURRENTLY machines_host_idx ON machines (host);\n"
            "CREATE INDEX CONCURRENTLY broken_idx ON machines (no_such_column);\n"
        ),
    }
    with Migrator(database.dsn, catalogue(files)) as migrator:
        with pytest.raises(MigrationFailed, match=rf"2_index.up.sql:{line}: .*force") as e:
            migrator.up()
        assert e.value.dirty
        assert migrator.status() == Status(2, True, (), False)
        with pytest.raises(DirtyDatabase):
            migrator.up()
    found = rows(database, "SELECT 1 FROM pg_indexes WHERE indexname = 'machines_host_idx'")
    assert bool(found) is kept


def test_a_create_index_concurrently_migration_runs(database: Database) -> None:
    files = {
        "1_machines.up.sql": THREE["1_machines.up.sql"] + "INSERT INTO machines VALUES (1, 'a');\n",
        "1_machines.down.sql": THREE["1_machines.down.sql"],
        "2_index.up.sql": (
            "-- compat: live\n"
            "-- lint: ignore index-not-concurrent\n"
            "CREATE INDEX CONCURRENTLY machines_host_idx ON machines (host);\n"
        ),
        "2_index.down.sql": "DROP INDEX CONCURRENTLY machines_host_idx;\n",
    }
    with Migrator(database.dsn, catalogue(files)) as migrator:
        assert migrator.up() == (1, 2)
        valid = rows(
            database,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'machines_host_idx'::regclass",
        )
        assert valid == [(True,)]
        assert migrator.down_to(1) == (2,)
    assert state(database) == [(1, False)]


def test_a_file_with_its_own_transaction_runs(database: Database) -> None:
    files = {"1_own.up.sql": "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n"}
    with Migrator(database.dsn, catalogue(files)) as migrator:
        assert migrator.up() == (1,)
    assert "a" in tables(database)


@pytest.mark.parametrize(("mode", "kept"), [("none", False), ("per-statement", True)])
def test_the_no_transaction_marker_switches_to_the_dirty_protocol(
    database: Database, mode: str, kept: bool
) -> None:
    sql = f"-- transaction: {mode}\nCREATE TABLE a (id int);\nSELECT 1/0;\n"
    marked = Migration(version=1, title="marked", up_path="migrations/1_marked.up.sql", up_sql=sql)
    with Migrator(database.dsn, Catalogue("migrations", (marked,))) as migrator:
        with pytest.raises(MigrationFailed, match=r"1_marked.up.sql:3: .*division by zero"):
            migrator.up()
        assert migrator.status() == Status(1, True, (), False)
    # `none` sends the file as one query (one implicit transaction), as golang-migrate.
    assert ("a" in tables(database)) is kept


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE TABLE a (id int);", None),
        ("CREATE INDEX i ON a (id);", None),
        ("CREATE INDEX CONCURRENTLY i ON a (id);", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY i;", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i;", "REINDEX CONCURRENTLY"),
        ("VACUUM a;", "VACUUM"),
        ("ANALYZE a;", None),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY;", "DETACH PARTITION CONCURRENTLY"),
        ("ALTER TYPE t ADD VALUE 'x';", None),
        ("BEGIN; SELECT 1; COMMIT;", "the file controls its own transactions (BEGIN/COMMIT)"),
        ("SAVEPOINT s; SELECT 1; RELEASE s;", None),
        ("ALTER SYSTEM SET work_mem = '8MB';", "ALTER SYSTEM"),
        ("CREATE DATABASE x;", "CREATE DATABASE"),
        ("-- transaction: none\nSELECT 1;", "the file declares `-- transaction: none`"),
        ("CREATE TABLE a (id STRING) INTERLEAVE IN PARENT b (id);", None),
    ],
)
def test_statements_that_cannot_run_in_a_transaction_are_detected(
    sql: str, reason: str | None
) -> None:
    assert no_transaction_reason(sql) == reason


# -- golang-migrate compatibility --------------------------------------------------------------


def _layout(db: Database, table: str) -> dict[str, Any]:
    return {
        "columns": rows(
            db,
            "SELECT column_name, data_type, is_nullable, column_default, ordinal_position "
            "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
            "ORDER BY ordinal_position",
            (table,),
        ),
        "constraints": rows(
            db,
            "SELECT tc.constraint_name, tc.constraint_type, kcu.column_name "
            "FROM information_schema.table_constraints tc "
            "JOIN information_schema.key_column_usage kcu USING (constraint_name, table_name) "
            "WHERE tc.table_name = %s ORDER BY 1",
            (table,),
        ),
        "indexes": rows(
            db, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,)
        ),
    }


def test_the_state_table_is_golang_migrates_layout(pg_server: Server, database: Database) -> None:
    with Migrator(database.dsn, catalogue(THREE)) as migrator:
        migrator.up_to(1)
    reference = pg_server.create_database()
    try:
        execute(reference, GOLANG_MIGRATE_DDL)
        assert _layout(database, "schema_migrations") == _layout(reference, "schema_migrations")
    finally:
        pg_server.drop(reference)
    assert _layout(database, "schema_migrations")["columns"] == [
        ("version", "bigint", "NO", None, 1),
        ("dirty", "boolean", "NO", None, 2),
    ]
    assert _layout(database, "schema_migrations")["constraints"] == [
        ("schema_migrations_pkey", "PRIMARY KEY", "version")
    ]


def test_state_written_by_golang_migrate_is_read_and_continued(database: Database) -> None:
    execute(database, GOLANG_MIGRATE_DDL.replace("schema_migrations", "deploy_versions"))
    execute(database, "CREATE TABLE machines (id bigint PRIMARY KEY, host text NOT NULL)")
    execute(database, "INSERT INTO deploy_versions VALUES (1, false)")
    with Migrator(database.dsn, catalogue(THREE), table="deploy_versions") as migrator:
        assert migrator.status() == Status(1, False, (2, 3), False)
        assert migrator.up() == (2, 3)
    assert state(database, "deploy_versions") == [(3, False)]
    assert "schema_migrations" not in tables(database)


def test_the_migration_runs_under_golang_migrates_advisory_lock(database: Database) -> None:
    files = {
        "1_seen.up.sql": (
            "CREATE TABLE seen AS SELECT (classid::bigint << 32) | objid::bigint AS key "
            "FROM pg_locks WHERE locktype = 'advisory' AND granted;\n"
        )
    }
    with Migrator(database.dsn, catalogue(files)) as migrator:
        migrator.up()
    # Both of golang-migrate's routes (tests/interop proves the ids against golang-migrate).
    names = (f"/{database.name}", database.name)
    expected = sorted(lock_id(name, "public", "schema_migrations") for name in names)
    assert sorted(key for (key,) in rows(database, "SELECT key FROM seen")) == expected
    assert rows(database, "SELECT 1 FROM pg_locks WHERE locktype = 'advisory'") == []


# -- racing migrators --------------------------------------------------------------------------


def _racing_files(count: int) -> dict[str, str]:
    files = {
        "1_log.up.sql": (
            "CREATE TABLE applied (version int NOT NULL);\nINSERT INTO applied VALUES (1);\n"
        )
    }
    for version in range(2, count + 1):
        files[f"{version}_step.up.sql"] = (
            f"CREATE TABLE t{version} (id int);\n"
            "SELECT pg_sleep(0.01);\n"
            f"INSERT INTO applied VALUES ({version});\n"
        )
    return files


def _assert_exactly_once(db: Database, count: int, applied: list[tuple[int, ...]]) -> None:
    counts = rows(db, "SELECT version, count(*) FROM applied GROUP BY version ORDER BY version")
    assert counts == [(v, 1) for v in range(1, count + 1)]
    assert sorted(v for run in applied for v in run) == list(range(1, count + 1))
    assert state(db) == [(count, False)]


def test_racing_threads_apply_every_migration_exactly_once(database: Database) -> None:
    count, workers = 12, 4
    cat = catalogue(_racing_files(count))
    start = threading.Barrier(workers)
    results: list[tuple[int, ...]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Migrator(database.dsn, cat) as migrator:
                start.wait()
                results.append(migrator.up())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    _assert_exactly_once(database, count, results)


RACER = """
import json, sys
from pathlib import Path
from rollsafe.migrate._catalogue import load_catalogue
from rollsafe.migrate import Migrator
with Migrator(sys.argv[1], load_catalogue(Path(sys.argv[2]), "migrations")) as migrator:
    migrator.status()
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps(migrator.up()), flush=True)
"""


def test_racing_processes_apply_every_migration_exactly_once(
    database: Database, tmp_path: Path
) -> None:
    count, workers = 12, 3
    (tmp_path / "migrations").mkdir()
    for name, text in _racing_files(count).items():
        (tmp_path / "migrations" / name).write_text(text)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, database.dsn, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    for racer in racers:  # every one connected before any starts
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    results = []
    for racer in racers:
        out, _ = racer.communicate(timeout=120)
        assert racer.returncode == 0
        results.append(tuple(json.loads(out)))
    _assert_exactly_once(database, count, results)


# -- CockroachDB --------------------------------------------------------------------------------


def test_cockroach_runs_the_dirty_protocol_and_its_lock_table(
    cockroach_database: Database,
) -> None:
    files = dict(THREE)
    files["4_broken.up.sql"] = "CREATE TABLE b (id INT);\nSELECT * FROM no_such_table;\n"
    with Migrator(cockroach_database.dsn, catalogue(files)) as migrator:
        assert migrator.flavor == "cockroach"
        assert migrator.up_to(3) == (1, 2, 3)
        with pytest.raises(MigrationFailed, match=r"4_broken.up.sql:2:") as caught:
            migrator.up()
        assert caught.value.dirty
        assert migrator.status() == Status(4, True, (), False)
        migrator.force(3)
        assert migrator.down_to(1) == (3, 2)
    assert rows(cockroach_database, "SELECT count(*) FROM schema_lock") == [(0,)]


def test_a_held_lock_times_out_naming_the_holder(database: Database) -> None:
    """golang-migrate's 15 s default can be shortened; after a second, who holds it is said."""
    heard: list[str] = []
    with Migrator(database.dsn, catalogue(THREE), lock_timeout=1.5, notify=heard.append) as m:
        ids = m.lock_ids
        with psycopg.connect(database.dsn, autocommit=True) as holder:
            holder.execute("SET application_name = 'the-holder'")
            holder.execute("SELECT pg_advisory_lock(%s)", (ids[0],))
            pid = holder.info.backend_pid
            with pytest.raises(DatabaseError, match=f"timeout: .*pid {pid}.*'the-holder'"):
                m.up()
        assert len(heard) == 1 and f"pid {pid}" in heard[0] and "the-holder" in heard[0]
        assert m.up() == (1, 2, 3), "the lock is free again once its holder is gone"
