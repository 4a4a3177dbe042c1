"""Tests for rollsafe.history: code versions, schemas and migrations from real git histories."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rollsafe.config import Config
from rollsafe.errors import HistoryError, UnknownCLError
from rollsafe.history import CodeVersion, FileChange, History, read_history
from rollsafe.history._build import _Builder
from rollsafe.history._model import PROGRESS_EVERY
from rollsafe.history._tags import semver_key
from tests.gitrepo import BASE_ENV, EPOCH, GitRepo, migration

# ---------------------------------------------------------------------------
# Helpers (local to this file)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


def config(repo: GitRepo, **settings: object) -> Config:
    return Config(repo=repo.path, **settings)  # type: ignore[arg-type]


def blob(repo: GitRepo, commit: str, path: str) -> str:
    return repo.git("rev-parse", f"{commit}:{path}").strip()


def message(subject: str, change: int | None) -> str:
    """A commit message as Gerrit writes it (same shape as GitRepo.commit's)."""
    if change is None:
        return subject
    return (
        f"{subject}\n\nChange-Id: I{change:040d}\n"
        f"Reviewed-on: https://review.example/c/project/+/{change}\n"
    )


def merge(repo: GitRepo, branch: str, subject: str, *, change: int | None = None) -> str:
    """``git merge --no-ff branch`` with the repository's clock, returning the merge commit."""
    repo.clock += 3600
    stamp = f"{repo.clock} +0000"
    repo.git(
        "merge",
        "--no-ff",
        "-q",
        "-m",
        message(subject, change),
        branch,
        env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
    )
    return repo.head()


def note(repo: GitRepo, commit: str, text: str, ref: str = "refs/notes/review") -> None:
    repo.git("notes", f"--ref={ref}", "add", "-m", text, commit)


def fast_import(repo: GitRepo, commits: int, *, migration_every: int = 100) -> None:
    """Write ``commits`` Gerrit commits to an empty ``main`` quickly with ``git fast-import``."""
    lines: list[bytes] = []
    for index in range(commits):
        body = message(f"change {index}", 10_000 + index).encode()
        lines.append(b"commit refs/heads/main\n")
        lines.append(b"committer Dev <dev@example.com> %d +0000\n" % (EPOCH + index))
        lines.append(b"data %d\n%s\n" % (len(body), body))
        content = f"// {index}\n".encode()
        lines.append(
            b"M 100644 inline src/file%d.txt\ndata %d\n%s\n" % (index % 50, len(content), content)
        )
        if index % migration_every == 0:
            version = index // migration_every + 1
            up = f"CREATE TABLE t{version} ();\n".encode()
            lines.append(
                b"M 100644 inline migrations/%d_t%d.up.sql\ndata %d\n%s\n"
                % (version, version, len(up), up)
            )
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=repo.path,
        input=b"".join(lines),
        env={**os.environ, **BASE_ENV},
        check=True,
    )
    repo.git("reset", "-q", "--hard", "main")


def summary(history: History) -> list[tuple[str, int | None]]:
    return [(v.cl, v.schema) for v in history.versions]


# ---------------------------------------------------------------------------
# Ordinal histories: schema, migrations, changes


def test_ordinal_history_records_every_commit(repo: GitRepo) -> None:
    first = repo.commit("skeleton", {"README.md": "hello\n"})
    second = repo.commit("machines", migration(1, "machines", "CREATE TABLE m ();\n"))
    third = repo.commit("docs", {"README.md": "more\n"})
    history = read_history(config(repo))
    assert history.strategy == "ordinal"
    assert (history.branch, history.tip, history.commits, history.skipped) == ("main", third, 3, 0)
    assert history.folder == "migrations"
    assert [v.cl for v in history.versions] == ["1", "2", "3"]
    assert [v.number for v in history.versions] == [1, 2, 3]
    assert [v.position for v in history.versions] == [0, 1, 2]
    assert [v.commit for v in history.versions] == [first, second, third]
    assert [v.subject for v in history.versions] == ["skeleton", "machines", "docs"]
    assert [v.schema for v in history.versions] == [None, 1, 1]
    assert history.versions[0].date == datetime.fromtimestamp(EPOCH + 3600, UTC)
    assert history.versions[0].date.tzinfo is not None
    up, down = "migrations/1_machines.up.sql", "migrations/1_machines.down.sql"
    assert history.versions[1].migrations == {
        down: blob(repo, second, down),
        up: blob(repo, second, up),
    }
    assert history.versions[0].migrations == {}
    # A commit that does not touch the folder shares its predecessor's mapping.
    assert history.versions[2].migrations is history.versions[1].migrations
    assert history.versions[1].changes == (
        FileChange("added", down, None, None, blob(repo, second, down)),
        FileChange("added", up, None, None, blob(repo, second, up)),
    )
    assert history.versions[2].changes == ()


def test_version_zero_is_a_real_schema(repo: GitRepo) -> None:
    repo.commit("init", migration(0, "init", "CREATE TABLE a ();\n"))
    history = read_history(config(repo))
    assert history.versions[0].schema == 0


def test_two_migrations_in_one_commit(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.commit(
        "two at once", {**migration(2, "b", "SELECT 2;\n"), **migration(3, "c", "SELECT 3;\n")}
    )
    history = read_history(config(repo))
    assert summary(history) == [("1", 1), ("2", 3)]
    assert len(history.versions[1].changes) == 4
    assert {c.kind for c in history.versions[1].changes} == {"added"}


def test_edited_migration_is_a_modification(repo: GitRepo) -> None:
    first = repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    second = repo.commit("edit", {"migrations/1_a.up.sql": "SELECT 11;\n"})
    history = read_history(config(repo))
    path = "migrations/1_a.up.sql"
    assert history.versions[1].changes == (
        FileChange("modified", path, None, blob(repo, first, path), blob(repo, second, path)),
    )
    assert history.versions[1].migrations[path] == blob(repo, second, path)
    assert history.versions[0].migrations[path] == blob(repo, first, path)
    assert history.versions[1].schema == 1


def test_deleted_migrations_lower_the_schema(repo: GitRepo) -> None:
    first = repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.commit("two", migration(2, "b", "SELECT 2;\n"))
    repo.commit("drop two", {"migrations/2_b.up.sql": None, "migrations/2_b.down.sql": None})
    repo.commit("drop one", {"migrations/1_a.up.sql": None, "migrations/1_a.down.sql": None})
    history = read_history(config(repo))
    assert summary(history) == [("1", 1), ("2", 2), ("3", 1), ("4", None)]
    path = "migrations/1_a.up.sql"
    assert FileChange("deleted", path, path, blob(repo, first, path), None) in (
        history.versions[3].changes
    )
    assert history.versions[3].migrations == {}


def test_renamed_migration_is_recorded_as_a_rename(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "CREATE TABLE a (id int, name text, note text);\n"))
    repo.git("mv", "migrations/1_a.up.sql", "migrations/2_a.up.sql")
    repo.git("mv", "migrations/1_a.down.sql", "migrations/2_a.down.sql")
    renamed = repo.commit("renumber")
    history = read_history(config(repo))
    changes = {c.path: c for c in history.versions[1].changes}
    up = changes["migrations/2_a.up.sql"]
    assert up.kind == "renamed"
    assert up.old_path == "migrations/1_a.up.sql"
    assert up.old_blob == up.new_blob == blob(repo, renamed, "migrations/2_a.up.sql")
    assert history.versions[1].schema == 2
    assert set(history.versions[1].migrations) == {
        "migrations/2_a.up.sql",
        "migrations/2_a.down.sql",
    }


def test_rename_out_of_the_folder_is_a_delete(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "CREATE TABLE a (id int, name text, note text);\n"))
    (repo.path / "migrations" / "old").mkdir()
    repo.git("mv", "migrations/1_a.down.sql", "migrations/old/1_a.down.sql")
    repo.commit("move the down file into a sub-folder")
    history = read_history(config(repo))
    assert [(c.kind, c.path) for c in history.versions[1].changes] == [
        ("deleted", "migrations/1_a.down.sql")
    ]
    assert set(history.versions[1].migrations) == {"migrations/1_a.up.sql"}


def test_folder_renamed_away_then_back(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.commit("two", migration(2, "b", "SELECT 2;\n"))
    (repo.path / "db").mkdir()
    repo.git("mv", "migrations", "db/migrations")
    repo.commit("move the folder")
    repo.commit("unrelated", {"db/migrations/3_c.up.sql": "SELECT 3;\n"})
    repo.git("mv", "db/migrations", "migrations")
    repo.commit("move it back")
    history = read_history(config(repo))
    assert summary(history) == [("1", 1), ("2", 2), ("3", None), ("4", None), ("5", 3)]
    assert history.versions[2].migrations == {}
    assert {c.kind for c in history.versions[2].changes} == {"deleted"}
    assert {c.kind for c in history.versions[4].changes} == {"added"}


def test_folder_deleted(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.git("rm", "-r", "-q", "migrations")
    repo.commit("drop the folder")
    repo.commit("later", {"README.md": "x\n"})
    history = read_history(config(repo))
    assert summary(history) == [("1", 1), ("2", None), ("3", None)]


def test_a_folder_that_never_existed_gives_no_schema(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    history = read_history(config(repo, migrations="db/schema"))
    assert summary(history) == [("1", None)]
    assert history.folder == "db/schema"


def test_junk_files_do_not_crash_and_do_not_count(repo: GitRepo) -> None:
    repo.commit(
        "junk",
        {
            **migration(2, "ok", "SELECT 2;\n"),
            "migrations/README.md": "how to write migrations\n",
            "migrations/9_misnamed.sql": "SELECT 9;\n",
            "migrations/nested/7_deep.up.sql": "SELECT 7;\n",
            "migrations/8_down_only.down.sql": "SELECT 8;\n",
        },
    )
    history = read_history(config(repo))
    version = history.versions[0]
    assert version.schema == 2
    assert set(version.migrations) == {
        "migrations/2_ok.up.sql",
        "migrations/2_ok.down.sql",
        "migrations/9_misnamed.sql",
        "migrations/8_down_only.down.sql",
    }


def test_mode_changes_and_symlinks_are_not_migration_changes(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    (repo.path / "migrations" / "1_a.up.sql").chmod(0o755)
    repo.commit("chmod")
    (repo.path / "migrations" / "5_link.up.sql").symlink_to("1_a.up.sql")
    repo.commit("a symlink")
    history = read_history(config(repo))
    assert history.versions[1].changes == ()
    assert history.versions[2].changes == ()
    assert history.versions[2].schema == 1
    assert "migrations/5_link.up.sql" not in history.versions[2].migrations


def test_unusual_file_names_and_messages_are_read_exactly(repo: GitRepo) -> None:
    # 0x1e starts every record of the log rollsafe reads: names and messages
    # that start with it must not confuse the reader.
    odd = "migrations/\x1eodd name é.sql"
    repo.commit("\x1esubject", {odd: "SELECT 1;\n"}, change=5)
    repo.commit("second\n\n\x1ebody first\n\nReviewed-on: https://review.example/c/p/+/6")
    (repo.path / "migrations" / os.fsdecode(b"caf\xe9.sql")).write_bytes(b"SELECT 1;\n")
    repo.commit("third", migration(3, "c", "SELECT 3;\n"), change=7)
    history = read_history(config(repo))
    assert [v.cl for v in history.versions] == ["5", "6", "7"]
    assert history.versions[0].subject == "\x1esubject"
    assert odd in history.versions[0].migrations
    assert history.versions[2].schema == 3
    assert "migrations/caf\ufffd.sql" in history.versions[2].migrations  # not UTF-8


def test_folder_setting_is_normalised(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    history = read_history(config(repo, migrations="./migrations/"))
    assert history.folder == "migrations"
    assert history.versions[0].schema == 1


def test_migrations_at_the_repository_root(repo: GitRepo) -> None:
    # A name starting with 0x1e (the log's record mark) right after a NUL.
    odd = "\x1ejunk.sql"
    repo.commit("one", {"1_a.up.sql": "SELECT 1;\n", "src/2_b.up.sql": "SELECT 2;\n", odd: "-"})
    repo.commit("two", {odd: "--"})
    history = read_history(config(repo, migrations="."))
    assert history.folder == "."
    assert [v.schema for v in history.versions] == [1, 1]
    assert set(history.versions[0].migrations) == {"1_a.up.sql", odd}
    assert [(c.kind, c.path) for c in history.versions[1].changes] == [("modified", odd)]


# ---------------------------------------------------------------------------
# Gerrit


def test_gerrit_numbers_land_out_of_order_across_a_row_boundary(repo: GitRepo) -> None:
    repo.commit("base", migration(1, "a", "SELECT 1;\n"), change=1550)
    repo.commit("docs", {"README.md": "x\n"}, change=1551)
    # 1565 was uploaded after 1556 but lands first, and opens schema 2 ...
    repo.commit("new table", migration(2, "b", "SELECT 2;\n"), change=1565)
    # ... so 1556, landing later, ships schema 2 although its number is lower.
    repo.commit("small fix", {"README.md": "y\n"}, change=1556)
    repo.commit("more", {"README.md": "z\n"}, change=1570)
    history = read_history(config(repo))
    assert history.strategy == "gerrit"
    assert summary(history) == [("1550", 1), ("1551", 1), ("1565", 2), ("1556", 2), ("1570", 2)]
    assert [v.position for v in history.versions] == [0, 1, 2, 3, 4]
    assert history.find("1556").position > history.find("1565").position
    assert history.find("1556").number == 1556


def test_gerrit_commits_without_a_cl_are_skipped_and_their_changes_kept(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"), change=10)
    repo.commit("direct push", migration(2, "b", "SELECT 2;\n"))
    repo.commit("another", {"README.md": "x\n"})
    repo.commit("next", {"README.md": "y\n"}, change=11)
    history = read_history(config(repo))
    assert (history.strategy, history.commits, history.skipped) == ("gerrit", 4, 2)
    assert summary(history) == [("10", 1), ("11", 2)]
    assert {c.path for c in history.versions[1].changes} == {
        "migrations/2_b.up.sql",
        "migrations/2_b.down.sql",
    }


def test_gerrit_notes_give_numbers_when_messages_have_none(repo: GitRepo) -> None:
    first = repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    second = repo.commit("two", migration(2, "b", "SELECT 2;\n"))
    third = repo.commit("three", change=300)
    note(repo, first, "Code-Review+2: Dev\nReviewed-on: https://review.example/c/p/+/100\n")
    note(repo, second, "Submitted-by: Dev\nReviewed-on: https://review.example/200/\nProject: p")
    note(repo, third, "Reviewed-on: https://review.example/c/p/+/999\n")
    history = read_history(config(repo))
    assert history.strategy == "gerrit"
    # The message's trailer wins over the note.
    assert summary(history) == [("100", 1), ("200", 2), ("300", 2)]


def test_notes_ref_is_configurable_and_short_names_expand(repo: GitRepo) -> None:
    first = repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    note(repo, first, "Reviewed-on: https://review.example/c/p/+/42", ref="refs/notes/gerrit")
    assert read_history(config(repo)).strategy == "ordinal"
    for name in ("gerrit", "notes/gerrit", "refs/notes/gerrit"):
        history = read_history(config(repo, notes_ref=name))
        assert summary(history) == [("42", 1)]


def test_last_reviewed_on_line_wins_and_odd_spellings_count(repo: GitRepo) -> None:
    repo.commit(
        "picked\n\nReviewed-on: https://review.example/c/p/+/5\n"
        "(cherry picked from commit abc)\nReviewed-on: https://review.example/c/p/+/77\n"
    )
    repo.commit("indented\n\n  reviewed-ON:   https://review.example/c/p/+/78/  \n")
    repo.commit("no number\n\nReviewed-on: https://review.example/c/p/+/79\nReviewed-on: n/a\n")
    history = read_history(config(repo))
    assert [v.cl for v in history.versions] == ["77", "78", "79"]


def test_merges_count_by_first_parent_only(repo: GitRepo) -> None:
    repo.commit("base", migration(1, "a", "SELECT 1;\n"), change=1)
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("side one", migration(2, "b", "SELECT 2;\n"), change=50)
    repo.commit("side two", migration(3, "c", "SELECT 3;\n"), change=51)
    repo.git("checkout", "-q", "main")
    repo.commit("mainline", {"README.md": "x\n"}, change=2)
    merged = merge(repo, "feature", "Merge feature", change=3)
    history = read_history(config(repo))
    assert summary(history) == [("1", 1), ("2", 1), ("3", 3)]
    assert history.commits == 3
    merge_version = history.find("3")
    assert merge_version.commit == merged
    # The merge's changes are its diff against the first parent: both side migrations.
    assert {c.path for c in merge_version.changes} == {
        f"migrations/{name}.{d}.sql" for name in ("2_b", "3_c") for d in ("up", "down")
    }
    with pytest.raises(UnknownCLError):
        history.find("50")


def test_merge_without_a_cl_is_skipped_under_gerrit(repo: GitRepo) -> None:
    repo.commit("base", migration(1, "a", "SELECT 1;\n"), change=1)
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("side", migration(2, "b", "SELECT 2;\n"), change=50)
    repo.git("checkout", "-q", "main")
    merge(repo, "feature", "Merge feature")
    repo.commit("after", change=2)
    history = read_history(config(repo))
    assert summary(history) == [("1", 1), ("2", 2)]
    assert history.skipped == 1


def test_ordinal_merge_is_one_version(repo: GitRepo) -> None:
    repo.commit("base", migration(1, "a", "SELECT 1;\n"))
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("side one", migration(2, "b", "SELECT 2;\n"))
    repo.commit("side two", {"README.md": "x\n"})
    repo.git("checkout", "-q", "main")
    merge(repo, "feature", "Merge feature")
    history = read_history(config(repo))
    assert summary(history) == [("1", 1), ("2", 2)]


def test_duplicate_cl_numbers_name_the_last_landing(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"), change=10)
    repo.commit("first landing", migration(2, "b", "SELECT 2;\n"), change=11)
    repo.commit(
        "revert", {"migrations/2_b.up.sql": None, "migrations/2_b.down.sql": None}, change=12
    )
    relanded = repo.commit(
        "re-landed by a direct push", migration(2, "b", "SELECT 2;\n"), change=11
    )
    repo.commit("after", change=13)
    history = read_history(config(repo))
    assert summary(history) == [("10", 1), ("12", 1), ("11", 2), ("13", 2)]
    assert [v.position for v in history.versions] == [0, 1, 2, 3]
    assert history.find("11").commit == relanded
    assert history.skipped == 1
    # The first landing's changes are not lost: they fold into the next version.
    kinds = [(c.kind, c.path) for c in history.find("12").changes]
    assert kinds.count(("added", "migrations/2_b.up.sql")) == 1
    assert kinds.count(("deleted", "migrations/2_b.up.sql")) == 1


def test_explicit_gerrit_without_any_cl_is_an_error(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    with pytest.raises(HistoryError, match=r"Reviewed-on.*refs/notes/review") as caught:
        read_history(config(repo, cl_strategy="gerrit"))
    assert caught.value.fix is not None and "git fetch origin refs/notes/review" in caught.value.fix


def test_explicit_ordinal_ignores_trailers(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"), change=500)
    repo.commit("two", change=501)
    history = read_history(config(repo, cl_strategy="ordinal"))
    assert (history.strategy, [v.cl for v in history.versions]) == ("ordinal", ["1", "2"])


def test_auto_picks_gerrit_even_when_early_commits_have_no_trailer(repo: GitRepo) -> None:
    repo.commit("imported", migration(1, "a", "SELECT 1;\n"))
    repo.commit("imported too", migration(2, "b", "SELECT 2;\n"))
    repo.commit("first review", change=700)
    history = read_history(config(repo))
    assert history.strategy == "gerrit"
    assert summary(history) == [("700", 2)]
    assert len(history.versions[0].changes) == 4
    assert history.skipped == 2


def test_large_history_streams_and_reports_progress(repo: GitRepo) -> None:
    count = 2 * PROGRESS_EVERY + 500
    fast_import(repo, count)
    seen: list[int] = []
    history = read_history(config(repo), progress=seen.append)
    assert history.commits == count
    assert [v.cl for v in history.versions] == [str(10_000 + i) for i in range(count)]
    assert history.versions[-1].schema == (count - 1) // 100 + 1
    assert history.versions[150].schema == 2
    assert seen == [PROGRESS_EVERY, 2 * PROGRESS_EVERY, count]


# ---------------------------------------------------------------------------
# Tags


def test_tags_are_versions_in_semver_order(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.tag("v1.2.9")
    repo.commit("two", migration(2, "b", "SELECT 2;\n"))
    repo.tag("v1.2.10")
    repo.git("tag", "-a", "-m", "release candidate", "v2.0.0-rc.1")
    repo.commit("three", migration(3, "c", "SELECT 3;\n"))
    repo.tag("v2.0.0")
    repo.tag("vnext")
    repo.tag("other-1.0")
    repo.commit("untagged", migration(4, "d", "SELECT 4;\n"))
    history = read_history(config(repo, cl_strategy="tag"))
    assert history.strategy == "tag"
    assert summary(history) == [
        ("v1.2.9", 1),
        ("v1.2.10", 2),
        ("v2.0.0-rc.1", 2),
        ("v2.0.0", 3),
        ("vnext", 3),
    ]
    assert all(v.number is None for v in history.versions)
    assert [v.position for v in history.versions] == [0, 1, 2, 3, 4]
    assert history.commits == 3
    assert history.find("v1.2.10").subject == "two"
    assert history.find("v2.0.0-rc.1").subject == "two"  # the tagged commit's, not the tag's
    assert {c.path for c in history.find("v1.2.10").changes} == {
        "migrations/2_b.up.sql",
        "migrations/2_b.down.sql",
    }
    assert history.find("v2.0.0-rc.1").changes == ()


def test_tags_on_a_release_branch_read_their_own_tree(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.tag("v1.0.0")
    repo.git("checkout", "-q", "-b", "release-1.0")
    repo.commit("hotfix", {"migrations/1_a.up.sql": "SELECT 10;\n"})
    repo.tag("v1.0.1")
    repo.git("checkout", "-q", "main")
    repo.commit("two", migration(2, "b", "SELECT 2;\n"))
    repo.tag("v1.1.0")
    history = read_history(config(repo, cl_strategy="tag"))
    assert summary(history) == [("v1.0.0", 1), ("v1.0.1", 1), ("v1.1.0", 2)]
    hotfix = history.find("v1.0.1")
    assert [c.kind for c in hotfix.changes] == ["modified"]
    assert hotfix.migrations["migrations/1_a.up.sql"] == blob(
        repo, "v1.0.1", "migrations/1_a.up.sql"
    )
    # v1.1.0 is built from main: it has the original 1_a, so the edit is undone.
    assert [c.kind for c in history.find("v1.1.0").changes].count("modified") == 1


def test_tag_glob_selects_tags_and_renames_between_tags_are_found(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.tag("release-1")
    repo.tag("v9")
    repo.git("mv", "migrations/1_a.up.sql", "migrations/1_b.up.sql")
    repo.git("mv", "migrations/1_a.down.sql", "migrations/1_b.down.sql")
    repo.commit("rename")
    repo.tag("release-2")
    history = read_history(config(repo, cl_strategy="tag", tag_glob="release-*"))
    assert [v.cl for v in history.versions] == ["release-1", "release-2"]
    assert sorted((c.kind, c.path, c.old_path) for c in history.versions[1].changes) == [
        ("renamed", "migrations/1_b.down.sql", "migrations/1_a.down.sql"),
        ("renamed", "migrations/1_b.up.sql", "migrations/1_a.up.sql"),
    ]


def test_tag_before_the_folder_existed_has_no_schema(repo: GitRepo) -> None:
    repo.commit("skeleton", {"README.md": "x\n"})
    repo.tag("v0.1.0")
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.tag("v0.2.0")
    history = read_history(config(repo, cl_strategy="tag"))
    assert summary(history) == [("v0.1.0", None), ("v0.2.0", 1)]


def test_no_matching_tag_is_an_error(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.tag("release-1")
    with pytest.raises(HistoryError, match=r"no tag matches `v\*`") as caught:
        read_history(config(repo, cl_strategy="tag"))
    assert caught.value.fix is not None and "git fetch --tags" in caught.value.fix


def test_semver_key_orders_versions_then_names() -> None:
    names = [
        "v1.10.0",
        "zeta",
        "v1.2.10",
        "v1.2.9",
        "v2.0.0",
        "v2.0.0-rc.10",
        "v2.0.0-rc.2",
        "v2.0.0-alpha",
        "v1.2",
        "alpha",
        "v2.0.0+build.5",
    ]
    assert sorted(names, key=semver_key) == [
        "v1.2",
        "v1.2.9",
        "v1.2.10",
        "v1.10.0",
        "v2.0.0-alpha",
        "v2.0.0-rc.2",
        "v2.0.0-rc.10",
        "v2.0.0",
        "v2.0.0+build.5",
        "alpha",
        "zeta",
    ]


# ---------------------------------------------------------------------------
# Branches and bad repositories


def test_configured_branch_is_read_instead_of_the_checked_out_one(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.git("checkout", "-q", "-b", "release")
    tip = repo.commit("release only", migration(2, "b", "SELECT 2;\n"))
    repo.git("checkout", "-q", "main")
    assert summary(read_history(config(repo))) == [("1", 1)]
    history = read_history(config(repo, branch="release"))
    assert (history.branch, history.tip) == ("release", tip)
    assert summary(history) == [("1", 1), ("2", 2)]


def test_detached_head_reads_head(repo: GitRepo) -> None:
    first = repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.commit("two", migration(2, "b", "SELECT 2;\n"))
    repo.git("checkout", "-q", "--detach", first)
    history = read_history(config(repo))
    assert (history.branch, history.tip, summary(history)) == ("HEAD", first, [("1", 1)])


def test_missing_branch_is_an_error(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    with pytest.raises(HistoryError, match="branch `release` not found"):
        read_history(config(repo, branch="release"))
    with pytest.raises(HistoryError, match="branch `--all` not found"):
        read_history(config(repo, branch="--all"))


def test_missing_branch_suggests_the_remote_one(tmp_path: Path) -> None:
    origin = GitRepo(tmp_path / "origin")
    origin.commit("one", migration(1, "a", "SELECT 1;\n"))
    origin.git("branch", "release")
    clone = GitRepo(tmp_path / "clone")
    clone.git("remote", "add", "origin", str(origin.path))
    clone.git("fetch", "-q", "origin")
    clone.git("checkout", "-q", "-b", "main", "origin/main")
    with pytest.raises(HistoryError) as caught:
        read_history(Config(repo=clone.path, branch="release"))
    assert caught.value.fix is not None and "origin/release" in caught.value.fix
    history = read_history(Config(repo=clone.path, branch="origin/release"))
    assert summary(history) == [("1", 1)]


def test_shallow_clone_is_an_error(tmp_path: Path, repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.commit("two", migration(2, "b", "SELECT 2;\n"))
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(shallow)],
        env={**os.environ, **BASE_ENV},
        check=True,
    )
    with pytest.raises(HistoryError, match="history incomplete") as caught:
        read_history(Config(repo=shallow))
    assert caught.value.fix is not None and "git fetch --unshallow" in caught.value.fix


def test_not_a_repository(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    with pytest.raises(HistoryError, match="not a git repository"):
        read_history(Config(repo=folder))
    with pytest.raises(HistoryError, match="does not exist"):
        read_history(Config(repo=tmp_path / "missing"))


def test_empty_repository_is_an_error(repo: GitRepo) -> None:
    with pytest.raises(HistoryError, match="no commits yet"):
        read_history(config(repo))


# ---------------------------------------------------------------------------
# find


def test_find_accepts_numbers_and_commit_ids(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"), change=1565)
    second = repo.commit("two", change=1600)
    history = read_history(config(repo))
    assert history.find("1565").cl == "1565"
    assert history.find(" 01565 ").cl == "1565"
    assert history.find(second).cl == "1600"
    assert history.find(second[:7].upper()).cl == "1600"
    with pytest.raises(UnknownCLError, match="CL 1599") as caught:
        history.find("1599")
    assert caught.value.fix is not None and "1565 ... 1600" in caught.value.fix
    with pytest.raises(UnknownCLError):
        history.find(second[:6])  # too short to be a commit id


def test_find_reports_an_ambiguous_commit_prefix() -> None:
    def version(cl: str, commit: str) -> CodeVersion:
        return CodeVersion(cl, int(cl), commit, datetime.now(UTC), "s", int(cl) - 1, None, {}, ())

    history = History(
        folder="migrations",
        branch="main",
        tip="abcdef0" + "2" * 33,
        strategy="ordinal",
        versions=(version("1", "abcdef0" + "1" * 33), version("2", "abcdef0" + "2" * 33)),
        skipped=0,
        commits=2,
    )
    with pytest.raises(UnknownCLError) as caught:
        history.find("abcdef0")
    assert caught.value.fix is not None and "ambiguous" in caught.value.fix
    assert history.find("abcdef01").cl == "1"
    empty = dataclasses.replace(history, versions=())
    with pytest.raises(UnknownCLError) as caught:
        empty.find("1")
    assert caught.value.fix is not None and "no code versions" in caught.value.fix


def test_find_on_ordinal_and_tag_histories(repo: GitRepo) -> None:
    repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    repo.tag("v1.0.0")
    ordinal = read_history(config(repo))
    assert ordinal.find("1").subject == "one"
    tagged = read_history(config(repo, cl_strategy="tag"))
    assert tagged.find("v1.0.0").cl == "v1.0.0"
    with pytest.raises(UnknownCLError):
        tagged.find("1.0.0")


# ---------------------------------------------------------------------------
# Data


@pytest.mark.parametrize("numbered", [True, False])
def test_versions_history_builds_equal_the_dataclass_constructor(numbered: bool) -> None:
    change = FileChange("added", "migrations/3_a.up.sql", None, None, "b" * 40)
    builder = _Builder("migrations", numbered=numbered, ordinal=not numbered, progress=None)
    builder.add([("a" * 40, EPOCH, "s", 7 if numbered else None, (change,))])
    (fast,) = builder.gerrit if numbered else builder.ordinal
    fields: Mapping[str, object] = {
        "cl": "7" if numbered else "1",
        "number": 7 if numbered else 1,
        "commit": "a" * 40,
        "date": datetime.fromtimestamp(EPOCH, UTC),
        "subject": "s",
        "position": 0,
        "schema": 3,
        "migrations": {"migrations/3_a.up.sql": "b" * 40},
        "changes": (change,),
    }
    assert [f.name for f in dataclasses.fields(CodeVersion)] == list(fields)
    assert list(vars(fast)) == list(fields)
    slow = CodeVersion(**fields)  # type: ignore[arg-type]
    assert fast == slow and repr(fast) == repr(slow) and hash(fast) == hash(slow)
    assert dataclasses.replace(fast, position=1).position == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.cl = "8"  # type: ignore[misc]
    assert len({fast, slow}) == 1
