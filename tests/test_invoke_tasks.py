"""The invoke collection, reused by another repository's tasks.py in two lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rollsafe.engines import Database
from rollsafe.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED
from rollsafe.invoke_tasks import namespace
from tests.gitrepo import GitRepo, migration

TASKS_PY = "from rollsafe.invoke_tasks import namespace\n__all__ = ['namespace']\n"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A team's repository: two migrations, an offline one, and rollsafe's tasks."""
    git = GitRepo(tmp_path / "team")
    git.commit("tasks", {"tasks.py": TASKS_PY})
    git.commit("first", migration(1, "a", "-- compat: live\nCREATE TABLE a (id int);\n"))
    git.commit("second", migration(2, "b", "-- compat: offline\nDROP TABLE a;\n"))
    return git


def invoke(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=repo.path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_collection_lists_the_commands() -> None:
    assert set(namespace.task_names) >= {
        "release-table",
        "which",
        "upgrade-plan",
        "release",
        "lint",
        "migrate",
    }


def test_release_table_writes_then_checks(repo: GitRepo) -> None:
    done = invoke(repo, "release-table")
    assert done.returncode == 0, done.stderr
    assert (repo.path / "releases" / "DEPLOYING.md").is_file()
    again = invoke(repo, "release-table", "--check")
    assert again.returncode == 0, again.stdout + again.stderr
    repo.commit("third", migration(3, "c", "-- compat: live\nCREATE TABLE c (id int);\n"))
    stale = invoke(repo, "release-table", "--check")
    assert stale.returncode == EXIT_CHECK_FAILED


def test_config_flags_reach_the_command(repo: GitRepo, tmp_path: Path) -> None:
    done = invoke(repo, "release-table", "--deploying", "docs/DEPLOY.md")
    assert done.returncode == 0, done.stderr
    assert (repo.path / "docs" / "DEPLOY.md").is_file()
    assert not (repo.path / "releases" / "DEPLOYING.md").exists()


def test_which_takes_the_cl_as_a_positional(repo: GitRepo) -> None:
    done = invoke(repo, "which", "3")
    assert done.returncode == 0, done.stderr
    assert "schema:  2" in done.stdout


def test_unknown_cl_is_one_line_and_exit_2(repo: GitRepo) -> None:
    done = invoke(repo, "which", "42")
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("rollsafe: CL 42: ")
    assert "Traceback" not in done.stderr


def test_upgrade_plan_names_the_offline_step(repo: GitRepo) -> None:
    done = invoke(repo, "upgrade-plan", "--from", "2", "--to", "3", "--format", "json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert [step["upgrade"] for step in plan["steps"]] == ["offline"]
    repo.commit("third", migration(3, "c", "-- compat: live\nCREATE TABLE c (id int);\n"))
    live = invoke(repo, "upgrade-plan", "--from", "3", "--to", "4", "--format", "json")
    assert [step["upgrade"] for step in json.loads(live.stdout)["steps"]] == ["live"], live.stderr


def test_missing_required_flag_is_one_line(repo: GitRepo) -> None:
    done = invoke(repo, "upgrade-plan", "--from", "2")
    assert done.returncode == EXIT_BAD_INPUT
    assert "needs --from CL and --to CL" in done.stderr


def test_migrate_applies_and_reports_status(repo: GitRepo, database: Database) -> None:
    applied = invoke(repo, "migrate", "--dsn", database.dsn)
    assert applied.returncode == 0, applied.stderr
    status = invoke(repo, "migrate", "--dsn", database.dsn, "--status", "--format", "json")
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert (state["version"], state["dirty"], state["pending"]) == (2, False, [])
    down = invoke(repo, "migrate", "--dsn", database.dsn, "--down-to", "1")
    assert down.returncode == 0, down.stderr
    again = invoke(repo, "migrate", "--dsn", database.dsn, "--status", "--format", "json")
    assert json.loads(again.stdout)["pending"] == [2]


def test_migrate_refuses_two_actions(repo: GitRepo) -> None:
    done = invoke(repo, "migrate", "--dsn", "postgresql:///nowhere", "--to", "1", "--status")
    assert done.returncode == EXIT_BAD_INPUT
    assert "at most one of" in done.stderr


def test_a_bad_choice_is_one_line_and_exit_2(repo: GitRepo) -> None:
    done = invoke(repo, "lint", "--format", "xml")
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stderr == "rollsafe: bad --format 'xml' (use text or json or github or sarif)\n"


def test_debug_shows_the_traceback_before_the_line(repo: GitRepo) -> None:
    done = invoke(repo, "which", "42", "--debug")
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert done.stderr.splitlines()[-1].startswith("rollsafe: CL 42: ")


def test_every_task_takes_the_flags_of_its_console_command() -> None:
    """Both are built from one description: a flag missing from either side fails here."""
    from rollsafe.cli import build_parser

    (subparsers,) = [a for a in build_parser()._actions if a.dest == "command"]
    assert isinstance(subparsers.choices, dict)
    for name in namespace.task_names:
        options = {
            option
            for action in subparsers.choices[name]._actions
            for option in action.option_strings or [f"--{action.dest}"]
        } - {"-h", "--help"}
        task = namespace[name]
        flags = {f"--{n}" for argument in task.get_arguments() for n in argument.names}
        assert flags == options, name
