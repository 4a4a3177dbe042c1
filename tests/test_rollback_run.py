"""Rollback end to end: a Gerrit history, the table, the plan, and the plan carried out.

Why: a rollback plan is only worth something if following it word for word
works.  The history here has CLs landing out of numeric order, an
irreversible migration (rollback ``restore``), a rollback declared ``live``,
one inferred ``offline`` because new code writes a NOT NULL column the old
schema lacks, and one inferred ``live``.  The test builds a database the way
production got it (each version migrated and seeded in turn), then runs the
commands the printed plan names, literally, with the migrations folder gone
from the work tree (the down files come from git), prepares each step's
older code's queries on the schema it lands on, and checks that the end is
the older schema with every seeded row still there.
"""

from __future__ import annotations

import io
import json
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

import psycopg
import pytest

from rollsafe import _git
from rollsafe.cli import main
from rollsafe.config import Config, load_config
from rollsafe.engines import Database, Server
from rollsafe.pairs import PairsRun, PairSuite, junit_xml, pair_line, run_json
from rollsafe.pairs._queries import parse_query_files, prepare_queries
from rollsafe.pairs._schema import diff_schemas, snapshot_schema
from tests.gitrepo import GitRepo, migration

pytestmark = pytest.mark.db

PYPROJECT = '[tool.rollsafe]\nqueries = ["queries/*.sql"]\n'

ITEMS_V1 = """\
-- name: CreateItem :one
INSERT INTO items (name) VALUES ($1) RETURNING id;

-- name: ListItems :many
SELECT id, name FROM items ORDER BY id;
"""
#: New code of the color row writes and reads the column.
ITEMS_COLOR = """\
-- name: CreateItem :one
INSERT INTO items (name, color) VALUES ($1, $2) RETURNING id;

-- name: ListItems :many
SELECT id, name, color FROM items ORDER BY id;
"""

NEXT_NAME = "SELECT 'item-' || (count(*) + 1) FROM items"

#: (message, Gerrit number, files) in landing order.
#: Row 0 (schema 1): 210, 215.  Row 1 (schema 2, tags, irreversible): 220, 230.
#: Row 2 (schema 3, note, rollback declared live): 240, 225 (landed late).
#: Row 3 (schema 4, color NOT NULL, rollback inferred offline): 250, 235 (landed late).
#: Row 4 (schema 5, archived_at, rollback inferred live, open): 260.
HISTORY: list[tuple[str, int, Mapping[str, str | None]]] = [
    ("project", 200, {"pyproject.toml": PYPROJECT}),
    (
        "items",
        210,
        {
            **migration(
                1,
                "items",
                "-- compat: live\n"
                "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);\n",
                "DROP TABLE items;\n",
            ),
            "queries/items.sql": ITEMS_V1,
            "tests/upgrade/1/seed.sql": f"INSERT INTO items (name) {NEXT_NAME};\n" * 2,
        },
    ),
    ("tweak", 215, {}),
    (
        "tags",
        220,
        {
            **migration(
                2,
                "tags",
                "-- compat: live\n-- note: Tags on items.\n"
                "CREATE TABLE tags (item_id bigint NOT NULL REFERENCES items (id), "
                "tag text NOT NULL);\n",
                down=None,
            ),
            "queries/tags.sql": (
                "-- name: TagItem :exec\nINSERT INTO tags (item_id, tag) VALUES ($1, $2);\n"
            ),
            "tests/upgrade/2/seed.sql": (
                f"INSERT INTO items (name) {NEXT_NAME};\n"
                "INSERT INTO tags (item_id, tag) SELECT max(id), 'first' FROM items;\n"
            ),
        },
    ),
    ("tweak", 230, {}),
    (
        "note",
        240,
        {
            **migration(
                3,
                "note",
                "-- compat: live\n-- rollback: live\nALTER TABLE items ADD COLUMN note text;\n",
                "ALTER TABLE items DROP COLUMN note;\n",
            ),
            "tests/upgrade/3/seed.sql": f"INSERT INTO items (name) {NEXT_NAME};\n",
        },
    ),
    ("uploaded early, landed late", 225, {}),
    (
        "color",
        250,
        {
            **migration(
                4,
                "color",
                "-- compat: live\n"
                "ALTER TABLE items ADD COLUMN color text NOT NULL DEFAULT 'red';\n",
                "ALTER TABLE items DROP COLUMN color;\n",
            ),
            "queries/items.sql": ITEMS_COLOR,
            "tests/upgrade/4/seed.sql": (
                f"INSERT INTO items (name, color) SELECT ({NEXT_NAME}), 'blue';\n"
            ),
        },
    ),
    ("uploaded early, landed late", 235, {}),
    (
        "archived",
        260,
        {
            **migration(
                5,
                "archived",
                "-- compat: live\nALTER TABLE items ADD COLUMN archived_at timestamptz;\n",
                "ALTER TABLE items DROP COLUMN archived_at;\n",
            ),
            "tests/upgrade/5/seed.sql": (
                f"INSERT INTO items (name, color) SELECT ({NEXT_NAME}), 'green';\n"
            ),
        },
    ),
]


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    git = GitRepo(tmp_path / "repo")
    for message, change, files in HISTORY:
        git.commit(message, files, change=change)
    return git


def run(git: GitRepo, *args: str) -> int:
    return main([*args, "--repo", str(git.path)])


def test_table_shows_the_rollback_of_every_row(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "release-table") == 0
    capsys.readouterr()
    text = (repo.path / "releases" / "DEPLOYING.md").read_text()
    assert "| Upgrade | Rollback | Notes |" in text
    assert "| 1 | 2 | 220-230 | 2024-01-01 | live | restore | Tags on items. Irreversible:" in text
    assert "| 2 | 3 | 225-240 | 2024-01-01 | live | live |" in text
    assert "| 3 | 4 | 235-250 | 2024-01-01 | live | offline (inferred) |" in text
    assert "| 4 | 5 | 260 and later | 2024-01-01 | live | live (inferred) |" in text
    assert "- Row 1 (CLs 220-230): 1 CL landed in a later row and ships a newer schema: 225" in text
    assert "- Row 2 (CLs 225-240): 1 CL landed in a later row and ships a newer schema: 235" in text
    assert run(repo, "which", "235") == 0
    out = capsys.readouterr().out
    assert "rollback: offline (inferred) to row 2 (schema 3)" in out
    assert "`rollsafe migrate --down-to 3 --files-at 235`, then CL 225" in out


def test_plan_three_rows_back_justifies_each_mode(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "upgrade-plan", "--from", "260", "--to", "230") == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    assert text.startswith(
        "Rollback plan: CL 260 (row 4, schema 5) -> CL 230 (row 1, schema 2)\n"
        "3 steps: 2 live (rolling), 1 offline, 0 restore from backup.\n"
    )
    first = text.index("1. CL 235 - schema 4, undoes migration 5 - live (inferred)")
    second = text.index("2. CL 225 - schema 3, undoes migration 4 - offline (inferred)")
    third = text.index("3. CL 230 - schema 2, undoes migration 3 - live\n")
    assert first < second < third
    assert (
        "migration 5 adds no table and no NOT NULL column, and its down file breaks nothing (lint)"
        in flat
    )
    assert "migration 4 adds NOT NULL column items.color (lint)" in flat
    assert "migration 3 declares `-- rollback: live` (directive)" in flat
    assert "rollback check fails the pair" in flat  # how a pair verdict proves it
    assert "Note: CL 230 landed before CL 225 although its number is higher" in flat
    # Going on past the irreversible migration needs the backup, and says so.
    assert run(repo, "upgrade-plan", "--from", "260", "--to", "215") == 1
    text = capsys.readouterr().out
    assert "4. CL 215 - schema 1, undoes migration 2 - restore" in text
    assert "Restore the backup taken just before CL 220 was deployed" in text
    assert "Run again with --allow-restore" in " ".join(text.split())


def seed(dsn: str, path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(path.read_text())  # test fixture SQL


def counts(dsn: str) -> dict[str, list[int]]:
    with psycopg.connect(dsn) as conn:
        return {
            table: [int(row[0]) for row in conn.execute(f"SELECT {key} FROM {table} ORDER BY 1")]
            for table, key in (("items", "id"), ("tags", "item_id"))
        }


def test_executing_the_plan_step_by_step_ends_in_the_old_schema_with_every_row(
    repo: GitRepo, pg_server: Server, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = database.dsn
    # Production's database: every version migrated in turn and written by its code.
    for version in range(1, 6):
        assert run(repo, "migrate", "--dsn", dsn, "--to", str(version)) == 0
        seed(dsn, repo.path / "tests" / "upgrade" / str(version) / "seed.sql")
    before = counts(dsn)
    assert len(before["items"]) == 6 and len(before["tags"]) == 1
    capsys.readouterr()

    assert run(repo, "upgrade-plan", "--from", "260", "--to", "230", "--format", "json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert run(repo, "upgrade-plan", "--from", "260", "--to", "230") == 0
    text = capsys.readouterr().out
    commands = [line.strip() for line in text.splitlines() if line.startswith("        rollsafe ")]
    assert commands == [step["command"] for step in plan["steps"]]

    # The operator's checkout has no newer files: the down files must come from git.
    shutil.rmtree(repo.path / "migrations")
    history = load_config(repo.path)
    for step, command in zip(plan["steps"], commands, strict=True):
        argv = shlex.split(command)
        assert argv[:2] == ["rollsafe", "migrate"]
        assert run(repo, *argv[1:], "--dsn", dsn) == 0
        assert f"undone: {step['migrate_down'][0]}" in capsys.readouterr().out
        # The code the step rolls back to prepares every query on the schema it lands on.
        queries = parse_query_files(_git.files_at(repo.path, step["commit"], list(history.queries)))
        assert queries
        with psycopg.connect(dsn) as conn:
            assert prepare_queries(conn, queries) == ()

    assert counts(dsn) == before  # no seeded row lost
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchone() == (2, False)
        after = snapshot_schema(conn, exclude_tables=("schema_migrations",))
    fresh = pg_server.create_database()
    try:
        repo.git("checkout", "-q", "--", "migrations")
        assert run(repo, "migrate", "--dsn", fresh.dsn, "--to", "2") == 0
        with psycopg.connect(fresh.dsn) as conn:
            expected = snapshot_schema(conn, exclude_tables=("schema_migrations",))
    finally:
        pg_server.drop(fresh)
    assert diff_schemas(expected, after) == ()


def test_files_at_a_cl_without_the_down_file_refuses_in_one_line(
    repo: GitRepo, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "migrate", "--dsn", database.dsn, "--to", "2") == 0
    capsys.readouterr()
    assert run(repo, "migrate", "--dsn", database.dsn, "--down-to", "1", "--files-at", "230") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "migration 2 has no down file at CL 230; nothing was run" in err
    # A CL from before the migration existed does not know the database's version at all.
    assert run(repo, "migrate", "--dsn", database.dsn, "--down-to", "1", "--files-at", "215") == 2
    assert "database is at version 2" in capsys.readouterr().err
    with psycopg.connect(database.dsn) as conn:
        assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchone() == (2, False)


def pairs(config: Config, server: Server) -> PairsRun:
    with PairSuite(config, server=server) as suite:
        for pair in suite.pairs:
            suite.run(pair)
        return suite.report()


def test_pair_rollback_checks_prove_and_disprove(repo: GitRepo, pg_server: Server) -> None:
    report = pairs(load_config(repo.path), pg_server)
    results = {r.pair.id: r for r in report.results}
    assert {pid: r.rollback for pid, r in results.items()} == {
        "1->2": "restore",
        "2->3": "live",
        "3->4": "offline",
        "4->5": "live",
    }
    assert report.ok
    color = results["3->4"]
    assert color.step(8).status == "noted"
    kinds = {f.kind for f in color.step(8).findings}
    assert kinds == {"new-query-fails-on-old"}
    summaries = [f.summary for f in color.step(8).findings]
    assert "new code's query CreateItem (CL 235) does not prepare on schema 3" in summaries
    assert "rollback offline: new code's" in pair_line(color)
    assert results["2->3"].step(8).status == "passed"
    data = json.loads(json.dumps(run_json(report)))
    assert [p["rollback"] for p in data["pairs"]] == ["restore", "live", "offline", "live"]
    assert [p["rollback_declared"] for p in data["pairs"]] == [None, "live", None, None]
    check = next(s for s in data["pairs"][2]["steps"] if s["step"] == 8)
    assert check["status"] == "noted" and check["findings"][0]["kind"] == "new-query-fails-on-old"
    junit = junit_xml(report)
    assert "NOTE 3-&gt;4 (rollback offline): new code's query CreateItem" in junit
    assert 'failures="0"' in junit


def test_a_declared_live_rollback_that_does_not_hold_fails_the_pair(
    repo: GitRepo, pg_server: Server
) -> None:
    up = repo.path / "migrations" / "4_color.up.sql"
    up.write_text("-- rollback: live\n" + up.read_text())
    repo.commit("declare the color rollback live", change=270)
    report = pairs(load_config(repo.path), pg_server)
    color = {r.pair.id: r for r in report.results}["3->4"]
    assert color.status == "failed" and not report.ok
    assert color.step(8).status == "failed"
    (first, *_) = color.step(8).findings
    assert first.kind == "new-query-fails-on-old"
    assert "declares `-- rollback: live`" in first.fix
    out = io.StringIO()
    out.write(pair_line(color))
    assert "step 8 rollback check" in out.getvalue()


def test_tried_writes_leave_every_sequence_where_it_was(database: Database) -> None:
    """The rollback check's writes roll back; the ids later seeds get must not move either."""
    from rollsafe.pairs._codecheck import _restore_sequences, _sequences

    with psycopg.connect(database.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE used (id bigserial PRIMARY KEY)")
        conn.execute("CREATE TABLE fresh (id bigserial PRIMARY KEY)")
        conn.execute("INSERT INTO used DEFAULT VALUES")
        before = _sequences(conn)
        with conn.transaction(force_rollback=True):
            conn.execute("INSERT INTO used DEFAULT VALUES")
            conn.execute("INSERT INTO fresh DEFAULT VALUES")
        _restore_sequences(conn, before)
        conn.execute("INSERT INTO used DEFAULT VALUES")
        conn.execute("INSERT INTO fresh DEFAULT VALUES")
        assert conn.execute("SELECT max(id) FROM used").fetchone() == (2,)
        assert conn.execute("SELECT max(id) FROM fresh").fetchone() == (1,)


def test_a_new_query_broken_on_the_new_schema_too_is_not_counted(
    repo: GitRepo, pg_server: Server
) -> None:
    broken = "-- name: Broken :many\nSELECT no_such_column FROM items;\n"
    repo.commit("a query that never worked", {"queries/broken.sql": broken}, change=270)
    report = pairs(load_config(repo.path), pg_server)
    archived = {r.pair.id: r for r in report.results}["4->5"]
    check = archived.step(8)
    assert check.status == "passed" and archived.rollback == "live"
    assert "query Broken does not prepare on schema 5 either: not counted" in check.detail
