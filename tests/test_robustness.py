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

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollsafe._files import write_atomic
from rollsafe._sqltext import split_statements
from rollsafe.cli import main
from rollsafe.lint._sql import analyse
from rollsafe.table._deploying import BEGIN, END, merge_document
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


# -- 2. a symlinked migration: refused everywhere, with one line ----------------------------------


@pytest.fixture
def linked(repo: GitRepo, tmp_path: Path) -> GitRepo:
    """Migration 3 is a symbolic link to a file outside the repository, committed."""
    outside = tmp_path / "elsewhere.sql"
    outside.write_text("-- compat: live\nCREATE TABLE linked (id int);\n")
    (repo.path / "migrations" / "3_link.up.sql").symlink_to(outside)
    repo.commit("link", {"migrations/3_link.down.sql": "DROP TABLE linked;\n"})
    return repo


@pytest.mark.parametrize(
    "command",
    [
        ["lint", "--no-history"],
        ["lint"],
        ["release-table"],
        ["release-table", "--check"],
        ["upgrade-pairs", "--list"],
        ["migrate", "--status", "--dsn", "postgresql://nobody@127.0.0.1:1/none"],
    ],
)
def test_a_symlinked_migration_is_refused_by_every_command(
    linked: GitRepo, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (linked.path / "migrations" / "3_link.up.sql").is_symlink()
    before = sorted(p.name for p in linked.path.rglob("*") if ".git" not in p.parts)
    code = main([*command, "--repo", str(linked.path)])
    output = capsys.readouterr()
    if command[0] == "lint":  # lint reports it as a finding of its own, with lint's exit code
        assert code == 1
        line = output.out  # findings are grouped under their file's name
    else:
        assert code == 2
        line = one_line(output.err)
    assert "migrations/3_link.up.sql" in line and "symbolic link" in line
    assert sorted(p.name for p in linked.path.rglob("*") if ".git" not in p.parts) == before


# -- 5. a migrations folder that never existed ----------------------------------------------------


@pytest.mark.parametrize(
    "command", [["release-table"], ["upgrade-pairs", "--list"], ["which", "1"]]
)
def test_a_folder_that_never_existed_is_an_error_naming_it(
    repo: GitRepo, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--repo", str(repo.path), "--migrations", "nope"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "`nope`" in line and "--migrations" in line
    assert not (repo.path / "releases").exists()


def test_a_folder_that_existed_and_was_deleted_stays_a_history_event(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["1_machines.up", "1_machines.down", "2_arch.up", "2_arch.down"]
    repo.commit("drop all", {f"migrations/{name}.sql": None for name in names})
    (repo.path / "migrations").rmdir()
    assert not (repo.path / "migrations").exists()
    assert main(["release-table", "--repo", str(repo.path)]) == 0


def test_a_folder_only_in_the_work_tree_is_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git = GitRepo(tmp_path / "new")
    git.commit("readme", {"README.md": "new service\n"})
    (git.path / "migrations").mkdir()
    assert main(["release-table", "--repo", str(git.path)]) == 0


# -- 6. --repo on a bare repository: reading works, writing needs a work tree ---------------------


@pytest.fixture
def bare(repo: GitRepo, tmp_path: Path) -> Path:
    path = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(path)], check=True)
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["release-table", "--format", "json"],
        ["which", "2"],
        ["upgrade-plan", "--from", "1", "--to", "2"],
    ],
)
def test_a_bare_repository_can_be_read(
    bare: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--repo", str(bare)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", [["release-table"], ["release", "--cl", "2"]])
def test_writing_into_a_bare_repository_is_one_line(
    bare: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--repo", str(bare)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "bare repository" in line and "work tree" in line
    assert not (bare / "releases").exists()


# -- 7. a DEPLOYING file that is a symbolic link -------------------------------------------------


def test_a_symlinked_deploying_file_is_written_through_the_link(
    repo: GitRepo, tmp_path: Path
) -> None:
    docs = repo.path / "docs"
    docs.mkdir()
    target = docs / "DEPLOYING.md"
    target.write_text("# Team prose\n")
    (repo.path / "releases").mkdir()
    link = repo.path / "releases" / "DEPLOYING.md"
    link.symlink_to("../docs/DEPLOYING.md")
    assert main(["release-table", "--repo", str(repo.path)]) == 0
    assert link.is_symlink() and link.readlink() == Path("../docs/DEPLOYING.md")
    assert target.read_text().startswith("# Team prose\n") and END in target.read_text()
    assert main(["release-table", "--check", "--repo", str(repo.path)]) == 0
    assert sorted(p.name for p in docs.iterdir()) == ["DEPLOYING.md"]  # no temporary left


def test_write_atomic_replaces_the_target_of_a_link_chain(tmp_path: Path) -> None:
    target = tmp_path / "real" / "file.md"
    target.parent.mkdir()
    target.write_text("old\n")
    target.chmod(0o640)
    middle = tmp_path / "middle.md"
    middle.symlink_to(target)
    link = tmp_path / "link.md"
    link.symlink_to(middle)
    write_atomic(link, "new\n")
    assert link.is_symlink() and middle.is_symlink()
    assert target.read_text() == "new\n" and target.stat().st_mode & 0o777 == 0o640
    dangling = tmp_path / "dangling.md"
    dangling.symlink_to(tmp_path / "missing" / "made.md")
    write_atomic(dangling, "made\n")
    assert dangling.is_symlink() and (tmp_path / "missing" / "made.md").read_text() == "made\n"


# -- 8. bytes after the end marker ---------------------------------------------------------------


@pytest.mark.parametrize("after", ["", "\n", "\r\n", "  \n\nprose after\n", "\n\n"])
def test_bytes_after_the_end_marker_are_kept(after: str) -> None:
    existing = f"# Deploying\n\n{BEGIN}\nold table\n{END}{after}"
    block = f"{BEGIN}\nnew table\n{END}\n"
    merged = merge_document(existing, block, file="DEPLOYING.md")
    assert merged == f"# Deploying\n\n{BEGIN}\nnew table\n{END}{after}"
    assert merge_document(merged, block, file="DEPLOYING.md") == merged


# -- 13. a closed pipe or a full disk on stdout --------------------------------------------------


COMMANDS = [
    ["release-table", "--format", "json"],
    ["release-table", "--check"],
    ["which", "1"],
    ["upgrade-plan", "--from", "1", "--to", "2"],
    ["lint"],
    ["lint", "--format", "json"],
    ["upgrade-pairs", "--list"],
    ["--help"],
    ["release-table", "--help"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_closed_pipe_is_a_quiet_exit(repo: GitRepo, command: list[str]) -> None:
    assert main(["release-table", "--repo", str(repo.path)]) == 0
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte, as with `| head -0`
    try:
        done = script(*command, "--repo", str(repo.path), stdout=write)
    finally:
        os.close(write)
    assert done.returncode in (0, 141), done.stderr
    assert done.stderr == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_full_disk_is_one_line(repo: GitRepo, command: list[str]) -> None:
    assert main(["release-table", "--repo", str(repo.path)]) == 0
    with Path("/dev/full").open("w") as full:
        done = script(*command, "--repo", str(repo.path), stdout=full.fileno())
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line == "rollsafe: cannot write the output: No space left on device"


def test_the_shortcuts_for_bulk_loads_still_see_what_hides_in_them() -> None:
    from rollsafe.lint._dialect import cockroach_sql
    from rollsafe.migrate._statements import no_transaction_reason, one_query_refusal

    rows = "\n".join(bulk(2_000))
    assert no_transaction_reason(rows) is None and cockroach_sql(rows) == ()
    late_index = f"{rows}\nCREATE INDEX CONCURRENTLY machines_name ON machines (name);\n"
    assert no_transaction_reason(late_index) == "CREATE INDEX CONCURRENTLY"
    assert one_query_refusal(late_index) == (2_001, "CREATE INDEX CONCURRENTLY")
    cast = f"{rows}\nINSERT INTO machines (name) VALUES ('x'::STRING);\n"
    assert [(use.line, use.construct) for use in cockroach_sql(cast)] == [(2_001, "STRING type")]
    hint = f"{rows}\nINSERT INTO machines SELECT * FROM machines@machines_pkey;\n"
    assert [use.construct for use in cockroach_sql(hint)] == ["@ index hint"]
