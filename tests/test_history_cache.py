"""The history cache: a read through it must equal a full read, whatever happened since.

Why: the cache makes every run after the first read only the commits that
landed since, so a wrong decision to trust it would silently give a wrong
table.  Each test first proves which path a read took by *tampering* with
the cache (a subject or a CL number that git never wrote): a read that shows
the tampered value used the cache, a read equal to a full read did not.
"""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.cli import main
from rollsafe.config import Config
from rollsafe.errors import HistoryError
from rollsafe.history import History, cache_disabled, read_history
from rollsafe.history import _cache as _history_cache
from rollsafe.history._model import PROGRESS_EVERY
from tests.gitrepo import BASE_ENV, EPOCH, GitRepo, migration

TAMPERED = "tampered by the test"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A Gerrit history with every kind of folder change, a merge and a commit without CL."""
    git = GitRepo(tmp_path / "repo")
    git.commit("base", migration(1, "a", "SELECT 1;\n"), change=10)
    git.commit("two", migration(2, "b", "SELECT 2;\n"), change=12)
    git.commit("direct push without review", {"README.md": "x\n"})
    git.git("checkout", "-q", "-b", "feature")
    git.commit("side", migration(3, "c", "SELECT 3;\n"), change=50)
    git.git("checkout", "-q", "main")
    git.commit("landed before the merge", change=11)
    merge(git, "feature", "Merge feature", change=13)
    git.commit("edit", {"migrations/1_a.up.sql": "SELECT 11;\n"}, change=14)
    git.git("mv", "migrations/2_b.up.sql", "migrations/2_bb.up.sql")
    git.git("mv", "migrations/2_b.down.sql", "migrations/2_bb.down.sql")
    git.commit("rename", change=15)
    return git


def config(git: GitRepo, **settings: object) -> Config:
    return Config(repo=git.path, **settings)  # type: ignore[arg-type]


def merge(git: GitRepo, branch: str, subject: str, *, change: int | None = None) -> str:
    git.clock += 3600
    stamp = f"{git.clock} +0000"
    text = subject if change is None else f"{subject}\n\nReviewed-on: https://r/c/p/+/{change}\n"
    git.git(
        "merge",
        "--no-ff",
        "-q",
        "-m",
        text,
        branch,
        env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
    )
    return git.head()


def cache_files(git: GitRepo) -> list[Path]:
    return sorted((git.path / ".git" / _history_cache.FOLDER).glob("history-*.bin"))


def snapshot(path: Path) -> tuple[str, _history_cache.CachedHistory]:
    """The key and content of a cache file (the key is the first value stored)."""
    data = path.read_bytes()
    key = marshal.loads(data[len(_history_cache._MAGIC) + 32 :])[0]
    loaded = _history_cache.load(path, key)
    assert loaded is not None, "the file should be a valid cache"
    return key, loaded


def tamper(git: GitRepo, index: int = 0, *, number: int | None = None) -> None:
    """Change what the only cache file says about commit ``index`` (subject, or CL number)."""
    (path,) = cache_files(git)
    key, content = snapshot(path)
    if number is None:
        content.records.subjects[index] = TAMPERED
    else:
        content.records.numbers[index] = number
    assert _history_cache.store(path, key, content)


def full(git: GitRepo, **settings: object) -> History:
    return read_history(config(git, **settings), cache=False)


def same_except_first_subject(read: History, expected: History) -> None:
    assert read.versions[0].subject == TAMPERED
    assert read.versions[1:] == expected.versions[1:]
    assert (read.tip, read.commits, read.skipped, read.strategy) == (
        expected.tip,
        expected.commits,
        expected.skipped,
        expected.strategy,
    )


# ---------------------------------------------------------------------------
# Hits and appends


@pytest.mark.parametrize("strategy", ["auto", "gerrit", "ordinal"])
def test_a_second_read_comes_from_the_cache_and_equals_a_full_read(
    repo: GitRepo, strategy: str
) -> None:
    first = read_history(config(repo, cl_strategy=strategy))
    assert len(cache_files(repo)) == 1
    assert first == full(repo, cl_strategy=strategy)
    again = read_history(config(repo, cl_strategy=strategy))
    assert again == first
    # Mappings stay shared: versions that did not touch the folder reuse one.
    assert again.versions[1].migrations is again.versions[2].migrations

    tamper(repo)
    same_except_first_subject(read_history(config(repo, cl_strategy=strategy)), first)


def test_new_commits_are_read_from_git_and_appended(repo: GitRepo) -> None:
    read_history(config(repo))
    tamper(repo)
    repo.commit("three", migration(3, "d", "SELECT 3;\n"), change=16)
    repo.commit("re-landed by a direct push", {"README.md": "y\n"}, change=12)
    repo.commit(
        "delete", {"migrations/2_bb.up.sql": None, "migrations/2_bb.down.sql": None}, change=17
    )
    repo.commit("no CL", {"migrations/4_e.up.sql": "SELECT 4;\n"})
    repo.commit("after", change=18)

    read = read_history(config(repo))
    expected = full(repo)
    same_except_first_subject(read, expected)  # old commits replayed, new ones read
    assert [v.cl for v in read.versions][-4:] == ["16", "12", "17", "18"]
    (path,) = cache_files(repo)
    assert snapshot(path)[1].tip == repo.head()
    assert read_history(config(repo)) == read  # and the appended file replays the same


def test_auto_switches_to_gerrit_when_the_first_trailer_lands_after_the_cache(
    tmp_path: Path,
) -> None:
    git = GitRepo(tmp_path / "repo")
    git.commit("imported", migration(1, "a", "SELECT 1;\n"))
    git.commit("imported too", migration(2, "b", "SELECT 2;\n"))
    assert read_history(config(git)).strategy == "ordinal"
    git.commit("first review", change=700)
    read = read_history(config(git))
    assert read == full(git)
    assert read.strategy == "gerrit"
    assert [v.cl for v in read.versions] == ["700"]


def test_progress_is_reported_alike_from_git_and_from_the_cache(tmp_path: Path) -> None:
    git = GitRepo(tmp_path / "repo")
    count = 2 * PROGRESS_EVERY + 300
    lines = []
    for index in range(count):
        body = f"change {index}\n\nReviewed-on: https://r/c/p/+/{index + 1}\n".encode()
        lines.append(b"commit refs/heads/main\n")
        lines.append(b"committer Dev <dev@example.com> %d +0000\n" % (EPOCH + index))
        lines.append(b"data %d\n%s\n" % (len(body), body))
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=git.path,
        input=b"".join(lines),
        env={**os.environ, **BASE_ENV},
        check=True,
    )
    cold: list[int] = []
    warm: list[int] = []
    read_history(config(git), progress=cold.append)
    read_history(config(git), progress=warm.append)
    assert cold == warm == [PROGRESS_EVERY, 2 * PROGRESS_EVERY, count]


# ---------------------------------------------------------------------------
# When the cache must not be trusted


def amend(git: GitRepo) -> None:
    git.git("commit", "-q", "--amend", "-m", "rename, reworded\n\nReviewed-on: https://r/c/p/+/99")


def reset_and_commit(git: GitRepo) -> None:
    git.git("reset", "-q", "--hard", "HEAD~3")
    git.commit("another future", migration(5, "f", "SELECT 5;\n"), change=77)


def rewrite_an_old_commit(git: GitRepo) -> None:
    """Drop an old commit from history (what a rebase that edits the past does)."""
    third = git.git("rev-list", "--first-parent", "--reverse", "HEAD").split()[2]
    git.git("rebase", "-q", "--rebase-merges", "--onto", f"{third}~1", third)


@pytest.mark.parametrize("rewrite", [amend, reset_and_commit, rewrite_an_old_commit])
def test_rewritten_history_is_read_again_in_full(
    repo: GitRepo, rewrite: Callable[[GitRepo], None]
) -> None:
    read_history(config(repo))
    tamper(repo)
    rewrite(repo)
    read = read_history(config(repo))
    assert read == full(repo)
    assert all(v.subject != TAMPERED for v in read.versions)
    (path,) = cache_files(repo)
    assert snapshot(path)[1].tip == repo.head()  # rewritten for the new history


def test_a_branch_reset_back_replays_the_start_of_the_cache(repo: GitRepo) -> None:
    newest = read_history(config(repo)).tip
    tamper(repo)
    repo.git("reset", "-q", "--hard", "HEAD~2")
    read = read_history(config(repo))
    same_except_first_subject(read, full(repo))
    (path,) = cache_files(repo)
    assert snapshot(path)[1].tip == newest  # the file keeps the longer history


def test_a_cached_tip_merged_from_a_side_branch_is_not_on_the_first_parent_chain(
    tmp_path: Path,
) -> None:
    git = GitRepo(tmp_path / "repo")
    git.commit("base", migration(1, "a", "SELECT 1;\n"), change=1)
    git.git("checkout", "-q", "-b", "feature")
    side = git.commit("side", migration(2, "b", "SELECT 2;\n"), change=50)
    git.git("checkout", "-q", "main")
    git.commit("mainline", change=2)
    merged = merge(git, "feature", "Merge feature", change=3)
    # Read the side commit under the name the merge is read with later (a detached HEAD).
    git.git("checkout", "-q", "--detach", side)
    read_history(config(git))
    tamper(git)
    git.git("checkout", "-q", "--detach", merged)
    read = read_history(config(git))
    assert read == full(git)
    assert [v.cl for v in read.versions] == ["1", "2", "3"]


def test_replace_refs_make_the_cache_stale(repo: GitRepo) -> None:
    read_history(config(repo))
    tamper(repo)
    first = repo.git("rev-list", "--max-parents=0", "HEAD").strip()
    replacement = repo.git(
        "commit-tree", f"{first}^{{tree}}", "-m", "base, replaced\n\nReviewed-on: x/+/9"
    ).strip()
    repo.git("replace", first, replacement)
    read = read_history(config(repo))
    assert read == full(repo)
    assert read.versions[0].cl == "9"


def test_a_note_added_to_an_old_commit_makes_the_cache_stale(tmp_path: Path) -> None:
    git = GitRepo(tmp_path / "repo")
    first = git.commit("one", migration(1, "a", "SELECT 1;\n"))
    git.commit("two", migration(2, "b", "SELECT 2;\n"))
    third = git.commit("three")
    git.git("notes", "--ref=refs/notes/review", "add", "-m", "Reviewed-on: x/+/3", third)
    assert [v.cl for v in read_history(config(git)).versions] == ["3"]
    tamper(git, 2)
    git.git("notes", "--ref=refs/notes/review", "add", "-m", "Reviewed-on: x/+/1", first)
    read = read_history(config(git))
    assert read == full(git)
    assert [v.cl for v in read.versions] == ["1", "3"]


def test_notes_of_new_commits_only_keep_the_cache(tmp_path: Path) -> None:
    git = GitRepo(tmp_path / "repo")
    first = git.commit("one", migration(1, "a", "SELECT 1;\n"))
    git.git("notes", "--ref=refs/notes/review", "add", "-m", "Reviewed-on: x/+/1", first)
    read_history(config(git))
    tamper(git)
    second = git.commit("two", migration(2, "b", "SELECT 2;\n"))
    git.git("notes", "--ref=refs/notes/review", "add", "-m", "Reviewed-on: x/+/2", second)
    read = read_history(config(git))
    same_except_first_subject(read, full(git))  # as Gerrit does on every landing
    assert [v.cl for v in read.versions] == ["1", "2"]


def test_the_cache_is_never_shared_between_questions(repo: GitRepo) -> None:
    default = read_history(config(repo))
    tamper(repo)
    others = [
        {"cl_strategy": "ordinal"},
        {"cl_strategy": "gerrit"},
        {"migrations": "./migrations/other"},
        {"notes_ref": "refs/notes/other"},
        {"branch": "feature"},
    ]
    for settings in others:
        read = read_history(config(repo, **settings))
        assert all(v.subject != TAMPERED for v in read.versions), settings
    assert len(cache_files(repo)) == 1 + len(others)
    same_except_first_subject(read_history(config(repo)), default)


# ---------------------------------------------------------------------------
# Damaged files, and no cache at all


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def other_magic(data: bytes) -> bytes:
    return b"X" + data[1:]


def garbage(data: bytes) -> bytes:
    return b"\x00" * len(data)


def empty(data: bytes) -> bytes:
    return b""


@pytest.mark.parametrize("damage", [truncate, flip_last_byte, other_magic, garbage, empty])
def test_a_damaged_cache_file_is_ignored_and_rewritten(
    repo: GitRepo, damage: Callable[[bytes], bytes]
) -> None:
    expected = read_history(config(repo))
    (path,) = cache_files(repo)
    path.write_bytes(damage(path.read_bytes()))
    assert read_history(config(repo)) == expected
    snapshot(path)  # valid again


def test_a_well_formed_cache_with_records_history_cannot_take_is_ignored(repo: GitRepo) -> None:
    expected = read_history(config(repo))
    (path,) = cache_files(repo)
    key, content = snapshot(path)
    index = next(iter(content.records.changes))
    content.records.changes[index] = (("exploded", "x.sql", None, None, "0" * 40),)
    assert _history_cache.store(path, key, content)
    assert read_history(config(repo)) == expected

    for tip, notes_tip in (("--output=x", None), (content.tip, "--output=y")):
        odd = _history_cache.CachedHistory(tip, notes_tip, content.refs, content.records)
        assert _history_cache.store(path, key, odd)
        assert _history_cache.load(path, key) is None  # tips must be object ids

    content.records.numbers.pop()  # columns of different lengths
    assert _history_cache.store(path, key, content)
    assert _history_cache.load(path, key) is None
    assert read_history(config(repo)) == expected


def test_a_repository_that_cannot_hold_a_cache_is_read_without_one(repo: GitRepo) -> None:
    (repo.path / ".git" / _history_cache.FOLDER).write_text("a file, not a folder\n")
    assert read_history(config(repo)) == full(repo)
    assert not _history_cache.store(
        repo.path / ".git" / _history_cache.FOLDER / "history-x.bin",
        "key",
        _history_cache.CachedHistory("0" * 40, None, "", _history_cache.Records()),
    )


def test_a_shallow_clone_is_an_error_even_with_a_cache(tmp_path: Path, repo: GitRepo) -> None:
    read_history(config(repo))
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone)],
        check=True,
        env={**os.environ, **BASE_ENV},
    )
    (clone / ".git" / _history_cache.FOLDER).mkdir()
    for path in cache_files(repo):
        (clone / ".git" / _history_cache.FOLDER / path.name).write_bytes(path.read_bytes())
    with pytest.raises(HistoryError, match="shallow"):
        read_history(Config(repo=clone))


@pytest.mark.parametrize(("value", "bypassed"), [("1", True), ("yes", True), ("0", False)])
def test_rollsafe_no_cache_bypasses_the_cache(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch, value: str, bypassed: bool
) -> None:
    read_history(config(repo))
    tamper(repo)
    monkeypatch.setenv(_history_cache.NO_CACHE_ENV, value)
    read = read_history(config(repo))
    assert (read.versions[0].subject != TAMPERED) is bypassed


def test_no_cache_writes_nothing(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    with cache_disabled():
        read_history(config(repo))
    monkeypatch.setenv(_history_cache.NO_CACHE_ENV, "1")
    read_history(config(repo))
    assert read_history(config(repo), cache=False) == full(repo)
    assert cache_files(repo) == []


def test_the_cli_no_cache_flag(repo: GitRepo, capsys: pytest.CaptureFixture[str]) -> None:
    def cls() -> list[str]:
        out = capsys.readouterr().out
        return [cl for row in json.loads(out)["rows"] for cl in row["cls"]]

    args = ["release-table", "--format", "json", "--repo", str(repo.path)]
    assert main([*args, "--no-cache"]) == 0
    assert cache_files(repo) == []
    expected = cls()
    assert main(args) == 0
    assert cls() == expected
    tamper(repo, 1, number=4242)  # the commit that brought schema 2
    assert main([*args, "--no-cache"]) == 0
    assert cls() == expected
    assert main(args) == 0
    assert "4242" in cls()


def test_the_key_follows_the_code_that_parses_git(tmp_path: Path) -> None:
    module = types.ModuleType("parser")
    source = tmp_path / "parser.py"
    module.__file__ = str(source)
    source.write_text("SPLIT = 1\n")
    before = _history_cache.source_digest(module)
    assert _history_cache.source_digest(module) == before
    source.write_text("SPLIT = 2\n")
    assert _history_cache.source_digest(module) != before
