"""SQL as text: where statements end and start, and which file line a server error is on.

Why: the migrator runs files statement by statement and the pair tests run
seed and check files the same way; a cut in the wrong place runs half a
statement, and a wrong line sends the reader to the wrong place.
"""

from __future__ import annotations

from pathlib import Path

import pglast
import pytest

from rollsafe._sqltext import error_line, error_offset, line_at, skip_comments, split_statements

ROOT = Path(__file__).resolve().parent.parent


def texts(sql: str) -> list[str]:
    found = split_statements(sql)
    assert found is not None
    return [s.text for s in found]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("/* a /* b */ still comment */ INSERT INTO t VALUES (1);", ["INSERT INTO t VALUES (1)"]),
        (
            "SELECT 1 /* x /* y */ ; */ + 1; SELECT 2",
            ["SELECT 1 /* x /* y */ ; */ + 1", "SELECT 2"],
        ),
        ("SELECT $$;$$; SELECT $fn$ $$ ; $fn$;", ["SELECT $$;$$", "SELECT $fn$ $$ ; $fn$"]),
        ("SELECT $1; SELECT a$b FROM t;", ["SELECT $1", "SELECT a$b FROM t"]),
        (
            "SELECT E'it\\'s;'; SELECT e'\\\\'; SELECT 2",
            ["SELECT E'it\\'s;'", "SELECT e'\\\\'", "SELECT 2"],
        ),
        ("SELECT 'a\\'; SELECT 'b''c;'", ["SELECT 'a\\'", "SELECT 'b''c;'"]),
        ('SELECT "we;ird""x" FROM t; SELECT 2', ['SELECT "we;ird""x" FROM t', "SELECT 2"]),
        ("SELECT 1 -- ; not the end\n+ 1;", ["SELECT 1 -- ; not the end\n+ 1"]),
        ("CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2);", None),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n"
            "  SELECT CASE WHEN true THEN 2 END;\nEND;\nSELECT 3;",
            None,
        ),
        ("CREATE TABLE t (begin int); SELECT 1", ["CREATE TABLE t (begin int)", "SELECT 1"]),
        ("BEGIN; SELECT 1; COMMIT;", ["BEGIN", "SELECT 1", "COMMIT"]),
        (";; -- only a comment\n", []),
    ],
)
def test_statements_end_where_postgresql_ends_them(sql: str, expected: list[str] | None) -> None:
    if expected is None:  # what PostgreSQL's own parser cuts
        expected = [sql[s].strip() for s in pglast.split(sql, with_parser=True, only_slices=True)]
    assert texts(sql) == expected


def test_a_statement_starts_at_its_first_token_with_its_line() -> None:
    sql = "-- top\nCREATE TABLE a (id int);\n/* note\n */\nINSERT INTO a\nVALUES (1); SELECT ';';\n"
    found = split_statements(sql)
    assert found is not None
    assert [(s.line, s.text) for s in found] == [
        (2, "CREATE TABLE a (id int)"),
        (5, "INSERT INTO a\nVALUES (1)"),
        (6, "SELECT ';'"),
    ]
    assert all(sql[s.start : s.end] == s.text for s in found)


@pytest.mark.parametrize(
    "sql", ["SELECT 'unterminated", "SELECT $x$ open", 'SELECT "open', "SELECT /* /* */"]
)
def test_an_unclosed_quote_or_comment_cannot_be_split(sql: str) -> None:
    assert split_statements(sql) is None


def test_other_engines_syntax_is_split_too() -> None:
    sql = "CREATE TABLE a (id STRING) INTERLEAVE IN PARENT b (id);\n-- x\nSELECT 1"
    found = split_statements(sql)
    assert found is not None and [s.line for s in found] == [1, 3]


def test_every_sql_file_of_the_repository_splits_like_postgresql() -> None:
    files = sorted(
        p for p in ROOT.glob("**/*.sql") if ".git" not in p.parts and ".nox" not in p.parts
    )
    assert files
    for path in files:
        sql = path.read_text(encoding="utf-8")
        try:
            slices = pglast.split(sql, with_parser=True, only_slices=True)
        except pglast.parser.ParseError:
            continue
        wanted = [sql[s].strip() for s in slices]
        assert texts(sql) == [w for w in wanted if w], path


def test_comments_are_skipped_nested_ones_whole() -> None:
    sql = "  -- a\n/* b /* c */ d */ SELECT 1"
    assert sql[skip_comments(sql, 0) :] == "SELECT 1"
    assert skip_comments("/* open", 0) == len("/* open")


def test_a_server_error_position_becomes_a_file_line() -> None:
    sent = "INSERT INTO t\nVALUES (1, nosuch)"
    position = sent.index("nosuch") + 1  # PostgreSQL's positions are 1-based characters
    assert error_line(position, sent, first_line=10) == 11
    prefix = "PREPARE q AS "
    assert error_line(position + len(prefix), sent, prefix=len(prefix), first_line=3) == 4
    assert error_line(None, sent) is None
    assert error_line(len(sent) + 5, sent) is None  # outside the text sent: no guess
    assert error_offset(1, sent) == 0
    assert line_at("a\nb\nc", 2) == 2 and line_at("a", 99) == 1
