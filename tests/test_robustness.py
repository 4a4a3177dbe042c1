"""Bad input and interruptions, as a new user meets them: each probe that once failed stays fixed.

Why: the happy paths have their own tests; these are the cases a careful
user tries on day one (a huge bulk-load migration, a symlinked file, a
folder name typo, a bare clone, a closed pipe, a full disk), each of which
once gave a traceback, a silently wrong answer or a half-written file.
Everything is real: git repositories built on the fly, the console script
in a new interpreter, real file systems.  The probes of interruptions
(signals during a server's start and cleanup) live in test_engines.py and
the fixture probes in test_pairs_robustness.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rollsafe._sqltext import split_statements
from rollsafe.lint._sql import analyse
from tests.gitrepo import GitRepo, migration

MACHINES = "-- compat: live\nCREATE TABLE machines (id bigint PRIMARY KEY, name text);\n"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    git = GitRepo(tmp_path / "repo")
    git.commit("machines", migration(1, "machines", MACHINES))
    git.commit("arch", migration(2, "arch", "-- compat: live\nALTER TABLE machines ADD x int;\n"))
    return git


def script(*args: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    """The console script in a new interpreter, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "rollsafe.cli", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# -- 1. big files: line numbers from one pass over the file ---------------------------------------


def bulk(count: int, *, text: str = "machine") -> list[str]:
    return [f"INSERT INTO machines (id, name) VALUES ({i}, '{text}-{i}');" for i in range(count)]


@pytest.mark.parametrize("text", ["machine", "maschine-größe-✓"])
def test_findings_after_a_bulk_load_name_their_line(text: str) -> None:
    lines = [*bulk(20_000, text=text), "ALTER TABLE machines DROP COLUMN name;"]
    (hit,) = analyse("\n".join(lines) + "\n").hits
    assert (hit.rule, hit.line) == ("drop-column", 20_001)


def test_a_statement_the_parser_rejects_keeps_the_lines_of_the_rest() -> None:
    lines = [
        "CREATE TABLE t (id INT, INDEX (id));",  # CockroachDB-only: scanner split
        *bulk(5_000),
        "ALTER TABLE machines DROP COLUMN name;",
    ]
    hits = {(hit.rule, hit.line) for hit in analyse("\n".join(lines)).hits}
    assert hits == {("not-analysed", 1), ("drop-column", 5_002)}


def test_inserts_are_still_read_when_they_use_a_label_added_in_the_file() -> None:
    sql = "ALTER TYPE state ADD VALUE 'paused';\n" + "\n".join(bulk(3)) + "\n"
    sql += "INSERT INTO jobs (state) VALUES ('paused');\n"
    rules = [(hit.rule, hit.line) for hit in analyse(sql).hits]
    assert ("enum-value-same-transaction", 5) in rules


def test_the_migrator_maps_statements_to_lines_in_one_pass() -> None:
    sql = "-- compat: live\n\n" + "\n".join(bulk(10_000)) + "\n/* end */ SELECT 1;\n"
    statements = split_statements(sql)
    assert statements is not None
    assert [s.line for s in statements[:2]] == [3, 4]
    assert statements[-1].line == 10_003 and statements[-1].text.startswith("SELECT 1")
