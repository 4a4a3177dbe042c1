"""Tests for rollsafe._git, the git adapter, against real repositories."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from rollsafe import _git, _gitlog
from rollsafe.errors import HistoryError
from tests.gitrepo import BASE_ENV, GitRepo, migration


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


def blob_of(repo: GitRepo, data: bytes) -> str:
    """Store ``data`` as a blob and return its id."""
    done = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        cwd=repo.path,
        input=data,
        capture_output=True,
        env={**os.environ, **BASE_ENV},
        check=True,
    )
    return done.stdout.decode().strip()


# ---------------------------------------------------------------------------
# open_repo and small queries


def test_open_repo_accepts_a_work_tree(repo: GitRepo) -> None:
    handle = _git.open_repo(repo.path)
    assert Path(str(handle.working_tree_dir)) == repo.path


def test_open_repo_rejects_a_plain_folder_and_a_missing_one(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="not a git repository") as caught:
        _git.open_repo(tmp_path)
    assert caught.value.where == str(tmp_path)
    assert caught.value.fix is not None and "--repo" in caught.value.fix
    with pytest.raises(HistoryError, match="folder does not exist"):
        _git.open_repo(tmp_path / "missing")


def test_open_repo_does_not_search_parent_folders(repo: GitRepo) -> None:
    (repo.path / "sub").mkdir()
    with pytest.raises(HistoryError, match="not a git repository"):
        _git.open_repo(repo.path / "sub")


def test_branch_and_commit_queries(repo: GitRepo) -> None:
    handle = _git.open_repo(repo.path)
    assert _git.current_branch(handle) == "main"
    assert _git.resolve_commit(handle, "HEAD") is None  # unborn
    first = repo.commit("one")
    assert _git.resolve_commit(handle, "main") == first
    assert _git.resolve_commit(handle, first[:8]) == first
    assert _git.resolve_commit(handle, "nope") is None
    assert _git.resolve_commit(handle, "--all") is None
    repo.git("checkout", "-q", "--detach")
    assert _git.current_branch(handle) == "HEAD"
    assert not _git.is_shallow(handle)
    assert _git.ref_exists(handle, "refs/heads/main")
    assert not _git.ref_exists(handle, "refs/notes/review")


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("review", "refs/notes/review"),
        ("notes/review", "refs/notes/review"),
        ("refs/notes/review", "refs/notes/review"),
        ("refs/other/x", "refs/other/x"),
    ],
)
def test_notes_ref_expands_like_git(name: str, ref: str) -> None:
    assert _git.notes_ref(name) == ref


def test_failing_command_becomes_a_history_error(repo: GitRepo) -> None:
    repo.commit("one")
    handle = _git.open_repo(repo.path)
    with pytest.raises(HistoryError, match=r"git failed while testing: fatal: .*no-such-rev"):
        _git.run(handle, "log", "no-such-rev", doing="testing")
    with pytest.raises(HistoryError, match=r"git failed while streaming: fatal:"):
        list(_gitlog.stream_chunks(handle, "log", ["no-such-rev"], doing="streaming"))


def _git_children() -> set[int]:
    """Process ids of the ``git log`` processes this test process started (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"log" in command:
            found.add(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_stream_kills_and_reaps_git_when_the_reader_stops(repo: GitRepo) -> None:
    # Far more output than the pipe holds: git cannot finish on its own while no one reads.
    for index in range(4):
        repo.commit(f"commit {index}", {"f.txt": f"{index} line\n" * 400_000})
    handle = _git.open_repo(repo.path)
    chunks = _gitlog.stream_chunks(handle, "log", ["-p", "--format=%H"], doing="reading")
    assert next(chunks)
    (pid,) = _git_children()
    closing = threading.Thread(target=chunks.close, daemon=True)
    closing.start()
    # Not a timing assertion: without the kill, close() waits forever on a blocked git.
    closing.join(timeout=120)
    assert not closing.is_alive(), "close() is waiting for a git process nobody killed"
    assert not Path(f"/proc/{pid}").exists(), "git was not reaped (a zombie is left)"


# ---------------------------------------------------------------------------
# first_parent_log


def test_first_parent_log_reads_oldest_first_with_raw_changes(repo: GitRepo) -> None:
    first = repo.commit("one", migration(1, "a", "SELECT 1;\n"), change=7)
    repo.commit("two", {"migrations/1_a.up.sql": "SELECT 11;\n", "other.txt": "x\n"})
    handle = _git.open_repo(repo.path)
    commits = [
        commit
        for batch in _gitlog.first_parent_log(
            handle, repo.head(), "migrations", messages=True, notes=None
        )
        for commit in batch
    ]
    assert [c.subject for c in commits] == [b"one", b"two"]
    assert commits[0].sha.decode() == first
    assert b"Reviewed-on: https://review.example/c/project/+/7" in commits[0].body
    assert commits[0].notes == b""
    assert {(c.status, c.new_path) for c in commits[0].changes} == {
        ("A", "migrations/1_a.up.sql"),
        ("A", "migrations/1_a.down.sql"),
    }
    (change,) = commits[1].changes  # other.txt is outside the folder
    assert (change.status, change.old_path, change.new_path) == (
        "M",
        "migrations/1_a.up.sql",
        "migrations/1_a.up.sql",
    )
    assert change.old_is_file and change.new_is_file


def test_first_parent_log_without_messages_and_with_notes(repo: GitRepo) -> None:
    first = repo.commit("one\n\nbody text")
    repo.git("notes", "--ref=refs/notes/review", "add", "-m", "Reviewed-on: x/3", first)
    handle = _git.open_repo(repo.path)
    (commit,) = [
        commit
        for batch in _gitlog.first_parent_log(
            handle, first, "migrations", messages=False, notes="refs/notes/review"
        )
        for commit in batch
    ]
    assert commit.body == b""
    assert commit.notes.strip() == b"Reviewed-on: x/3"


# ---------------------------------------------------------------------------
# Tags and trees


def test_commit_tags_peels_annotated_tags_and_skips_other_objects(repo: GitRepo) -> None:
    first = repo.commit("one")
    second = repo.commit("two")
    repo.tag("light", first)
    repo.git("tag", "-a", "-m", "annotated", "heavy", second)
    repo.git("tag", "tree-tag", f"{second}^{{tree}}")
    repo.git("tag", "-a", "-m", "nested", "nested", "heavy")
    handle = _git.open_repo(repo.path)
    tags = {t.name: t for t in _git.commit_tags(handle)}
    assert set(tags) == {"light", "heavy"}
    assert (tags["light"].commit, tags["light"].subject) == (first, "one")
    assert (tags["heavy"].commit, tags["heavy"].subject) == (second, "two")
    assert tags["heavy"].timestamp > tags["light"].timestamp


def test_folder_blobs_lists_direct_regular_files(repo: GitRepo) -> None:
    commit = repo.commit(
        "files",
        {
            **migration(1, "a", "SELECT 1;\n"),
            "migrations/sub/x.sql": "x\n",
            "migrations-other/y.sql": "y\n",
        },
    )
    handle = _git.open_repo(repo.path)
    assert set(_git.folder_blobs(handle, commit, "migrations")) == {
        "migrations/1_a.up.sql",
        "migrations/1_a.down.sql",
    }
    assert _git.folder_blobs(handle, commit, "nowhere") == {}


# ---------------------------------------------------------------------------
# read_blobs


def test_read_blobs_reads_many_through_one_process(repo: GitRepo) -> None:
    contents = {blob_of(repo, f"blob {i}\n".encode() * (i + 1)): i for i in range(300)}
    big = b"x" * 300_000 + b"\n"  # larger than a pipe buffer
    big_id = blob_of(repo, big)
    wanted = [*contents, big_id, big_id]
    found = _git.read_blobs(repo.path, wanted)
    assert set(found) == {*contents, big_id}
    assert found[big_id] == big
    for blob, index in contents.items():
        assert found[blob] == f"blob {index}\n".encode() * (index + 1)


def test_read_blobs_of_nothing_is_empty(tmp_path: Path) -> None:
    # No process is started, so not even the folder is looked at.
    assert _git.read_blobs(tmp_path / "anywhere", []) == {}


def test_read_blobs_names_a_missing_object(repo: GitRepo) -> None:
    known = blob_of(repo, b"known\n")
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(HistoryError, match=f"git object {missing} is not in the repository"):
        _git.read_blobs(repo.path, [known, missing, known])


def test_read_blobs_outside_a_repository(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="not a git repository"):
        _git.read_blobs(tmp_path, ["0123456789abcdef0123456789abcdef01234567"])


# ---------------------------------------------------------------------------
# files_at


@pytest.fixture
def tree(repo: GitRepo) -> GitRepo:
    repo.commit(
        "files",
        {
            "queries/machines.sql": "SELECT 1;\n",
            "queries/deep/sessions.sql": "SELECT 2;\n",
            "queries/notes.txt": "not a query\n",
            "db/queries/other.sql": "SELECT 3;\n",
            "top.sql": "SELECT 4;\n",
        },
    )
    repo.tag("v1")
    repo.commit("later", {"queries/machines.sql": "SELECT 10;\n"})
    return repo


def test_files_at_matches_globs_against_repository_paths(tree: GitRepo) -> None:
    assert _git.files_at(tree.path, "v1", ["queries/*.sql"]) == {
        "queries/machines.sql": "SELECT 1;\n",
        "queries/deep/sessions.sql": "SELECT 2;\n",  # fnmatch: * also matches /
    }
    assert _git.files_at(tree.path, "HEAD", ["queries/machines.sql", "top.sql"]) == {
        "queries/machines.sql": "SELECT 10;\n",
        "top.sql": "SELECT 4;\n",
    }


def test_files_at_with_a_leading_wildcard_lists_the_whole_tree(tree: GitRepo) -> None:
    found = _git.files_at(tree.path, "main", ["*queries/*.sql", "*.txt"])
    assert set(found) == {
        "queries/machines.sql",
        "queries/deep/sessions.sql",
        "queries/notes.txt",
        "db/queries/other.sql",
    }


def test_files_at_without_patterns_or_matches(tree: GitRepo) -> None:
    assert _git.files_at(tree.path, "main", []) == {}
    assert _git.files_at(tree.path, "main", ["nowhere/*.sql"]) == {}


def test_files_at_rejects_an_unknown_commit(tree: GitRepo) -> None:
    with pytest.raises(HistoryError, match="no commit `v9`") as caught:
        _git.files_at(tree.path, "v9", ["*.sql"])
    assert caught.value.fix is not None and "git fetch" in caught.value.fix


def test_files_at_rejects_text_that_is_not_utf8(repo: GitRepo) -> None:
    (repo.path / "queries").mkdir()
    (repo.path / "queries" / "bad.sql").write_bytes(b"SELECT '\xff';\n")
    commit = repo.commit("latin-1")
    with pytest.raises(HistoryError, match=r"not UTF-8 text") as caught:
        _git.files_at(repo.path, commit, ["queries/*.sql"])
    assert caught.value.where == f"queries/bad.sql at {commit[:12]}"


def test_files_at_skips_symlinks(repo: GitRepo) -> None:
    (repo.path / "queries").mkdir()
    (repo.path / "queries" / "a.sql").write_text("SELECT 1;\n")
    (repo.path / "queries" / "b.sql").symlink_to("a.sql")
    commit = repo.commit("link")
    assert set(_git.files_at(repo.path, commit, ["queries/*.sql"])) == {"queries/a.sql"}


def test_names_that_are_not_utf8_are_replaced_not_fatal(repo: GitRepo) -> None:
    (repo.path / "queries").mkdir()
    (repo.path / "queries" / os.fsdecode(b"caf\xe9.sql")).write_bytes(b"SELECT 1;\n")
    commit = repo.commit("latin-1 name\x85with odd separators")
    repo.tag("odd")
    assert _git.files_at(repo.path, commit, ["queries/*.sql"]) == {
        "queries/caf\ufffd.sql": "SELECT 1;\n"
    }
    handle = _git.open_repo(repo.path)
    assert set(_git.folder_blobs(handle, commit, "queries")) == {"queries/caf\ufffd.sql"}
    (tag,) = _git.commit_tags(handle)
    assert tag.subject == "latin-1 name\x85with odd separators"


def test_literal_prefix() -> None:
    assert _git._literal_prefix("queries/*.sql") == "queries/"
    assert _git._literal_prefix("a/b/c?.sql") == "a/b/"
    assert _git._literal_prefix("a/b[cd]/x.sql") == "a/"
    assert _git._literal_prefix("*.sql") == ""
    assert _git._literal_prefix("exact/file.sql") == "exact/file.sql"


# ---------------------------------------------------------------------------
# What the history cache asks git


def test_first_parent_log_since_reads_only_the_newer_commits_with_their_parent(
    repo: GitRepo,
) -> None:
    first = repo.commit("one", migration(1, "a", "SELECT 1;\n"))
    second = repo.commit("two", {"README.md": "x\n"})
    third = repo.commit("three", migration(2, "b", "SELECT 2;\n"), change=5)
    handle = _git.open_repo(repo.path)
    commits = [
        commit
        for batch in _gitlog.first_parent_log(
            handle, third, "migrations", messages=True, notes=None, since=first
        )
        for commit in batch
    ]
    assert [c.sha.decode() for c in commits] == [second, third]
    assert [c.parent.decode() for c in commits] == [first, second]
    assert b"Reviewed-on:" in commits[1].body
    assert {c.new_path for c in commits[1].changes} == {
        "migrations/2_b.up.sql",
        "migrations/2_b.down.sql",
    }
    # Without ``since``, no parent is asked for.
    (only,) = [
        commit
        for batch in _gitlog.first_parent_log(
            handle, first, "migrations", messages=False, notes=None
        )
        for commit in batch
    ]
    assert only.parent == b""


def test_ref_tips_lists_matching_refs_in_one_call(repo: GitRepo) -> None:
    head = repo.commit("one")
    repo.git("notes", "--ref=refs/notes/review", "add", "-m", "n", head)
    handle = _git.open_repo(repo.path)
    notes = repo.git("rev-parse", "refs/notes/review").strip()
    assert _git.ref_tips(handle, ["refs/notes/review", "refs/replace/"]) == {
        "refs/notes/review": notes
    }
    repo.git("replace", head, repo.git("commit-tree", "HEAD^{tree}", "-m", "r").strip())
    tips = _git.ref_tips(handle, ["refs/replace/"])
    assert tips is not None and list(tips) == [f"refs/replace/{head}"]
    assert _git.ref_tips(handle, []) == {}
    shutil.rmtree(repo.path / ".git")
    assert _git.ref_tips(handle, ["refs/replace/"]) is None  # git cannot tell: no exception


def test_changed_note_targets_names_annotated_objects(repo: GitRepo) -> None:
    first = repo.commit("one")
    second = repo.commit("two")
    ref = "--ref=refs/notes/review"
    repo.git("notes", ref, "add", "-m", "a", first)
    before = repo.git("rev-parse", "refs/notes/review").strip()
    repo.git("notes", ref, "add", "-m", "b", second)
    repo.git("notes", ref, "add", "-f", "-m", "a2", first)
    after = repo.git("rev-parse", "refs/notes/review").strip()
    handle = _git.open_repo(repo.path)
    assert _git.changed_note_targets(handle, before, after) == {first, second}
    assert _git.changed_note_targets(handle, after, after) == set()
    assert _git.changed_note_targets(handle, "0" * 40, after) is None


def test_git_identity_changes_with_the_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A git upgrade replaces the binary: the identity (kept in the cache key) must change."""
    import git

    binary = tmp_path / "git"
    found = shutil.which("git")
    assert found is not None
    shutil.copy2(found, binary)
    monkeypatch.setattr(git.Git, "GIT_PYTHON_GIT_EXECUTABLE", str(binary))
    before = _git.git_identity()
    assert before.startswith(f"{binary.resolve()}:{binary.stat().st_size}:")
    stat = binary.stat()
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert _git.git_identity() != before
    other = tmp_path / "other-git"
    shutil.copy2(binary, other)
    monkeypatch.setattr(git.Git, "GIT_PYTHON_GIT_EXECUTABLE", str(other))
    assert _git.git_identity().startswith(f"{other.resolve()}:")
