"""The git adapter: every git command rollsafe runs goes through this module.

Why: history is the input of the whole tool, and git's failures (not a
repository, a missing branch, a shallow clone, an object that is not there)
must reach the user as one `HistoryError` line with a fix, never as a
GitPython traceback.  Keeping the commands here also keeps the logic modules
free of I/O: `rollsafe.history` consumes plain records produced below.

Commands run through GitPython's wrapper of the git binary (``Repo.git``);
output that can be large is streamed from the process rather than buffered,
and is read with ``-z`` so that no path or message can be mistaken for a
separator.
"""

from __future__ import annotations

import contextlib
import fnmatch
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
from git.exc import GitCommandError, GitCommandNotFound, InvalidGitRepositoryError, NoSuchPathError

from rollsafe.errors import HistoryError

#: The repository handle the other modules pass back in (GitPython's).
Repo = git.Repo


#: What to do when git itself fails on a command rollsafe runs.
_READ_FIX = "check that `git log` works in the repository; run with --debug for details"


#: File modes of regular files; symlinks (120000) and submodules (160000) are not migrations.
_FILE_MODES = frozenset({"100644", "100755"})


def open_repo(path: Path) -> git.Repo:
    """Open the git repository whose work tree (or bare folder) is ``path``.

    Why: every history question starts here, so a folder that is not a
    repository (or does not exist) becomes one clear error naming it.  The
    parent folders are not searched: the configuration already names the top
    of the work tree, and silently reading an enclosing repository would
    answer questions about the wrong project.
    """
    try:
        return git.Repo(path)
    except NoSuchPathError as exc:
        raise HistoryError(
            "folder does not exist", where=str(path), fix="pass --repo PATH of a git repository"
        ) from exc
    except InvalidGitRepositoryError as exc:
        raise HistoryError(
            "not a git repository",
            where=str(path),
            fix="run rollsafe in a git work tree or pass --repo PATH",
        ) from exc
    except GitCommandNotFound as exc:  # pragma: no cover - depends on the machine
        raise HistoryError(
            "the git binary was not found", where=str(path), fix="install git"
        ) from exc


def common_dir(path: Path) -> Path | None:
    """The repository's common git directory (shared by worktrees); None outside a repository."""
    try:
        return Path(open_repo(path).common_dir)
    except HistoryError:
        return None


def require_work_tree(path: Path, *, writing: str) -> None:
    """Refuse to write ``writing`` into a bare repository (its folder is git's own storage).

    Why: reading history works the same in a bare clone, but a file written
    there is in no commit and in no work tree, so nobody would ever see it.
    """
    try:
        bare = open_repo(path).working_tree_dir is None
    except HistoryError:
        return  # not a repository at all: a plain folder is written like any other
    if bare:
        raise HistoryError(
            f"a bare repository has no work tree to write {writing} into",
            where=str(path),
            fix="run in a clone with a work tree; reading (--check, --format json, which, "
            "upgrade-plan) works here",
        )


def _first_line(text: str | bytes | None) -> str:
    """The most telling line of git's stderr (its ``fatal:``/``error:`` line when present)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = (text or "").strip()
    if text.startswith("stderr: '") and text.endswith("'"):
        text = text[len("stderr: '") : -1]  # how GitCommandError quotes git's stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[0] if lines else "git failed"


def _failed(repo: git.Repo, exc: GitCommandError, *, doing: str) -> HistoryError:
    """Turn a failed git command into a `HistoryError` naming what rollsafe was doing."""
    return HistoryError(
        f"git failed while {doing}: {_first_line(exc.stderr)}",
        where=str(repo.working_tree_dir or repo.git_dir),
        fix=_READ_FIX,
    )


def _command(repo: git.Repo, name: str) -> Any:
    """GitPython's wrapper of ``git <name>`` (``rev-parse`` -> ``repo.git.rev_parse``)."""
    return getattr(repo.git, name.replace("-", "_"))


def run(repo: git.Repo, command: str, *args: str, doing: str) -> str:
    """Run one short git command and return its stdout (a `HistoryError` when it fails)."""
    try:
        output: str = _command(repo, command)(*args, strip_newline_in_stdout=False)
    except GitCommandError as exc:
        raise _failed(repo, exc, doing=doing) from exc
    return output


def try_run(repo: git.Repo, command: str, *args: str) -> str | None:
    """Run a git query whose failure means "no" (a missing ref), returning None then."""
    try:
        output: str = _command(repo, command)(*args, strip_newline_in_stdout=False)
    except GitCommandError:
        return None
    return output


def is_shallow(repo: git.Repo) -> bool:
    """Whether the repository is a shallow clone, whose history stops at a graft."""
    answer = run(repo, "rev-parse", "--is-shallow-repository", doing="checking for a shallow clone")
    return answer.strip() == "true"


def resolve_commit(repo: git.Repo, revision: str) -> str | None:
    """The full id of the commit ``revision`` names, or None when there is none."""
    if revision.startswith("-"):
        return None  # never let a name be read as an option
    answer = try_run(
        repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"
    )
    return answer.strip() if answer else None


def current_branch(repo: git.Repo) -> str:
    """The checked-out branch's short name, or ``HEAD`` on a detached head."""
    answer = try_run(repo, "symbolic-ref", "--quiet", "--short", "HEAD")
    return answer.strip() if answer and answer.strip() else "HEAD"


def notes_ref(name: str) -> str:
    """Expand a notes ref the way git does (``review`` -> ``refs/notes/review``)."""
    if name.startswith("refs/"):
        return name
    if name.startswith("notes/"):
        return f"refs/{name}"
    return f"refs/notes/{name}"


def ref_exists(repo: git.Repo, ref: str) -> bool:
    """Whether a full ref name exists."""
    return try_run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", ref) is not None


def ref_tips(repo: git.Repo, patterns: Sequence[str]) -> dict[str, str] | None:
    """``ref name -> object id`` of the refs matching ``patterns`` (``for-each-ref`` rules:
    a pattern is a full name, a prefix ending in ``/``, or a glob), in one git call.

    Why: the history cache must know several ref states (the notes ref, the
    replace refs) before it can trust itself, and each git call costs a
    process.  None when git cannot tell (the caller then reads without cache).
    """
    if not patterns:
        return {}
    output = try_run(repo, "for-each-ref", "--format=%(objectname) %(refname)", "--", *patterns)
    if output is None:
        return None
    tips: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, name = line.partition(" ")
        if name:
            tips[name] = sha
    return tips


def changed_note_targets(repo: git.Repo, old: str, new: str) -> set[str] | None:
    """The objects whose note differs between two commits of a notes ref; None when unknown.

    Why: Gerrit adds a note for every change it submits, so the notes ref
    moves with every landing; the history cache stays valid as long as no
    note of a commit it already read was added, edited or removed.  Notes
    live at paths named after the annotated object, split into folders
    (fan-out) as the ref grows, so the folders are joined back.  A commit
    that is gone (a forced update followed by gc) gives None: the caller then
    cannot tell and must read everything again.
    """
    output = try_run(repo, "diff-tree", "-r", "-z", "--no-renames", "--name-only", old, new)
    if output is None:
        return None
    return {path.replace("/", "") for path in output.split("\0") if path}


def git_identity() -> str:
    """Which git binary runs, with its size and modification time (no process started).

    Why: the history cache stores what git reported (rename detection
    included); a git upgrade replaces the binary, which makes every cache it
    wrote stale without having to ask git for its version.
    """
    executable = str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git")
    path = shutil.which(executable) or executable
    try:
        stat = Path(path).stat()
    except OSError:
        return path
    return f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


@dataclass(frozen=True)
class TagRef:
    """A tag that points (directly or through an annotated tag) at a commit."""

    name: str  # short name, without refs/tags/
    commit: str
    timestamp: int  # committer date of the commit
    subject: str  # the commit's subject


def commit_tags(repo: git.Repo) -> tuple[TagRef, ...]:
    """Every tag of the repository that names a commit (tags of trees or blobs are left out)."""
    fmt = "%00".join(
        (
            "%(refname:strip=2)",
            "%(objecttype)",
            "%(objectname)",
            "%(committerdate:unix)",
            "%(subject)",
            "%(*objecttype)",
            "%(*objectname)",
            "%(*committerdate:unix)",
            "%(*subject)",
        )
    )
    output = run(repo, "for-each-ref", f"--format={fmt}", "refs/tags", doing="listing tags")
    found: list[TagRef] = []
    for line in output.split("\n"):  # not splitlines(): a subject may hold \x1e or \x85
        parts = line.split("\0")
        if len(parts) != 9:
            continue
        name, kind, obj, date, subject, peeled_kind, peeled, peeled_date, peeled_subject = [
            _clean(part) for part in parts
        ]
        if kind == "commit":
            found.append(TagRef(name, obj, int(date or 0), subject))
        elif kind == "tag" and peeled_kind == "commit":
            found.append(TagRef(name, peeled, int(peeled_date or 0), peeled_subject))
    return tuple(found)


def folder_blobs(repo: git.Repo, commit: str, folder: str) -> dict[str, str]:
    """``path -> blob id`` of the regular files directly in ``folder`` at ``commit``.

    A missing folder gives an empty mapping: a tag from before the folder
    existed simply has no migrations.
    """
    args = ["ls-tree", "-z", "--full-tree", commit, "--"]
    if folder not in ("", "."):
        args.append(f":(literal){folder}/")
    output = run(repo, *args, doing=f"listing {folder or '.'} at {commit[:12]}")
    blobs: dict[str, str] = {}
    for entry in output.split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        mode, kind, blob = meta.split(" ")
        if kind == "blob" and mode in _FILE_MODES:
            blobs[_clean(path)] = blob
    return blobs


def links_at(repo: Path, commit: str, folder: str) -> list[str]:
    """Paths of the symbolic links directly in ``folder`` at ``commit`` (git mode 120000)."""
    args = ["ls-tree", "-z", "--full-tree", commit, "--"]
    if folder not in ("", "."):
        args.append(f":(literal){folder}/")
    output = run(open_repo(repo), *args, doing=f"listing {folder or '.'} at {commit[:12]}")
    links = []
    for entry in output.split("\0"):
        meta, _, path = entry.partition("\t")
        if meta.startswith("120000 "):
            links.append(_clean(path))
    return links


def read_blobs(repo: Path, blob_ids: Iterable[str]) -> dict[str, bytes]:
    """The contents of many git objects, read through one ``git cat-file --batch`` process.

    Why one process: lint and the catalogue read hundreds of migration blobs
    from history; a process per blob would cost more than everything else.
    Ids are written by a helper thread while the answers are read, so neither
    side can block the other on a full pipe.  An id that names no object is a
    `HistoryError`.
    """
    wanted = list(dict.fromkeys(blob_ids))
    if not wanted:
        return {}
    handle = open_repo(repo)
    try:
        process: Any = _command(handle, "cat-file")(
            "--batch", as_process=True, istream=subprocess.PIPE
        )
    except GitCommandError as exc:  # pragma: no cover - Popen failures only
        raise _failed(handle, exc, doing="reading blobs") from exc
    proc: subprocess.Popen[bytes] = process.proc
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdin = proc.stdin

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):  # git died early
            stdin.write(b"".join(f"{blob}\n".encode() for blob in wanted))
        with contextlib.suppress(OSError):
            stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    found: dict[str, bytes] = {}
    missing: str | None = None
    try:
        for blob in wanted:
            header = proc.stdout.readline()
            parts = header.split()
            if len(parts) != 3:
                missing = blob
                break
            size = int(parts[2])
            found[blob] = proc.stdout.read(size)
            proc.stdout.read(1)  # the newline after each object
    finally:
        if missing is not None:
            proc.kill()
        writer.join()
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()
    if missing is not None:
        raise HistoryError(
            f"git object {missing} is not in the repository",
            where=str(repo),
            fix="fetch the history that contains it (`git fetch`), or check the id",
        )
    return found


def _literal_prefix(pattern: str) -> str:
    """The folder part of a glob before its first wildcard (``queries/*.sql`` -> ``queries/``)."""
    cut = len(pattern)
    for wildcard in "*?[":
        index = pattern.find(wildcard)
        if index != -1:
            cut = min(cut, index)
    if cut == len(pattern):
        return pattern
    head = pattern[:cut]
    return head[: head.rfind("/") + 1]


def files_at(repo: Path, commit: str, patterns: Sequence[str]) -> dict[str, str]:
    """``path -> text`` of the files matching any glob in ``patterns`` in ``commit``'s tree.

    Why: the pair tests prepare the queries of old code and the table reads
    the catalogue of the branch tip, both from git rather than the work tree,
    which may hold anything.  Patterns are matched with `fnmatch.fnmatchcase`
    against repository-relative paths (``*`` also matches ``/``).  Only
    regular files are read; a file that is not UTF-8 is a `HistoryError`
    naming the commit and path.
    """
    handle = open_repo(repo)
    resolved = resolve_commit(handle, commit)
    if resolved is None:
        raise HistoryError(
            f"no commit `{commit}` in the repository",
            where=str(repo),
            fix="give a commit id, branch or tag that exists (`git fetch` may be needed)",
        )
    if not patterns:
        return {}
    prefixes = {_literal_prefix(pattern) for pattern in patterns}
    args = ["ls-tree", "-r", "-z", "--full-tree", resolved, "--"]
    if "" not in prefixes:
        # Restrict the listing to the folders the globs can match, so a large
        # monorepo is not listed in full for three query files.
        args.extend(f":(top,literal){prefix}" for prefix in sorted(prefixes))
    output = run(handle, *args, doing=f"listing files at {commit}")
    blobs: dict[str, str] = {}
    for entry in output.split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        mode, kind, blob = meta.split(" ")
        path = _clean(path)
        if kind != "blob" or mode not in _FILE_MODES:
            continue
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns):
            blobs[path] = blob
    return blob_texts(repo, blobs, at=f"at {resolved[:12]}")


def blob_texts(repo: Path, blobs: Mapping[str, str], *, at: str) -> dict[str, str]:
    """``path -> text`` of ``path -> blob id``, read in one batch; ``at`` says where, in errors.

    A blob that is not UTF-8 is a `HistoryError` naming the path.
    """
    contents = read_blobs(repo, blobs.values())
    texts: dict[str, str] = {}
    for path, blob in sorted(blobs.items()):
        try:
            texts[path] = contents[blob].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HistoryError(
                f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                where=f"{path} {at}",
                fix="save the file as UTF-8",
            ) from exc
    return texts


def _clean(text: str) -> str:
    """The same for text GitPython decoded with ``surrogateescape`` (ls-tree, for-each-ref)."""
    return _decode(text.encode("utf-8", errors="surrogateescape"))


def _decode(raw: bytes) -> str:
    """Text of a path or message from git; bytes that are not UTF-8 become U+FFFD."""
    return raw.decode("utf-8", errors="replace")
