"""Upgrade fixtures: folder layout rules, and seeds and checks run on a real PostgreSQL.

Seeds stand for what production holds and checks for what new code reads,
so each rule is shown failing the way a real fixture would: a seed that
breaks half-way must leave nothing, and every failing check must be named
with its file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rollsafe.engines import Database
from rollsafe.errors import FixtureError
from rollsafe.pairs._fixtures import Fixture, check, load_fixtures, seed, statements_of

Conn = psycopg.Connection[tuple[object, ...]]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_statements_keep_their_first_line() -> None:
    text = "-- a seed\nINSERT INTO t VALUES (1);\n\n/* two */ INSERT INTO t\nVALUES ($$;$$);\n"
    assert [(s.line, s.text) for s in statements_of(text)] == [
        (2, "INSERT INTO t VALUES (1)"),
        (4, "INSERT INTO t\nVALUES ($$;$$)"),
    ]


def test_a_nested_block_comment_is_one_comment() -> None:
    """PostgreSQL's block comments nest: the statement starts after the outer ``*/``."""
    text = "/* a /* b */ still comment */ INSERT INTO t VALUES (1);\n"
    assert [(s.line, s.text) for s in statements_of(text)] == [(1, "INSERT INTO t VALUES (1)")]


def test_fixtures_are_found_by_version(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tests/upgrade/000001/seed.sql": "SELECT 1;",
            "tests/upgrade/000001/README.md": "notes are fine",
            "tests/upgrade/3/check.sql": "SELECT true;",
            "tests/upgrade/3/fixture.py": "def check(conn):\n    pass\n",
        },
    )
    found = load_fixtures(tmp_path, "tests/upgrade", versions={1, 2, 3})
    assert sorted(found) == [1, 3]
    assert found[1].has_seed and not found[1].has_check
    assert found[3].has_check and found[3].has_seed  # fixture.py may seed too
    assert found[3].check_path == "tests/upgrade/3/check.sql"
    assert load_fixtures(tmp_path, "no/such/folder") == {}


@pytest.mark.parametrize(
    ("files", "message", "file"),
    [
        ({"up/latest/seed.sql": ""}, "not a migration version", "up/latest"),
        ({"up/1/seeds.sql": ""}, "unknown fixture file `seeds.sql`", "up/1/seeds.sql"),
        ({"up/1/seed.sql": "", "up/001/seed.sql": ""}, "second fixture folder", "up/1"),
        ({"up/9/seed.sql": ""}, "no migration has version 9", "up/9"),
    ],
)
def test_fixture_folders_that_would_never_run_are_errors(
    tmp_path: Path, files: dict[str, str], message: str, file: str
) -> None:
    write(tmp_path, files)
    with pytest.raises(FixtureError) as raised:
        load_fixtures(tmp_path, "up", versions={1})
    assert message in raised.value.what
    assert raised.value.file == file


@pytest.fixture
def conn(database: Database) -> Iterator[Conn]:
    with psycopg.connect(database.dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL)")
        yield connection


def fixture_of(tmp_path: Path, files: dict[str, str]) -> Fixture:
    write(tmp_path, {f"up/1/{name}": text for name, text in files.items()})
    return load_fixtures(tmp_path, "up")[1]


def rows(conn: Conn) -> list[tuple[object, ...]]:
    return conn.execute("SELECT id, name FROM t ORDER BY id").fetchall()


@pytest.mark.db
def test_a_seed_after_a_nested_block_comment_runs(tmp_path: Path, conn: Conn) -> None:
    text = "/* a /* b */ still comment */ INSERT INTO t VALUES (1, 'a');\n"
    assert seed(conn, fixture_of(tmp_path, {"seed.sql": text})) is None
    assert rows(conn) == [(1, "a")]


@pytest.mark.db
def test_a_server_error_position_names_the_line_inside_the_statement(
    tmp_path: Path, conn: Conn
) -> None:
    text = "-- two lines of comment\n-- before\nINSERT INTO t\nVALUES (1, nosuch);\n"
    failure = seed(conn, fixture_of(tmp_path, {"seed.sql": text}))
    assert failure is not None and failure.where == "up/1/seed.sql:4", failure


@pytest.mark.db
def test_a_seed_commits_all_or_nothing(tmp_path: Path, conn: Conn) -> None:
    good = fixture_of(tmp_path / "a", {"seed.sql": "INSERT INTO t VALUES (1, 'a');\n"})
    assert seed(conn, good) is None
    bad = fixture_of(
        tmp_path / "b",
        {"seed.sql": "INSERT INTO t VALUES (2, 'b');\n\nINSERT INTO t\nVALUES (3, NULL);\n"},
    )
    failure = seed(conn, bad)
    assert failure is not None
    assert failure.where == "up/1/seed.sql:3"
    assert failure.statement == "INSERT INTO t\nVALUES (3, NULL)"
    assert 'null value in column "name"' in failure.message
    assert failure.sqlstate == "23502"
    assert rows(conn) == [(1, "a")]  # row 2 was rolled back with the failing statement


@pytest.mark.db
def test_every_failing_check_is_reported_and_nothing_changes(tmp_path: Path, conn: Conn) -> None:
    conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    fixture = fixture_of(
        tmp_path,
        {
            "check.sql": (
                "SELECT count(*) = 2 FROM t;\n"
                "SELECT name = 'a' FROM t ORDER BY id;\n"
                "SELECT NULL::boolean;\n"
                "SELECT 1 WHERE false;\n"
                "SELECT missing FROM t;\n"
                "DELETE FROM t;\n"  # a statement that succeeds passes; it is rolled back
            )
        },
    )
    conn.execute("INSERT INTO t VALUES (3, 'c')")
    failures = check(conn, fixture)
    assert [(f.line, f.message) for f in failures] == [
        (1, "returned false"),
        (2, "returned false in row 2 of 3"),
        (3, "returned NULL"),
        (4, "returned no rows (a check must return a row whose first column is true)"),
        (5, 'column "missing" does not exist'),
    ]
    assert len(rows(conn)) == 3


@pytest.mark.db
def test_a_check_that_holds_passes(tmp_path: Path, conn: Conn) -> None:
    conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    fixture = fixture_of(
        tmp_path, {"check.sql": "SELECT name <> '' FROM t;\nSELECT 'text counts as true';\n"}
    )
    assert check(conn, fixture) == ()


@pytest.mark.db
def test_python_fixtures_seed_and_check(tmp_path: Path, conn: Conn) -> None:
    fixture = fixture_of(
        tmp_path,
        {
            "fixture.py": (
                "def seed(conn):\n"
                "    conn.execute('INSERT INTO t VALUES (%s, %s)', (7, 'py'))\n"
                "\n"
                "\n"
                "def check(conn):\n"
                "    (count,) = conn.execute('SELECT count(*) FROM t').fetchone()\n"
                "    assert count == 2, f'expected 2 rows, found {count}'\n"
            )
        },
    )
    assert seed(conn, fixture) is None
    assert rows(conn) == [(7, "py")]
    failures = check(conn, fixture)
    assert len(failures) == 1
    assert failures[0].where == "up/1/fixture.py:7"
    assert failures[0].message == "AssertionError: expected 2 rows, found 1"
    assert "assert count == 2" in failures[0].statement


@pytest.mark.db
def test_python_fixture_errors_are_failures_not_crashes(tmp_path: Path, conn: Conn) -> None:
    broken = fixture_of(
        tmp_path / "a",
        {"fixture.py": "def seed(conn):\n    conn.execute('INSERT INTO nowhere VALUES (1)')\n"},
    )
    failure = seed(conn, broken)
    assert failure is not None
    assert failure.where == "up/1/fixture.py:2"
    assert failure.message == 'relation "nowhere" does not exist'
    falsy = fixture_of(tmp_path / "b", {"fixture.py": "def check(conn):\n    return False\n"})
    assert [f.message for f in check(conn, falsy)] == ["check(conn) returned False"]
    unimportable = fixture_of(tmp_path / "c", {"fixture.py": "import no_such_module\n"})
    failure = seed(conn, unimportable)
    assert failure is not None
    assert failure.message == "ModuleNotFoundError: No module named 'no_such_module'"
    assert failure.where == "up/1/fixture.py:1"
