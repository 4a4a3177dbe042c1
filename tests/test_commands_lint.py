"""``rollsafe lint`` end to end: real git repositories, the work tree, release records, exit codes.

The hazards are built with the real ``git`` binary (tests/gitrepo.py) and
Gerrit trailers, so each test also checks that the finding names the CL and
commit that did it, as a release engineer would read it in CI.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from rollsafe.cli import build_parser, main
from rollsafe.commands._spec import config_from
from rollsafe.commands.lint import lint, lint_report
from rollsafe.config import Config, load_config
from rollsafe.errors import EXIT_CHECK_FAILED
from rollsafe.history import read_history, write_record
from tests.gitrepo import GitRepo, migration

REPOSITORY = Path(__file__).resolve().parents[1]

CREATE = "-- compat: live\nCREATE TABLE machines (id bigint PRIMARY KEY, region text);\n"
ADD_ZONE = "-- compat: live\nALTER TABLE machines ADD COLUMN zone text;\n"
ADD_ARCH = "-- compat: live\nALTER TABLE machines ADD COLUMN arch text DEFAULT 'x86_64';\n"


def run(config: Config, *, strict: bool = False, fmt: str = "text") -> tuple[int, str]:
    out = io.StringIO()
    code = lint(config, strict=strict, fmt="json" if fmt == "json" else "text", out=out)
    return code, out.getvalue()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """Two shipped-looking migrations, each landed as its own Gerrit change."""
    git = GitRepo(tmp_path / "repo")
    git.commit(
        "machines", migration(1, "create_machines", CREATE, "DROP TABLE machines;"), change=1001
    )
    git.commit(
        "zone",
        migration(2, "add_zone", ADD_ZONE, "ALTER TABLE machines DROP COLUMN zone;"),
        change=1002,
    )
    return git


def config_of(git: GitRepo) -> Config:
    return load_config(git.path)


def test_example_schema_of_this_repository_passes_strict() -> None:
    code, text = run(load_config(REPOSITORY), strict=True)
    assert code == 0, text
    assert "lint ok (strict)" in text


def test_clean_repository_passes(repo: GitRepo) -> None:
    code, text = run(config_of(repo), strict=True)
    assert code == 0, text
    assert text.strip() == (
        "lint ok (strict): 0 error(s), 0 warning(s), 0 info; "
        "2 migration(s): 2 live, 0 offline (0 inferred)"
    )


def test_edited_shipped_migration_names_cl_and_commit(repo: GitRepo) -> None:
    sha = repo.commit(
        "fix create",
        {"migrations/1_create_machines.up.sql": CREATE.replace("region text", "region varchar(9)")},
        change=1003,
    )
    code, text = run(config_of(repo))
    assert code == EXIT_CHECK_FAILED
    assert "migrations/1_create_machines.up.sql" in text
    assert "shipped-migration-edited" in text
    assert f"CL 1003 (commit {sha[:12]})" in text


def test_comment_only_edit_of_a_shipped_migration_is_info(repo: GitRepo) -> None:
    repo.commit(
        "document create",
        {"migrations/1_create_machines.up.sql": CREATE + "-- machines are hosts\n"},
        change=1003,
    )
    code, text = run(config_of(repo), strict=True)
    assert code == 0, text
    assert "info    shipped-migration-edited" in text
    assert "only comments or layout changed" in text


def test_uncommitted_edit_is_caught_before_commit(repo: GitRepo) -> None:
    repo.write({"migrations/1_create_machines.up.sql": CREATE.replace("bigint", "int")})
    code, text = run(config_of(repo))
    assert code == EXIT_CHECK_FAILED
    assert "the work tree (not in any code version yet)" in text


def test_crlf_work_tree_copy_of_a_committed_file_is_unchanged(repo: GitRepo) -> None:
    path = repo.path / "migrations/1_create_machines.up.sql"
    path.write_bytes(CREATE.replace("\n", "\r\n").encode())
    code, text = run(config_of(repo), strict=True)
    assert code == 0, text


def test_edit_after_a_release_record_compares_blob_ids(tmp_path: Path) -> None:
    git = GitRepo(tmp_path / "repo")
    git.commit(
        "machines", migration(1, "create_machines", CREATE, "DROP TABLE machines;"), change=7
    )
    config = config_of(git)
    record = write_record(config, read_history(config), "7")
    git.commit("release 7", {}, change=8)
    assert run(config, strict=True)[0] == 0
    sha = git.commit(
        "edit",
        {"migrations/1_create_machines.up.sql": CREATE.replace("region text", "region varchar")},
        change=9,
    )
    code, text = run(config)
    assert code == EXIT_CHECK_FAILED
    assert f"CL 9 (commit {sha[:12]})" in text
    assert f"release record releases/{record.name}" in text


def test_version_added_below_a_shipped_one(repo: GitRepo) -> None:
    repo.commit("arch", migration(5, "add_arch", ADD_ARCH, "SELECT 1;"), change=1003)
    sha = repo.commit(
        "late", migration(4, "late", "-- compat: live\nSELECT 1;", "SELECT 1;"), change=1004
    )
    code, text = run(config_of(repo))
    assert code == EXIT_CHECK_FAILED
    assert "migration-out-of-order" in text
    assert f"CL 1004 (commit {sha[:12]}) below version 5" in text


def test_deleted_shipped_migration(repo: GitRepo) -> None:
    sha = repo.commit(
        "drop old",
        {
            "migrations/1_create_machines.up.sql": None,
            "migrations/1_create_machines.down.sql": None,
        },
        change=1003,
    )
    code, text = run(config_of(repo))
    assert code == EXIT_CHECK_FAILED
    assert "migration-deleted" in text and f"CL 1003 (commit {sha[:12]})" in text


def test_renumbered_shipped_migration(repo: GitRepo) -> None:
    repo.git("mv", "migrations/1_create_machines.up.sql", "migrations/3_create_machines.up.sql")
    repo.git("mv", "migrations/1_create_machines.down.sql", "migrations/3_create_machines.down.sql")
    repo.commit("renumber", change=1003)
    code, text = run(config_of(repo))
    assert code == EXIT_CHECK_FAILED
    assert "migration-renamed" in text and "version 1 was renamed" in text


def test_new_title_for_a_shipped_migration_is_fine(repo: GitRepo) -> None:
    repo.git("mv", "migrations/1_create_machines.up.sql", "migrations/1_machines.up.sql")
    repo.git("mv", "migrations/1_create_machines.down.sql", "migrations/1_machines.down.sql")
    repo.commit("retitle", change=1003)
    assert run(config_of(repo), strict=True)[0] == 0


def test_folder_vanishing(repo: GitRepo) -> None:
    repo.git("rm", "-q", "-r", "migrations")
    sha = repo.commit("oops", change=1003)
    code, text = run(config_of(repo))
    assert code == EXIT_CHECK_FAILED
    assert "folder-vanished" in text and f"CL 1003 (commit {sha[:12]})" in text
    assert "bad-catalogue" in text  # and the work tree has no folder to lint


def test_missing_down_is_a_warning_naming_its_cl(repo: GitRepo) -> None:
    sha = repo.commit("arch", migration(3, "add_arch", ADD_ARCH, None), change=1003)
    code, text = run(config_of(repo))
    assert code == 0
    assert "warning missing-down" in text and f"CL 1003 (commit {sha[:12]})" in text
    assert run(config_of(repo), strict=True)[0] == EXIT_CHECK_FAILED


def test_declared_live_breaking_change_fails_and_inference_is_reported(repo: GitRepo) -> None:
    repo.commit(
        "drop region",
        migration(3, "drop_region", "ALTER TABLE machines DROP COLUMN region;\n", "SELECT 1;"),
        change=1003,
    )
    report = lint_report(config_of(repo))
    assert report.verdicts[3].compat == "offline" and report.verdicts[3].inferred
    assert [(f.rule, f.severity, f.line) for f in report.findings] == [
        ("drop-column", "warning", 1)
    ]
    repo.write(
        {
            "migrations/3_drop_region.up.sql": "-- compat: live\n"
            "ALTER TABLE machines DROP COLUMN region;\n"
        }
    )
    code, text = run(config_of(repo))
    assert code == EXIT_CHECK_FAILED
    assert "2:    error   drop-column" in text


def test_json_output(repo: GitRepo) -> None:
    repo.commit(
        "index",
        migration(
            3, "region_idx", "CREATE INDEX machines_region_idx ON machines (region);\n", "SELECT 1;"
        ),
        change=1003,
    )
    code, text = run(config_of(repo), fmt="json")
    assert code == 0
    document = json.loads(text)
    assert document["ok"] is True
    assert document["summary"] == {"error": 0, "warning": 1, "info": 0}
    assert document["migrations"][2] == {
        "version": 3,
        "compat": "live",
        "inferred": True,
        "reasons": [],
    }
    (finding,) = document["findings"]
    assert finding["rule"] == "index-not-concurrent"
    assert finding["file"] == "migrations/3_region_idx.up.sql" and finding["line"] == 1
    code, text = run(config_of(repo), fmt="json", strict=True)
    assert code == EXIT_CHECK_FAILED and json.loads(text)["ok"] is False


def test_bad_catalogue_is_one_clean_finding(repo: GitRepo) -> None:
    repo.write({"migrations/3_oops.down.sql": "SELECT 1;"})
    code, text = run(config_of(repo))
    assert code == EXIT_CHECK_FAILED
    assert "bad-catalogue  down file without an up file for version 3" in text
    assert "Traceback" not in text


def test_a_name_golang_migrate_ignores_is_a_bad_catalogue_warning(repo: GitRepo) -> None:
    repo.write({"migrations/3-oops.up.sql": "SELECT 1;"})
    code, text = run(config_of(repo))
    assert code == 0
    assert "bad-catalogue  golang-migrate ignores `3-oops.up.sql`" in text
    assert run(config_of(repo), strict=True)[0] == EXIT_CHECK_FAILED


def test_not_a_git_repository_reports_history_unless_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    (folder / "migrations").mkdir(parents=True)
    (folder / "migrations/1_a.up.sql").write_text("-- compat: live\nCREATE TABLE a (id int);\n")
    (folder / "migrations/1_a.down.sql").write_text("DROP TABLE a;\n")
    (folder / ".git").mkdir()  # makes it the repository root for load_config, but not a repo
    config = load_config(folder)
    code, text = run(config)
    assert code == EXIT_CHECK_FAILED and "history-unreadable" in text
    assert lint(config, history=False, out=io.StringIO()) == 0


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_cli_registration(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["lint", "--repo", str(repo.path), "--format", "json", "--strict"])
    assert (args.fmt, args.strict, args.no_history) == ("json", True, False)
    assert args.spec.resolve()(config_from(args), args) == 0
    assert json.loads(capsys.readouterr().out)["strict"] is True
    args = parse(["lint", "--repo", str(repo.path), "--no-history"])
    assert args.spec.resolve()(config_from(args), args) == 0
    assert "lint ok" in capsys.readouterr().out


def test_console_script_exit_codes(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--repo", str(repo.path), "--strict"]) == 0
    repo.write({"migrations/3_late.up.sql": "ALTER TABLE machines DROP COLUMN region;\n"})
    assert main(["lint", "--repo", str(repo.path)]) == 0  # warnings only
    assert main(["lint", "--repo", str(repo.path), "--strict"]) == EXIT_CHECK_FAILED
    out = capsys.readouterr().out
    assert "warning drop-column" in out and "warning missing-down" in out
