"""The table commands end to end: real git repositories through ``rollsafe.cli.main``.

Why: these are the commands CI and release engineers run; what matters is
the exit code, the bytes of the DEPLOYING file and one clean line on bad
input, so they are driven exactly as the console script drives them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollsafe.cli import main
from tests.gitrepo import GitRepo, migration

DEPLOYING = "releases/DEPLOYING.md"
SVG = "releases/DEPLOYING.svg"

MACHINES = "-- compat: live\n-- note: Machines.\nCREATE TABLE machines (id bigint PRIMARY KEY);\n"
NAME = (
    "-- compat: offline\n-- note: Renames machines.name.\n"
    "ALTER TABLE machines RENAME COLUMN name TO hostname;\n"
)
ARCH = "-- compat: live\n-- note: Adds machines.arch.\nALTER TABLE machines ADD COLUMN arch text;\n"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A Gerrit history where CLs land out of numeric order across a row boundary.

    Row 0 (schema 1): 1549, 1567, 1552, 1560; row 1 (schema 2, offline): 1565,
    1556, 1570; row 2 (schema 3, open): 1580.  One commit has no trailer.
    """
    git = GitRepo(tmp_path / "repo")
    git.commit("Initial", {"README.md": "service\n"}, change=1540)
    git.commit("Machines", migration(1, "create_machines", MACHINES), change=1549)
    git.commit("Uploaded late, landed early", change=1567)
    git.commit("Direct push without review")
    git.commit("Tweak", change=1552)
    git.commit("Tweak", change=1560)
    git.commit("Rename", migration(2, "rename_name", NAME), change=1565)
    git.commit("Uploaded early, landed late", change=1556)
    git.commit("Tweak", change=1570)
    git.commit("Arch", migration(3, "add_arch", ARCH, down=None), change=1580)
    return git


def run(git: GitRepo, *args: str) -> int:
    return main([*args, "--repo", str(git.path)])


def deploying(git: GitRepo) -> Path:
    return git.path / DEPLOYING


def test_cells_do_not_change_when_the_migrations_folder_is_deleted(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    # Cells come from each migration as it landed: deleting the folder at the tip
    # (as projects do when they move their schema elsewhere) keeps every row's cell.
    edited = ARCH.replace("Adds machines.arch.", "Adds machines.arch, edited.")
    repo.commit("Arch note", migration(3, "add_arch", edited, down=None), change=1590)

    def cells() -> list[tuple[str, str, list[str]]]:
        assert run(repo, "release-table", "--format", "json") == 0
        rows = json.loads(capsys.readouterr().out)["rows"]
        return [
            (row["schema_range"], f"{row['upgrade']} {row['inferred']}", row["notes"])
            for row in rows
        ]

    before = cells()
    assert [cell[1] for cell in before] == ["None False", "offline False", "live False"]
    assert before[2][2] == [
        "Adds machines.arch, edited.",
        "Irreversible: migration 3 has no down file.",
    ]
    for path in sorted((repo.path / "migrations").iterdir()):
        path.unlink()
    repo.commit("Schema moved to another repository", change=1600)
    after = cells()
    assert after[:3] == before
    assert after[3][1] == "offline False" and "Schema goes down" in " ".join(after[3][2])


def test_release_table_writes_the_table_and_a_second_run_changes_nothing(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "release-table") == 0
    out = capsys.readouterr().out
    assert (
        "read 10 commits of main: 9 CLs (gerrit), 1 commit without a CL skipped, "
        "1 CL before the first migration; 3 rows"
    ) in out
    assert f"wrote {DEPLOYING}" in out
    first = deploying(repo).read_bytes()
    text = first.decode()
    assert text.startswith("# Deploying\n")
    assert "| 0 | 1 | 1549-1567 |" in text
    assert (
        "| 1 | 2 | 1556-1570 |" in text
        and "| offline | live (inferred) | Renames machines.name. |" in text
    )
    assert "| 2 | 3 | 1580 and later |" in text
    assert "Irreversible: migration 3 has no down file." in text
    assert "ship a newer schema: 1556, 1565 (row 1, schema 2)." in text
    assert "landed before CL 1565 and ship an older schema: 1560, 1567 (row 0, schema 1)." in text

    assert f"wrote {SVG}" in out
    assert "![CL number against landing order, one colour per row](DEPLOYING.svg)" in text
    picture = (repo.path / SVG).read_bytes()

    assert run(repo, "release-table") == 0
    assert f"{DEPLOYING} and {SVG} are up to date" in capsys.readouterr().out
    assert deploying(repo).read_bytes() == first
    assert (repo.path / SVG).read_bytes() == picture
    assert run(repo, "release-table", "--check") == 0


def test_check_covers_the_picture_and_no_svg_leaves_it_out(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "release-table") == 0
    (repo.path / SVG).write_text("<svg/>\n")
    capsys.readouterr()
    assert run(repo, "release-table", "--check") == 1
    captured = capsys.readouterr()
    assert f"--- a/{SVG}\n+++ b/{SVG}\n" in captured.out and f"a/{DEPLOYING}" not in captured.out
    assert f"rollsafe: {SVG} is stale" in captured.err
    (repo.path / SVG).unlink()
    assert run(repo, "release-table", "--no-svg") == 0
    assert not (repo.path / SVG).exists()
    assert "DEPLOYING.svg" not in deploying(repo).read_text()
    assert run(repo, "release-table", "--check", "--no-svg") == 0
    # Another path (relative to the DEPLOYING file in the link), or none by configuration.
    assert run(repo, "release-table", "--svg", "docs/order.svg") == 0
    assert (repo.path / "docs/order.svg").read_text().startswith("<?xml")
    assert "](../docs/order.svg)" in deploying(repo).read_text()
    (repo.path / "pyproject.toml").write_text("[tool.rollsafe]\nsvg = false\n")
    assert run(repo, "release-table", "--check") == 1
    assert run(repo, "release-table") == 0
    assert "order.svg" not in deploying(repo).read_text()


def test_prose_outside_the_markers_is_preserved(repo: GitRepo) -> None:
    before = "# How we deploy\n\nAsk in #releases first.\n\n"
    after = "\n## Rollback\n\nCall the on-call engineer."
    deploying(repo).parent.mkdir(parents=True)
    deploying(repo).write_text(
        before + "<!-- rollsafe:table:begin -->\nstale\n<!-- rollsafe:table:end -->\n" + after
    )
    assert run(repo, "release-table") == 0
    text = deploying(repo).read_text()
    assert text.startswith(before + "<!-- rollsafe:table:begin -->\n")
    assert text.endswith("<!-- rollsafe:table:end -->\n" + after)
    assert "| 2 | 3 | 1580 and later |" in text


def test_check_on_a_stale_file_prints_a_diff_exits_1_and_writes_nothing(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "release-table") == 0
    before = deploying(repo).read_bytes()
    work = migration(4, "add_work", "-- compat: live\nCREATE TABLE w (id int);\n")
    repo.commit("Work", work, change=1590)
    capsys.readouterr()
    assert run(repo, "release-table", "--check") == 1
    captured = capsys.readouterr()
    assert f"--- a/{DEPLOYING}\n+++ b/{DEPLOYING}\n" in captured.out
    assert "-| 2 | 3 | 1580 and later |" in captured.out
    assert "+| 2 | 3 | 1580 |" in captured.out
    assert captured.err.count("\n") == 1 and "are stale" in captured.err
    assert deploying(repo).read_bytes() == before


def test_check_on_a_missing_file_fails(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(repo, "release-table", "--check") == 1
    assert "--- /dev/null" in capsys.readouterr().out
    assert not deploying(repo).exists()


def test_commits_that_keep_the_schema_keep_the_table_up_to_date(repo: GitRepo) -> None:
    assert run(repo, "release-table") == 0
    repo.commit("Late low number lands in the open row", change=1555)
    repo.commit("Another", change=1590)
    repo.commit("Docs", {DEPLOYING: deploying(repo).read_text()})
    assert run(repo, "release-table", "--check") == 0


def test_table_reads_the_branch_tip_not_the_work_tree(repo: GitRepo) -> None:
    assert run(repo, "release-table") == 0
    path = repo.path / "migrations" / "1_create_machines.up.sql"
    path.write_text(MACHINES.replace("Machines.", "Edited but not committed."))
    assert run(repo, "release-table", "--check") == 0


def test_json_rows_and_nothing_written(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(repo, "release-table", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert not deploying(repo).exists()
    assert data["strategy"] == "gerrit" and data["skipped"] == 1
    assert data["before_first_migration"] == 1
    assert [row["cls"] for row in data["rows"]] == [
        ["1549", "1567", "1552", "1560"],
        ["1565", "1556", "1570"],
        ["1580"],
    ]
    assert [row["upgrade"] for row in data["rows"]] == [None, "offline", "live"]


def test_baseline_flag_folds_rows(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(repo, "release-table", "--format", "json", "--baseline", "2") == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["schema_range"] for row in rows] == ["up to 2 (baseline)", "3"]


def test_which_prints_row_schema_commit_and_date(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "which", "1556") == 0
    out = capsys.readouterr().out
    commit = repo.git("log", "--format=%H", "-1", "--grep", "Uploaded early").strip()
    assert out.splitlines()[:5] == [
        "CL 1556",
        "  row:     1 (schema range 2, CL range 1556-1570)",
        "  schema:  2",
        f"  commit:  {commit}",
        "  landed:  2024-01-01T08:00:00Z",
    ]
    assert "  note:    CL 1556 landed after 1565: it ships the newer schema" in out
    assert run(repo, "which", "1540", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["row"] is None and data["schema"] is None and data["released"] is None


def test_which_unknown_cl_is_one_line_and_exit_2(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "which", "9999") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("rollsafe: CL 9999: ")
    assert "not a code version" in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_release_writes_a_record_and_refuses_to_overwrite(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "release", "--cl", "1565") == 0
    assert "wrote releases/1565.toml: CL 1565" in capsys.readouterr().out
    record = repo.path / "releases" / "1565.toml"
    before = record.read_bytes()
    assert b'cl = "1565"' in before and b"schema = 2" in before
    assert run(repo, "release", "--cl", "1565") == 2
    err = capsys.readouterr().err
    assert "already exists" in err and err.count("\n") == 1
    assert record.read_bytes() == before


def test_release_records_limit_the_rows(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    for cl in ("1552", "1570", "1580"):
        assert run(repo, "release", "--cl", cl) == 0
    assert run(repo, "release-table") == 0
    assert "3 release records; 3 rows" in capsys.readouterr().out
    text = deploying(repo).read_text()
    assert "| 0 | 1 | 1552 |" in text and "| 1 | 2 | 1570 |" in text and "| 2 | 3 | 1580 |" in text
    assert "Rows list released CLs only" in " ".join(text.split())
    assert run(repo, "which", "1560") == 0
    assert "none (not released" in capsys.readouterr().out
    # A release candidate can still be planned to.
    assert run(repo, "upgrade-plan", "--from", "1552", "--to", "1560") == 0
    assert "1. CL 1560 - schema 1, no schema change - live" in capsys.readouterr().out


def test_upgrade_plan_text_across_a_live_and_an_offline_step(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "upgrade-plan", "--from", "1549", "--to", "1580") == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "Upgrade plan: CL 1549 (row 0, schema 1) -> CL 1580 (row 2, schema 3)\n"
        "3 steps: 2 live (rolling), 1 offline.\n"
    )
    assert "1. CL 1560 - schema 1, no schema change - live" in out
    assert "2. CL 1570 - schema 2, applies migration 2 - offline" in out
    assert "a. Stop every component." in out
    assert "3. CL 1580 - schema 3, applies migration 3 - live" in out


def test_upgrade_plan_json_and_offline_jump(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(repo, "upgrade-plan", "--from", "1549", "--to", "1580", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [(s["cl"], s["upgrade"], s["schema"]) for s in data["steps"]] == [
        ("1560", "live", 1),
        ("1570", "offline", 2),
        ("1580", "live", 3),
    ]
    args = ("upgrade-plan", "--from", "1549", "--to", "1580", "--offline", "--format", "json")
    assert run(repo, *args) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(s["cl"], s["upgrade"], s["migrations"]) for s in data["steps"]] == [
        ("1580", "offline", [2, 3])
    ]


def test_upgrade_plan_backwards_is_a_rollback_plan_that_stops_at_a_restore(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    # Migration 3 has no down file: going back from row 2 needs the backup.
    assert run(repo, "upgrade-plan", "--from", "1580", "--to", "1549") == 1
    out = capsys.readouterr().out
    assert out.startswith("Rollback plan: CL 1580 (row 2, schema 3) -> CL 1549 (row 0, schema 1)")
    assert "1. CL 1570 - schema 2, undoes migration 3 - restore" in out
    assert "Restore the backup taken just before CL 1580 was deployed" in out
    assert "Run again with --allow-restore" in out and "2. CL" not in out
    assert run(repo, "upgrade-plan", "--from", "1580", "--to", "1549", "--allow-restore") == 0
    out = capsys.readouterr().out
    assert "2. CL 1549 - schema 1, undoes migration 2 - " in out
    assert "\n        rollsafe migrate --down-to 1 --files-at 1570\n" in out
    assert run(repo, "upgrade-plan", "--from", "1580", "--to", "1549", "--offline") == 2
    assert "--offline plans upgrades only" in capsys.readouterr().err


def test_malformed_markers_are_one_line_and_leave_the_file(
    repo: GitRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    deploying(repo).parent.mkdir(parents=True)
    deploying(repo).write_text("Prose\n<!-- rollsafe:table:begin -->\nno end\n")
    before = deploying(repo).read_bytes()
    assert run(repo, "release-table") == 2
    err = capsys.readouterr().err
    assert f"{DEPLOYING}:2: begin marker without an end marker" in err
    assert deploying(repo).read_bytes() == before
