"""The first-parent log stream: one ``git log --raw`` read incrementally and parsed.

Why: history is read in one pass whose cost grows linearly with commits;
the output is streamed in large chunks and parsed as it arrives, so memory
stays flat and nothing waits for git to finish.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import IO, Any, NamedTuple

import git
from git.exc import GitCommandError

from rollsafe._git import _FILE_MODES, _READ_FIX, _command, _decode, _failed, _first_line
from rollsafe.errors import HistoryError

#: Bytes read from a streaming git process at a time (and its pipe's size where settable).
_CHUNK = 1 << 20


#: A read smaller than this means rollsafe is ahead of git: nap `_NAP` seconds then.
_SMALL_READ = 1 << 16


_NAP = 0.003


#: Marks the first field of every commit in `first_parent_log` output.
_COMMIT_MARK = b"\x1e"


#: What to do when the history log fails: its flags (--diff-merges) need git 2.31.
_LOG_FIX = "rollsafe needs git 2.31 or newer (`git --version`); check that `git log` works"


#: How many cuts by fields that start with 0x1e one log record may have (see `first_parent_log`).
_MAX_JOINS = 1024


def _enlarge_pipe(fd: int) -> bool:
    """Give a pipe a 1 MiB buffer (Linux); False where the system does not allow it."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:  # pragma: no cover - not Linux
        return False
    try:
        fcntl.fcntl(fd, set_size, _CHUNK)
    except OSError:  # pragma: no cover - a lowered /proc/sys/fs/pipe-max-size
        return False
    return True


def _drain(stream: IO[bytes], into: list[bytes]) -> None:
    """Read a stream to its end (git's stderr), so a chatty process never blocks on it."""
    into.append(stream.read())


def stream_chunks(
    repo: git.Repo, command: str, args: Sequence[str], *, doing: str, fix: str = _READ_FIX
) -> Generator[bytes, None, None]:
    """Run a git command and yield its stdout in large chunks as they arrive.

    Why: the history of a large repository is tens of megabytes; streaming
    lets rollsafe parse while git still walks, and keeps memory flat.  The
    process is always reaped, also when the consumer stops early or raises,
    and a failure becomes a `HistoryError` with git's own words.
    """
    try:
        process: Any = _command(repo, command)(*args, as_process=True)
    except GitCommandError as exc:  # pragma: no cover - Popen failures only
        raise _failed(repo, exc, doing=doing) from exc
    proc: subprocess.Popen[bytes] = process.proc
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[bytes] = []
    drainer = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
    drainer.start()
    finished = False
    try:
        fd = proc.stdout.fileno()
        # Each wake-up of a reader costs tens of microseconds on a VM, and git
        # writes 4 KiB at a time: with a large pipe, a reader that is ahead
        # of git naps briefly and then takes a large chunk in one go.
        batching = _enlarge_pipe(fd)
        while chunk := os.read(fd, _CHUNK):
            yield chunk
            if batching and len(chunk) < _SMALL_READ:
                time.sleep(_NAP)
        status = proc.wait()
        drainer.join()
        finished = True
    finally:
        if not finished:
            proc.kill()
            proc.wait()
            drainer.join()
        proc.stdout.close()
        proc.stderr.close()
    if status != 0:
        raise HistoryError(
            f"git failed while {doing}: {_first_line(b''.join(errors))}",
            where=str(repo.working_tree_dir or repo.git_dir),
            fix=fix,
        )


class RawChange(NamedTuple):
    """One line of ``git log --raw`` output: a file's change against the first parent."""

    status: str  # A, C, D, M, R, T (R and C carry a similarity score, dropped here)
    old_mode: str
    new_mode: str
    old_blob: str
    new_blob: str
    old_path: str  # equal to new_path unless renamed or copied
    new_path: str

    @property
    def old_is_file(self) -> bool:
        return self.old_mode in _FILE_MODES

    @property
    def new_is_file(self) -> bool:
        return self.new_mode in _FILE_MODES


class LogCommit(NamedTuple):
    """One first-parent commit as `first_parent_log` reads it; text stays bytes until needed."""

    sha: bytes
    timestamp: bytes  # committer date, decimal seconds since the epoch
    subject: bytes
    body: bytes  # the message after the subject (empty unless asked for)
    notes: bytes  # the note's text (empty unless a notes ref was given)
    changes: tuple[RawChange, ...]
    parent: bytes = b""  # the first parent's id (empty unless `first_parent_log` got ``since``)


def _raw_changes(tokens: Sequence[bytes]) -> tuple[RawChange, ...] | None:
    """Parse ``--raw -z`` tokens (``:modes blobs status``, then one or two paths).

    None when the tokens stop in the middle of an entry: the record was cut
    short (see `first_parent_log`).
    """
    changes: list[RawChange] = []
    index, count = 0, len(tokens)
    while index < count:
        token = tokens[index]
        if not token:
            index += 1  # the terminator after the last commit
            continue
        if not token.startswith((b":", b"\n:")):
            return None
        meta = token.lstrip(b"\n:").decode("ascii", errors="replace").split(" ")
        if len(meta) != 5:
            return None
        status = meta[4][:1]
        paths = 2 if status in ("R", "C") else 1
        if index + paths >= count:
            return None
        first = _decode(tokens[index + 1])
        second = _decode(tokens[index + 2]) if paths == 2 else first
        changes.append(RawChange(status, meta[0], meta[1], meta[2], meta[3], first, second))
        index += paths + 1
    return tuple(changes)


def first_parent_log(
    repo: git.Repo,
    tip: str,
    folder: str,
    *,
    messages: bool,
    notes: str | None,
    since: str | None = None,
) -> Iterator[list[LogCommit]]:
    """Every first-parent commit from the root to ``tip``, oldest first, with its
    changes inside ``folder`` (against the first parent; merges included).

    With ``since``, only the commits not reachable from ``since`` are read
    (``since..tip``), each with its first parent in ``parent``: the history
    cache appends them when the oldest one's first parent is ``since``.

    Why one command: ``--sparse`` keeps the commits that do not touch the
    folder in the output, so a single ``git log`` gives both the full
    first-parent list (for CL numbering) and the folder's diffs, restricted by
    the pathspec so git never diffs the rest of the tree.  ``--raw
    --no-abbrev`` gives blob ids (the checksums of lint) without reading any
    file, and ``-M`` detects renames between files of the folder only.
    ``messages`` adds each message's body (for trailers; git's own
    ``%(trailers)`` parser costs more than the whole log) and ``notes`` names
    a notes ref whose text is added (Gerrit's ``refs/notes/review``).
    ``--reverse`` makes git walk first and then stream oldest first, so the
    caller can track the folder while git still formats and diffs.  The
    rename limit is git's default, pinned (``-l1000``) so that a personal
    ``diff.renameLimit`` cannot change the table or the cache.

    Yields batches (one per chunk read) so the caller pays per chunk, not per
    commit.  Records start with 0x1e after the NUL that ends the previous one;
    the only text that could contain that pair is a field that itself starts
    with 0x1e, and such a cut leaves a record that does not parse, which is
    then joined back to what follows (so the fast split is never wrong).
    """
    fields = ["%x1e%H", "%ct", "%s"]
    if since is not None:
        fields.append("%P")
    if messages:
        fields.append("%b")
    if notes is not None:
        fields.append("%N")
    args = [
        "-z",
        "--first-parent",
        "--sparse",
        "--reverse",
        "--root",
        "--raw",
        "--no-abbrev",
        "-M",
        "-l1000",
        "--diff-merges=first-parent",
        "--no-color",
        "--no-show-signature",
        "--no-mailmap",
        "--encoding=UTF-8",
        "--no-notes",
        *([f"--notes={notes}"] if notes is not None else []),
        "--format=" + "%x00".join(fields),
        tip,
        *([f"^{since}"] if since is not None else []),
        "--",
    ]
    if folder not in ("", "."):
        args.append(f":(top,literal){folder}/")
    header = len(fields)
    has_parent = since is not None
    body_at = 4 if has_parent else 3
    has_body = messages
    has_notes = notes is not None
    new = tuple.__new__  # what LogCommit._make does, without its extra call
    no_changes: tuple[RawChange, ...] = ()

    def parse(record: bytes) -> LogCommit | None:
        tokens = record.split(b"\0")
        if len(tokens) < header:
            return None
        if len(tokens) == header:
            changes = no_changes
        else:
            parsed = _raw_changes(tokens[header:])
            if parsed is None:
                return None
            changes = parsed
        return new(
            LogCommit,
            (
                tokens[0],
                tokens[1],
                tokens[2],
                tokens[body_at] if has_body else b"",
                tokens[header - 1] if has_notes else b"",
                changes,
                tokens[3].partition(b" ")[0] if has_parent else b"",
            ),
        )

    rest = b""
    pending: bytes | None = None
    joins = 0
    first = True
    chunks = stream_chunks(repo, "log", args, doing="reading first-parent history", fix=_LOG_FIX)
    for chunk in chunks:
        if first:
            if not chunk.startswith(_COMMIT_MARK):
                raise _unexpected(repo, chunk)
            chunk, first = chunk[1:], False
        records = (rest + chunk).split(b"\0" + _COMMIT_MARK)
        rest = records.pop()
        batch: list[LogCommit] = []
        for record in records:
            if pending is not None:
                record = pending + b"\0" + _COMMIT_MARK + record
                pending = None
            commit = parse(record)
            if commit is not None:
                batch.append(commit)
                joins = 0
                continue
            # A field starting with 0x1e cut the record; each field can do that
            # once, so a record that still fails after a few joins is not git's.
            joins += 1
            if joins > _MAX_JOINS:
                raise _unexpected(repo, record)
            pending = record
        yield batch
    if pending is not None:
        rest = pending + b"\0" + _COMMIT_MARK + rest if rest else pending
    if rest:
        commit = parse(rest[:-1] if rest.endswith(b"\0") else rest)
        if commit is None:
            raise _unexpected(repo, rest)
        yield [commit]


def _unexpected(repo: git.Repo, output: bytes) -> HistoryError:
    """git printed something `first_parent_log` cannot read (a git too old or too new)."""
    return HistoryError(
        f"unexpected git log output near {output[:60]!r}",
        where=str(repo.working_tree_dir or repo.git_dir),
        fix=_LOG_FIX,
    )
