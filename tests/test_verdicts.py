"""Upgrade and rollback verdicts kept under .git/rollsafe, and which modules each command loads.

Why: a release engineer types ``rollsafe which 1565`` many times a day; the
SQL parser and the database driver cost several interpreter starts to
import, so commands that do not use them must not load them, and a kept
verdict must be exactly what lint would infer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rollsafe.lint import CompatVerdict, compat_of, rollback_of, verdict_cache_file, verdicts_of
from rollsafe.migrate import Catalogue, catalogue_from_files
from tests.gitrepo import GitRepo, migration

UNDECLARED = "ALTER TABLE t DROP COLUMN c;\n"


def catalogue(files: dict[str, str | None]) -> Catalogue:
    return catalogue_from_files("migrations", {k: v for k, v in files.items() if v is not None})


def test_kept_verdicts_equal_the_inferred_ones(tmp_path: Path) -> None:
    files = {
        **migration(1, "t", "-- compat: live\nCREATE TABLE t (c int);\n"),
        **migration(2, "drop", UNDECLARED),
        **migration(3, "off", "-- compat: offline\nALTER TABLE t RENAME TO u;\n"),
        **migration(4, "add", "ALTER TABLE u ADD COLUMN d int;\n"),
    }
    found = catalogue(files)
    cache = verdict_cache_file(tmp_path)
    cold = verdicts_of(found, cache=cache)
    assert cold[0] == {m.version: compat_of(m) for m in found}
    assert cold[1] == {m.version: rollback_of(m) for m in found}
    assert cold[0][2].compat == "offline" and cold[0][2].inferred
    assert cold[0][4].compat == "live" and cold[0][4].inferred
    assert cold[1][1].mode == "offline"  # creates a table new code reads
    assert len(json.loads(cache.read_text())) == 4
    assert verdicts_of(found, cache=cache) == cold


def test_a_kept_verdict_is_used_and_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    cache = verdict_cache_file(tmp_path)
    verdicts_of(catalogue(migration(2, "drop", UNDECLARED)), cache=cache)
    # Tamper with the kept verdict: a run that uses it shows the tampered value.
    data = json.loads(cache.read_text())
    (key,) = data
    data[key][:3] = ["live", True, []]
    cache.write_text(json.dumps(data))
    kept = verdicts_of(catalogue(migration(2, "drop", UNDECLARED)), cache=cache)[0]
    assert kept[2] == CompatVerdict("live", True, ())
    # Another text (or ignore list) is another entry: inferred again.
    edited = catalogue(migration(2, "drop", UNDECLARED + "-- edited\n"))
    assert verdicts_of(edited, cache=cache)[0][2].compat == "offline"


@pytest.mark.parametrize("content", ["", "{not json", '{"k": ["maybe", 1, 2, 3, 4, 5]}', "[]"])
def test_a_damaged_file_is_ignored_and_rewritten(tmp_path: Path, content: str) -> None:
    cache = verdict_cache_file(tmp_path)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(content)
    found = catalogue(migration(2, "drop", UNDECLARED))
    assert verdicts_of(found, cache=cache)[0][2] == compat_of(found.migrations[0])
    assert len(json.loads(cache.read_text())) == 1


def _loaded(repo: Path, *argv: str) -> list[str]:
    """The heavy modules a command loads, run as the console script runs it."""
    code = (
        "import sys\n"
        "from rollsafe.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('psycopg', 'pglast', 'git', 'invoke', 'nox')\n"
        "print(sorted(h for h in heavy if h in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        cwd=repo,
        check=False,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))
    return loaded


def test_each_command_loads_only_what_it_uses(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("one", migration(1, "a", "-- compat: live\nCREATE TABLE a (id int);\n"), change=10)
    repo.commit("two", migration(2, "b", "ALTER TABLE a ADD COLUMN b int;\n"), change=11)
    repo.commit("three", migration(3, "c", UNDECLARED.replace("t", "a").replace(" c", " b")))
    path = str(repo.path)
    assert _loaded(repo.path, "--help") == []
    # The first run infers the undeclared verdicts (the parser); later runs keep them.
    assert "pglast" in _loaded(repo.path, "which", "11", "--repo", path)
    assert _loaded(repo.path, "which", "11", "--repo", path) == ["git"]
    assert _loaded(repo.path, "upgrade-plan", "--from", "10", "--to", "11", "--repo", path) == [
        "git"
    ]
    status = ["migrate", "--status", "--dsn", "postgresql:///none?host=/nonexistent", "--repo"]
    assert "git" not in _loaded(repo.path, *status, path)
