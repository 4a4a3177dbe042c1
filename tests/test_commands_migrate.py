"""``rollsafe migrate``: the operator's command, its DSN handling and its one-line errors.

Why: an operator types a DSN with a password into a terminal whose output
ends up in CI logs and tickets; the password must never be printed, and a
typo must give one line and exit code 2, not a traceback.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from rollsafe import cli
from rollsafe._db import mask_dsn, parse_target, scrub
from rollsafe.commands.migrate import (
    migrate,
    parse_version,
    run_migrate,
    terminal_progress,
    versions_text,
)
from rollsafe.config import Config
from rollsafe.engines import URL_ENV, Database
from rollsafe.errors import EXIT_BAD_INPUT, ConfigError, DatabaseAhead, DatabaseError

MIGRATIONS = {
    "000001_machines.up.sql": "CREATE TABLE machines (id bigint PRIMARY KEY);\n",
    "000001_machines.down.sql": "DROP TABLE machines;\n",
    "000002_sessions.up.sql": "CREATE TABLE sessions (id bigint PRIMARY KEY);\n",
    "000002_sessions.down.sql": "DROP TABLE sessions;\n",
}
PASSWORD = "s3cret-Pa55"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A work tree with a migrations folder (the command reads the work tree, not git)."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for name, text in MIGRATIONS.items():
        (folder / name).write_text(text)
    return tmp_path


def url_of(db: Database, **query: str) -> str:
    """A golang-migrate style URL for a database reached over a Unix socket."""
    parts = conninfo_to_dict(db.dsn)
    params = {"host": str(parts["host"]), "port": str(parts.get("port", "5432")), **query}
    tail = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return f"postgres://{parts['user']}:{PASSWORD}@/{parts['dbname']}?{tail}"


# -- DSNs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (
            "postgresql://alice:s3cret@db.example:5432/app",
            "postgresql://alice:***@db.example:5432/app",
        ),
        ("postgres://alice:p%40ss@/app?host=/run/pg", "postgres://alice:***@/app?host=/run/pg"),
        (
            "host=db user=alice password=s3cret dbname=app",
            "host=db user=alice password=*** dbname=app",
        ),
        ("host=db password='a b\\'c' dbname=app", "host=db password=*** dbname=app"),
        (
            "postgresql://db/app?user=alice&password=s3cret&sslmode=require",
            "postgresql://db/app?user=alice&password=***&sslmode=require",
        ),
        ("postgresql://alice@db/app", "postgresql://alice@db/app"),
        # Unencoded odd characters: everything up to the authority's last `@` is masked.
        ("postgresql://app:p@ss-XYZ@host/db", "postgresql://app:***@host/db"),
        ("postgresql://app:a:b@host:5432/db", "postgresql://app:***@host:5432/db"),
        (
            "postgresql://app:a/b@c@host/db?sslmode=disable",
            "postgresql://app:***@host/db?sslmode=disable",
        ),
        ("postgresql://app:100%@host/db", "postgresql://app:***@host/db"),
    ],
)
def test_passwords_are_masked_in_every_dsn_form(dsn: str, shown: str) -> None:
    assert mask_dsn(dsn) == shown


@pytest.mark.parametrize(
    "dsn", ["postgresql://app:p@ss@127.0.0.1:1/db", "postgresql://app:a/b@c@host/db"]
)
def test_an_unencoded_at_in_a_password_is_refused_without_leaking_it(dsn: str) -> None:
    # libpq would split at the first `@` and echo the rest ("ss@127.0.0.1") as a host name.
    with pytest.raises(DatabaseError) as caught:
        parse_target(dsn)
    message = str(caught.value)
    assert "percent-encode" in message and "%40" in message
    assert "ss@" not in message and "b@c" not in message and "***" in message


def test_an_encoded_at_and_an_at_free_url_are_accepted() -> None:
    assert parse_target("postgresql://app:p%40ss@127.0.0.1/db").dsn.endswith("@127.0.0.1/db")
    assert parse_target("postgresql:///db?host=/run/pg").dsn == "postgresql:///db?host=/run/pg"


def test_scrub_removes_the_password_wherever_it_appears() -> None:
    dsn = f"postgresql://alice:{PASSWORD}@db/app"
    assert PASSWORD not in scrub(f"server said {PASSWORD!r} and {dsn}", dsn)


def test_golang_migrate_urls_are_accepted() -> None:
    target = parse_target(
        f"cockroachdb://root:{PASSWORD}@127.0.0.1:26257/app?sslmode=disable"
        "&x-migrations-table=deploy_versions&x-lock-table=deploy_lock"
    )
    assert target.dsn == f"postgresql://root:{PASSWORD}@127.0.0.1:26257/app?sslmode=disable"
    assert target.options == {
        "x-migrations-table": "deploy_versions",
        "x-lock-table": "deploy_lock",
    }
    assert PASSWORD not in target.shown


def test_versions_on_the_command_line() -> None:
    assert parse_version("12") == 12
    assert parse_version("none") is None
    assert parse_version("-1") is None
    with pytest.raises(ConfigError, match="bad version `abc`"):
        parse_version("abc")
    with pytest.raises(ConfigError, match="an integer from 0 to 2\\^63-1"):
        parse_version("none", allow_none=False)


# -- the command -------------------------------------------------------------------------------


@pytest.mark.db
def test_a_bad_dsn_is_one_line_with_the_password_masked_and_exit_2(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = f"postgresql://alice:{PASSWORD}@/nodb?host=/nonexistent-rollsafe-socket-dir"
    code = cli.main(["migrate", "--repo", str(repo), "--dsn", dsn])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "rollsafe: postgresql://alice:***@/nodb?host=/nonexistent-rollsafe-socket-dir: "
    )
    assert "cannot connect" in lines[0]
    assert PASSWORD not in captured.err


def test_no_dsn_at_all_is_one_line(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    assert cli.main(["migrate", "--repo", str(repo), "--status"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rollsafe: no database to migrate (pass --dsn URL or set {URL_ENV})"
    )


@pytest.mark.db
def test_the_operator_moves_a_database_with_the_flags(
    repo: Path, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    url = url_of(database)
    base = ["migrate", "--repo", str(repo), "--dsn", url]
    assert cli.main([*base, "--to", "1"]) == 0
    out = capsys.readouterr().out
    assert "applied: 1\nnow at version 1 (clean)\npending: 2" in out
    assert f"database: {mask_dsn(url)}" in out and PASSWORD not in out
    assert cli.main(base) == 0
    assert "applied: 2\n" in capsys.readouterr().out
    assert cli.main([*base, "--down-to", "none"]) == 0
    assert "undone: 2, 1\nnow at no version" in capsys.readouterr().out
    assert cli.main([*base, "--goto", "2"]) == 0
    capsys.readouterr()
    assert cli.main([*base, "--force", "1"]) == 0
    assert "forced to version 1 (clean)" in capsys.readouterr().out
    assert cli.main([*base, "--status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == {
        "action": "status",
        "database": mask_dsn(url),
        "changed": [],
        "version": 1,
        "dirty": False,
        "pending": [2],
        "ahead": False,
        "files_at": None,
    }
    assert cli.main([*base, "--to", "5"]) == 2
    assert "version 5 is not a migration" in capsys.readouterr().err


@pytest.mark.db
def test_the_dsn_comes_from_the_environment_and_x_options_are_honoured(
    repo: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, url_of(database, **{"x-migrations-table": "deploy_versions"}))
    result = run_migrate(Config(repo=repo))
    assert result.changed == (1, 2)
    assert result.status.version == 2
    again = run_migrate(Config(repo=repo), action="status")
    assert again.status.version == 2 and again.changed == ()
    with psycopg.connect(database.dsn) as conn:
        assert conn.execute("SELECT version, dirty FROM deploy_versions").fetchall() == [(2, False)]


@pytest.mark.db
def test_an_ahead_database_is_reported_and_strict_fails(
    repo: Path, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Config(repo=repo)
    migrate(config, database.dsn)
    (repo / "migrations" / "000002_sessions.up.sql").unlink()
    (repo / "migrations" / "000002_sessions.down.sql").unlink()
    capsys.readouterr()
    assert migrate(config, database.dsn) == 0
    assert "newer than this code's newest migration: left alone" in capsys.readouterr().out
    with pytest.raises(DatabaseAhead, match="newer than this code's newest migration \\(1\\)"):
        migrate(config, database.dsn, strict=True)


@pytest.mark.db
def test_the_console_script_masks_the_password(repo: Path) -> None:
    dsn = f"postgresql://alice:{PASSWORD}@/nodb?host=/nonexistent-rollsafe-socket-dir"
    done = subprocess.run(
        [sys.executable, "-m", "rollsafe.cli", "migrate", "--repo", str(repo), "--dsn", dsn],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and PASSWORD not in done.stderr + done.stdout


def test_url_parameters_libpq_does_not_know_become_server_settings() -> None:
    """lib/pq sends unknown URL parameters as run-time settings; libpq's `options` does the same."""
    target = parse_target("postgres://u@h/db?search_path=app%20x,public&sslmode=disable&x-a=1")
    assert target.dsn == (
        "postgres://u@h/db?sslmode=disable&options=-c%20search_path%3Dapp%5C%20x%2Cpublic"
    )
    assert target.options == {"x-a": "1"} and target.url_path == "/db"


def test_long_lists_are_summarised() -> None:
    assert versions_text([1, 2, 3]) == "1, 2, 3"
    many = list(range(20240101000000, 20240101000300))
    assert versions_text(many) == "300 migrations, 20240101000000 to 20240101000299"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only_when_much_is_to_run() -> None:
    assert terminal_progress(io.StringIO()) is None
    screen = _Terminal()
    show = terminal_progress(screen)
    assert show is not None
    show(1, 5, 1)
    assert screen.getvalue() == ""  # a few files run too fast to need a counter
    show(1, 300, 20240101000000)
    show(2, 300, 20240101000001)
    assert screen.getvalue().endswith("\rmigrating: 2/300 (version 20240101000001)")


@pytest.mark.db
def test_three_hundred_migrations_are_one_line_and_report_progress(
    tmp_path: Path, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for index in range(300):
        version = 20240101000000 + index
        (folder / f"{version}_t{index}.up.sql").write_text(f"CREATE TABLE t{index} (id int);\n")
        (folder / f"{version}_t{index}.down.sql").write_text(f"DROP TABLE t{index};\n")
    seen: list[tuple[int, int, int]] = []
    result = run_migrate(
        Config(repo=tmp_path), database.dsn, progress=lambda *step: seen.append(step)
    )
    assert len(result.changed) == 300
    assert seen[0] == (1, 300, 20240101000000) and seen[-1] == (300, 300, 20240101000299)
    assert migrate(Config(repo=tmp_path), database.dsn, action="down-to", version=None) == 0
    out = capsys.readouterr().out
    assert "undone: 300 migrations, 20240101000299 to 20240101000000\n" in out
