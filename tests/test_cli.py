"""The console script: one line per error, stable exit codes, flags that override config."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from rollsafe.cli import build_parser, main
from rollsafe.commands._spec import COMMANDS, CONFIG, config_from
from rollsafe.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED
from tests.gitrepo import GitRepo, migration


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A small repository with two migrations in two commits."""
    git = GitRepo(tmp_path / "repo")
    git.commit("first", migration(1, "a", "-- compat: live\nCREATE TABLE a (id int);\n"))
    git.commit("second", migration(2, "b", "-- compat: live\nCREATE TABLE b (id int);\n"))
    return git


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "rollsafe.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_subcommand_is_registered() -> None:
    parser = build_parser()
    for command in ("release-table", "which", "upgrade-plan", "release", "lint", "migrate"):
        args = parser.parse_args([command, *_minimal(command)])
        assert args.spec.name == command
        assert callable(args.spec.resolve()), command


def _minimal(command: str) -> list[str]:
    return {
        "which": ["1"],
        "upgrade-plan": ["--from", "1", "--to", "2"],
        "release": ["--cl", "1"],
    }.get(command, [])


def test_config_flags_override_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.rollsafe]\nmigrations = "db"\n')
    args = build_parser().parse_args(
        ["lint", "--repo", str(tmp_path), "--migrations", "sql", "--baseline", "3"]
    )
    config = config_from(args)
    assert config.migrations == "sql"
    assert config.baseline == 3
    assert len(CONFIG) == 12


def test_bad_input_is_one_line_and_exit_2(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["which", "99", "--repo", str(repo.path)])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    lines = captured.err.strip().splitlines()
    assert lines == [lines[0]]
    assert lines[0].startswith("rollsafe: CL 99: ")
    assert "Traceback" not in captured.err


def test_debug_shows_the_traceback(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["which", "99", "--repo", str(repo.path), "--debug"])
    assert code == EXIT_BAD_INPUT
    assert "Traceback" in capsys.readouterr().err


def test_bad_config_value_is_one_line(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["release-table", "--repo", str(repo.path), "--cl-strategy", "random"])
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "--cl-strategy" in err
    assert "auto, gerrit, ordinal, tag" in err


def test_not_a_repository_is_one_line(tmp_path: Path) -> None:
    done = run_script("release-table", "--repo", str(tmp_path), cwd=tmp_path)
    assert done.returncode == EXIT_BAD_INPUT
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_release_table_then_check_in_a_fresh_process(repo: GitRepo) -> None:
    written = run_script("release-table", cwd=repo.path)
    assert written.returncode == 0, written.stderr
    deploying = repo.path / "releases" / "DEPLOYING.md"
    assert "<!-- rollsafe:table:begin -->" in deploying.read_text()
    checked = run_script("release-table", "--check", cwd=repo.path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    repo.commit("third", migration(3, "c", "-- compat: offline\nDROP TABLE a;\n"))
    stale = run_script("release-table", "--check", cwd=repo.path)
    assert stale.returncode == EXIT_CHECK_FAILED
    assert "+| 2 | 3 |" in stale.stdout


def test_every_command_has_a_handler_taking_its_parsed_flags() -> None:
    """A handler named wrongly in a description would only fail when its command runs."""
    import inspect

    for command in COMMANDS:
        handler = command.resolve()
        assert list(inspect.signature(handler).parameters) == ["config", "args"], command.name


def test_running_the_release_table_loads_no_database_or_pair_machinery(repo: GitRepo) -> None:
    code = (
        "import sys\n"
        "from rollsafe.cli import main\n"
        "main(['release-table', '--format', 'json', '--repo', sys.argv[1]])\n"
        "heavy = ('psycopg', 'rollsafe.pairs', 'rollsafe.commands.pairs', 'rollsafe.engines',\n"
        "         'rollsafe.migrate._migrator')\n"
        "print(sorted(m for m in sys.modules\n"
        "             if any(m == h or m.startswith(h + '.') for h in heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(repo.path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_building_the_parser_loads_no_command_module_nor_driver() -> None:
    code = (
        "import sys\n"
        "from rollsafe.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pglast', 'psycopg', 'git')\n"
        "             or m.startswith('rollsafe.commands.') and m != 'rollsafe.commands._spec'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_migrate_names_the_engines_url_variable() -> None:
    from rollsafe.commands._spec import URL_ENV as described
    from rollsafe.engines import URL_ENV

    assert described == URL_ENV


def test_no_cache_is_accepted_by_every_subcommand() -> None:
    parser = build_parser()
    for command in COMMANDS:
        args = parser.parse_args([command.name, *_minimal(command.name), "--no-cache"])
        assert args.no_cache, command.name


def test_the_garbage_collector_is_back_on_after_a_command(repo: GitRepo) -> None:
    assert main(["release-table", "--format", "json", "--repo", str(repo.path)]) == 0
    assert gc.isenabled()


def test_public_api_is_importable_and_cheap() -> None:
    """``import rollsafe`` must not load the database stack: every command pays for it."""
    code = (
        "import sys, rollsafe\n"
        "assert 'psycopg' not in sys.modules and 'pglast' not in sys.modules\n"
        "assert sorted(rollsafe.__all__) == sorted(rollsafe._EXPORTS)\n"
        "for name in rollsafe.__all__: getattr(rollsafe, name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
