"""Code versions from git history: which CL landed when, and which schema it ships.

Why: the release table, the upgrade plans, lint's history checks and the pair
tests all start from the same question — for every code version of the
release branch, what did the migrations folder hold?  It is answered here in
one streaming pass over ``git log --first-parent --raw`` (see
`rollsafe._git.first_parent_log`): git reports only the blob ids that changed
in the folder, and the folder's content is tracked incrementally from the
root commit to the tip, so no tree is walked and nothing is checked out per
commit.  The cost grows linearly with the number of commits.

What one read found is kept in the history cache (`rollsafe._history_cache`,
under the git directory), so that the next read replays it and asks git only
for the commits that landed since; `_read_with_cache` says when it is
trusted.  A read through the cache gives the same `History` as a full read
(the builder gets the same records, oldest first), or it is not used.

Decisions (also in the README):

* **Gerrit numbers** are the digits at the end of the last ``Reviewed-on:``
  line of the commit message (a cherry-pick keeps the original's line above
  Gerrit's new one), or of the commit's note in ``notes_ref`` when the
  message has none (submit types that do not rewrite the commit).
* **Merges** are versions through their own first-parent position, trailer
  or note, and their changes are their diff against the first parent; the
  commits of a merged branch are never versions, and a merge without a CL
  of its own is skipped under ``gerrit`` like any other commit.
* **A CL number on several first-parent commits** (a change re-landed by a
  direct push or a cherry-pick that kept its trailer) names its *last*
  landing: that commit is what the branch carries today.  The earlier
  commits are not versions and are counted in ``skipped``.
* **Changes** of a version are the changes to the folder since the previous
  version, in order: the version's own commit under ``ordinal``, plus those
  of the commits skipped before it under ``gerrit`` (so no edit of a
  migration is lost between two versions), and the difference between the
  two tags' trees under ``tag``.
* **Tags** are ordered by semantic version after any non-digit prefix
  (``v1.2.10`` > ``v1.2.9``, ``v1.0.0-rc.1`` < ``v1.0.0``, ``v1.2`` =
  ``v1.2.0``); tags that are not versions sort after them, by name.  Every
  tag matching ``tag_glob`` counts wherever it points (release branches
  included); ``commits`` is the number of tagged commits read.
* **The history cache** is used for the ``gerrit``, ``ordinal`` and ``auto``
  strategies (``tag`` reads one tree per tag and is not cached), and is
  bypassed by ``cache=False``, `cache_disabled` (the CLI's ``--no-cache``)
  or ``ROLLSAFE_NO_CACHE=1``.
* ``History.find`` accepts the CL as shown (``1565``, ``12``, ``v1.2.0``),
  a number with leading zeros, and for every strategy a commit id or a
  unique prefix of at least 7 hex digits (a number is tried as a CL first).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Literal

from rollsafe import _git
from rollsafe.config import Config
from rollsafe.errors import HistoryError, UnknownCLError
from rollsafe.history import _cache
from rollsafe.migrate._catalogue import versions_of

ChangeKind = Literal["added", "modified", "deleted", "renamed"]
#: The kinds by name, to read them back from the cache (an unknown one is a KeyError there).
_CHANGE_KINDS: dict[str, ChangeKind] = {
    "added": "added",
    "modified": "modified",
    "deleted": "deleted",
    "renamed": "renamed",
}
Strategy = Literal["gerrit", "ordinal", "tag"]

#: How often (in commits read) the progress callback is called.
PROGRESS_EVERY = 1000
#: Shortest commit id prefix `History.find` accepts (git's own default abbreviation).
MIN_SHA_PREFIX = 7

#: ``Reviewed-on: <url ending in the change number>``; the last such line wins.
_REVIEWED_ON = re.compile(rb"^[ \t]*Reviewed-on:[ \t]*\S*?([0-9]+)/?[ \t]*\r?$", re.M | re.I)
#: A version tag after its prefix: ``1.2.3``, ``1.2``, ``1.2.3-rc.1+build``.
_SEMVER = re.compile(
    r"^[^0-9]*(?P<core>[0-9]+(?:\.[0-9]+)*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_HEX = frozenset("0123456789abcdef")

#: Set by `cache_disabled` (the CLI's ``--no-cache``) for the reads made inside it.
_CACHE_OFF: ContextVar[bool] = ContextVar("rollsafe_history_cache_off", default=False)


@dataclass(frozen=True)
class FileChange:
    """One change to a migration file (``.sql`` directly in the folder) against the first parent.

    ``path`` is the new path for renames and the removed path for deletes;
    ``old_path`` is set for renames and deletes.  Blob ids are git's own
    hashes of the file contents, the checksums lint compares.
    """

    kind: ChangeKind
    path: str
    old_path: str | None
    old_blob: str | None
    new_blob: str | None


@dataclass(frozen=True)
class CodeVersion:
    """A code version of the release branch and the migrations it carries.

    ``migrations`` maps the path of every ``.sql`` file directly in the
    folder to its blob id; versions that did not change the folder share one
    mapping, which must not be mutated.  ``schema`` is the highest valid up
    version present (None when there is none; misnamed files are ignored
    here and reported by lint).
    """

    cl: str
    number: int | None
    commit: str
    date: datetime
    subject: str
    position: int
    schema: int | None
    migrations: Mapping[str, str]
    changes: tuple[FileChange, ...]

    def __hash__(self) -> int:
        # The generated hash would hash the mapping and fail; a version is
        # identified by its CL and commit.
        return hash((self.cl, self.commit))


#: One first-parent commit as the builder consumes it: id, committer date (seconds),
#: subject, Gerrit number (None when it has none or numbers are not read), and its
#: changes to the migrations folder.
_Record = tuple[str, int, str, int | None, tuple[FileChange, ...]]


@dataclass(frozen=True)
class History:
    """Every code version of one branch, in landing order, and how they were found."""

    folder: str
    branch: str
    tip: str
    strategy: Strategy
    versions: tuple[CodeVersion, ...]
    skipped: int
    commits: int

    @cached_property
    def _by_cl(self) -> dict[str, CodeVersion]:
        return {version.cl: version for version in self.versions}

    def find(self, cl: str) -> CodeVersion:
        """The version a user means by ``cl`` (see the module docstring for what is accepted).

        Raises `UnknownCLError` with a hint of what exists.
        """
        wanted = cl.strip()
        found = self._by_cl.get(wanted)
        if found is not None:
            return found
        if self.strategy != "tag" and wanted.isdigit():
            found = self._by_cl.get(str(int(wanted)))
            if found is not None:
                return found
        prefix = wanted.lower()
        if len(prefix) >= MIN_SHA_PREFIX and set(prefix) <= _HEX:
            matches = [v for v in self.versions if v.commit.startswith(prefix)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise UnknownCLError(
                    cl, fix=f"commit prefix `{wanted}` is ambiguous; give more of the commit id"
                )
        raise UnknownCLError(cl, fix=self._known())

    def _known(self) -> str:
        """A fix hint naming the range of CLs that do exist."""
        if not self.versions:
            return f"the branch `{self.branch}` has no code versions"
        first, last = self.versions[0].cl, self.versions[-1].cl
        kind = {"gerrit": "Gerrit change numbers", "ordinal": "first-parent positions"}.get(
            self.strategy, "tags"
        )
        return (
            f"CLs are {kind} ({first} ... {last}, {len(self.versions)} in all) or commit ids; "
            "`rollsafe release-table --format json` lists them"
        )


# ---------------------------------------------------------------------------
# Reading


def cache_enabled() -> bool:
    """Whether `read_history` uses the history cache by default here and now.

    Off inside `cache_disabled` (the CLI's ``--no-cache``) and when the
    ``ROLLSAFE_NO_CACHE`` environment variable is set (to anything but ``0``).
    """
    return not _CACHE_OFF.get() and not _cache.disabled_by_environment()


@contextmanager
def cache_disabled() -> Iterator[None]:
    """Within the block, every read ignores the history cache and does not write it.

    Why a context rather than a parameter only: the CLI's ``--no-cache``
    must reach every command that reads history, including those that read
    it deep inside other functions (the pair tests, lint).
    """
    token = _CACHE_OFF.set(True)
    try:
        yield
    finally:
        _CACHE_OFF.reset(token)


def read_history(
    config: Config,
    *,
    progress: Callable[[int], None] | None = None,
    cache: bool | None = None,
) -> History:
    """Read every code version of the configured branch with its schema and migrations.

    ``progress`` is called with the number of commits read so far, every
    `PROGRESS_EVERY` commits and with the total at the end.  ``cache`` uses
    the history cache (see `rollsafe._history_cache`; default:
    `cache_enabled`): the result is the same, only faster when the branch
    only grew since the last read.  Raises `HistoryError` for a folder that
    is not a repository, a shallow clone, a missing branch, an empty
    repository, and a strategy that finds no version at all.
    """
    repo = _git.open_repo(config.repo)
    folder = _normalise_folder(config.migrations)
    where = str(config.repo)
    if _git.is_shallow(repo):
        raise HistoryError(
            "history incomplete: the repository is a shallow clone",
            where=where,
            fix="run `git fetch --unshallow` (in CI: fetch-depth 0)",
        )
    branch, tip = _branch_and_tip(repo, config.branch, where=where)
    if config.cl_strategy == "tag":
        return _tag_history(repo, config, folder, branch, tip, progress)

    messages = config.cl_strategy != "ordinal"
    ref = _git.notes_ref(config.notes_ref) if messages else None

    def new_builder() -> _Builder:
        return _Builder(
            folder,
            numbered=messages,
            ordinal=config.cl_strategy in ("auto", "ordinal"),
            progress=progress,
        )

    use_cache = cache_enabled() if cache is None else cache
    # The states the cache depends on, in one git call; None (git cannot tell): no cache.
    watched = [*([ref] if ref is not None else []), "refs/replace/"]
    tips = _git.ref_tips(repo, watched) if use_cache else None
    if tips is not None:
        builder = _read_with_cache(
            repo, folder, branch, config.cl_strategy, tip, ref, tips, new_builder
        )
    else:
        builder = new_builder()
        notes = ref if ref is not None and _git.ref_exists(repo, ref) else None
        _read_log(repo, tip, folder, notes, builder)
    if progress is not None and builder.commits % PROGRESS_EVERY:
        progress(builder.commits)
    if builder.gerrit:
        strategy: Strategy = "gerrit"
        versions = builder.gerrit_versions()
    elif config.cl_strategy == "gerrit":
        ref = _git.notes_ref(config.notes_ref)
        raise HistoryError(
            f"no first-parent commit of `{branch}` has a Reviewed-on: trailer or a note in {ref}",
            where=where,
            fix=f"fetch Gerrit's notes (`git fetch origin {ref}:{ref}`) or set cl_strategy "
            "to ordinal",
        )
    else:
        strategy = "ordinal"
        versions = tuple(builder.ordinal)
    return History(
        folder=folder or ".",
        branch=branch,
        tip=tip,
        strategy=strategy,
        versions=versions,
        skipped=builder.commits - len(versions),
        commits=builder.commits,
    )


def _records_of(batch: Sequence[_git.LogCommit], prefix: str, numbered: bool) -> list[_Record]:
    """The records of commits as git logged them: text decoded, Gerrit number parsed."""
    records: list[_Record] = []
    append = records.append
    for commit in batch:
        append(
            (
                commit.sha.decode("ascii"),
                int(commit.timestamp),
                commit.subject.decode("utf-8", errors="replace"),
                _cl_number(commit.body, commit.notes) if numbered else None,
                tuple(_file_changes(commit.changes, prefix)) if commit.changes else (),
            )
        )
    return records


def _read_log(
    repo: _git.Repo, tip: str, folder: str, notes: str | None, builder: _Builder
) -> list[_Record]:
    """Read the whole first-parent history into ``builder`` as git streams it; its records."""
    prefix = builder.folder.prefix
    numbered = builder.numbered
    records: list[_Record] = []
    for batch in _git.first_parent_log(repo, tip, folder, messages=numbered, notes=notes):
        converted = _records_of(batch, prefix, numbered)
        builder.add(converted)
        records.extend(converted)
    return records


def _records_since(
    repo: _git.Repo, tip: str, folder: str, notes: str | None, numbered: bool, since: str
) -> list[_Record] | None:
    """The records of the first-parent commits after ``since`` up to ``tip``, oldest first.

    None when ``since`` is not on ``tip``'s first-parent chain (history was
    rewritten, or ``since`` was merged in from a side branch) or git cannot
    tell (``since`` was garbage-collected): the oldest commit git lists must
    have ``since`` as its first parent, which also proves that nothing
    between them is missing.
    """
    prefix = f"{folder}/" if folder else ""
    records: list[_Record] = []
    parent: bytes | None = None
    try:
        for batch in _git.first_parent_log(
            repo, tip, folder, messages=numbered, notes=notes, since=since
        ):
            if parent is None and batch:
                parent = batch[0].parent
            records.extend(_records_of(batch, prefix, numbered))
    except HistoryError:
        return None
    if parent is None or parent.decode("ascii", errors="replace") != since:
        return None
    return records


def _stored_records(records: Sequence[_Record]) -> _cache.Records:
    """Records as the cache stores them (columns; changes as plain tuples)."""
    stored = _cache.Records()
    if not records:
        return stored
    shas, timestamps, subjects, numbers, changes = zip(*records, strict=True)
    stored.shas = list(shas)
    stored.timestamps = list(timestamps)
    stored.subjects = list(subjects)
    stored.numbers = list(numbers)
    stored.changes = {
        index: tuple((c.kind, c.path, c.old_path, c.old_blob, c.new_blob) for c in folder_changes)
        for index, folder_changes in enumerate(changes)
        if folder_changes
    }
    return stored


def _extend(stored: _cache.Records, records: Iterable[_Record]) -> None:
    """Append freshly read records to stored ones."""
    for sha, timestamp, subject, number, changes in records:
        stored.append(
            sha,
            timestamp,
            subject,
            number,
            ((c.kind, c.path, c.old_path, c.old_blob, c.new_blob) for c in changes),
        )


def _replay(stored: _cache.Records, builder: _Builder) -> None:
    """Feed cached records to ``builder``: the same input a read from git gives it."""
    changes: list[tuple[FileChange, ...]] = [()] * len(stored)
    for index, folder_changes in stored.changes.items():
        changes[index] = tuple(
            FileChange(_CHANGE_KINDS[kind], path, old_path, old_blob, new_blob)
            for kind, path, old_path, old_blob, new_blob in folder_changes
        )
    columns = (stored.shas, stored.timestamps, stored.subjects, stored.numbers, changes)
    builder.add(zip(*columns, strict=True))


@dataclass(frozen=True)
class _CacheSlot:
    """Where one question's cache lives, and the ref states a snapshot written now records."""

    path: Path
    key: str
    refs: str
    notes_tip: str | None

    def store(self, tip: str, records: _cache.Records) -> None:
        _cache.store(self.path, self.key, _cache.Snapshot(tip, self.notes_tip, self.refs, records))


def _read_with_cache(
    repo: _git.Repo,
    folder: str,
    branch: str,
    strategy: str,
    tip: str,
    ref: str | None,
    tips: Mapping[str, str],
    new_builder: Callable[[], _Builder],
) -> _Builder:
    """Read history through the cache where it can be trusted, else in full (and cache it).

    The cache is trusted only for the same question (folder, strategy, notes
    ref, branch: the key), under the same replace refs and grafts, and when
    no note of a cached commit changed; then `_from_cache` decides by the
    tip.  Anything else (history rewritten, a corrupt or foreign file, a
    failing git call) reads everything, as without a cache, and rewrites
    the file.  ``tips`` are the states of the notes ref and the replace refs.
    """
    common = Path(repo.common_dir)
    notes_tip = tips.get(ref) if ref is not None else None
    notes = ref if notes_tip is not None else None
    refs = _cache.refs_fingerprint(
        {name: sha for name, sha in tips.items() if name.startswith("refs/replace/")}, common
    )
    key = _cache.cache_key(
        folder=folder,
        branch=branch,
        strategy=strategy,
        notes=ref,
        git=_git.git_identity(),
        code=_cache.source_digest(_git, sys.modules[__name__]),
    )
    slot = _CacheSlot(_cache.cache_path(common, key), key, refs, notes_tip)
    snapshot = _cache.load(slot.path, key)
    if (
        snapshot is not None
        and snapshot.refs == refs
        and _notes_unchanged(repo, snapshot.notes_tip, notes_tip, snapshot.records.shas)
    ):
        builder = new_builder()
        try:
            if _from_cache(repo, slot, snapshot, tip, folder, notes, builder):
                return builder
        except (TypeError, ValueError, KeyError, IndexError, AttributeError):
            pass  # records the builder cannot take: not a file to trust
    builder = new_builder()
    records = _read_log(repo, tip, folder, notes, builder)
    slot.store(tip, _stored_records(records))
    return builder


def _from_cache(
    repo: _git.Repo,
    slot: _CacheSlot,
    snapshot: _cache.Snapshot,
    tip: str,
    folder: str,
    notes: str | None,
    builder: _Builder,
) -> bool:
    """Build ``tip``'s history from a trusted snapshot; False when the tip rules it out.

    The same tip replays the snapshot.  A tip inside the cached chain (the
    branch was reset back) replays its first part: the first-parent chain of
    a commit on a first-parent chain is that chain's beginning.  A tip whose
    first-parent chain runs through the cached tip gets only the new commits
    from git, appended.
    """
    stored = snapshot.records
    if snapshot.tip == tip:
        _replay(stored, builder)
        if snapshot.notes_tip != slot.notes_tip:
            slot.store(tip, stored)  # new notes, none on a cached commit
        return True
    try:
        index = stored.shas.index(tip)
    except ValueError:
        pass
    else:
        _replay(stored.head(index + 1), builder)
        return True  # the file keeps the longer history
    added = _records_since(repo, tip, folder, notes, builder.numbered, snapshot.tip)
    if added is None:
        return False
    _replay(stored, builder)
    builder.add(added)
    _extend(stored, added)
    slot.store(tip, stored)
    return True


def _notes_unchanged(
    repo: _git.Repo, cached: str | None, current: str | None, shas: Sequence[str]
) -> bool:
    """Whether every cached commit still has the note it was read with.

    Gerrit's notes ref gains a note with every landing; only notes of
    commits the cache already holds matter.
    """
    if cached == current:
        return True
    if cached is None or current is None:
        return False  # the notes ref appeared or went away
    targets = _git.changed_note_targets(repo, cached, current)
    return targets is not None and targets.isdisjoint(shas)


def _normalise_folder(folder: str) -> str:
    """``./migrations/`` -> ``migrations``; the repository root is ``""``."""
    normal = str(PurePosixPath(folder.replace("\\", "/")))
    return "" if normal == "." else normal


def _branch_and_tip(repo: _git.Repo, branch: str | None, *, where: str) -> tuple[str, str]:
    """The branch to read (default: the checked-out one) and its tip commit."""
    if branch is None:
        name = _git.current_branch(repo)
        tip = _git.resolve_commit(repo, "HEAD")
        if tip is None:
            raise HistoryError(
                f"the repository has no commits yet (branch `{name}` is unborn)",
                where=where,
                fix="commit the migrations folder first, or pass --branch",
            )
        return name, tip
    tip = _git.resolve_commit(repo, branch)
    if tip is None:
        fix = "check the name, `git fetch` it, or set `branch` in [tool.rollsafe] / --branch"
        remote = f"origin/{branch}"
        if "/" not in branch and _git.resolve_commit(repo, remote) is not None:
            fix = f"only `{remote}` exists here: pass --branch {remote} or `git fetch`/checkout it"
        raise HistoryError(f"branch `{branch}` not found", where=where, fix=fix)
    return branch, tip


def _cl_number(body: bytes, notes: bytes) -> int | None:
    """The Gerrit change number of a commit: its message's last ``Reviewed-on:`` line, else
    its note's."""
    number = _reviewed_on(body) if body else None
    if number is None and notes:
        number = _reviewed_on(notes)
    return number


def _reviewed_on(text: bytes) -> int | None:
    """The number ending the last ``Reviewed-on:`` line of ``text``, if any."""
    # Fast path for what Gerrit writes (this runs once per commit): the last
    # "Reviewed-on:" starting a line, its URL ending in digits.
    at = text.rfind(b"Reviewed-on:")
    if at != -1 and (at == 0 or text[at - 1] == 10):  # 10 is a newline
        end = text.find(b"\n", at)
        line = (text[at + 12 : end] if end != -1 else text[at + 12 :]).rstrip().rstrip(b"/")
        digits = line[len(line.rstrip(b"0123456789")) :]
        if digits:
            return int(digits)
    found = _REVIEWED_ON.findall(text)  # other spellings, indentation, a later odd line
    return int(found[-1]) if found else None


def _in_folder(path: str, prefix: str) -> bool:
    """Whether ``path`` is a ``.sql`` file directly in the folder (``prefix`` ends in ``/``)."""
    return path.endswith(".sql") and path.startswith(prefix) and "/" not in path[len(prefix) :]


def _file_changes(raw: Sequence[_git.RawChange], prefix: str) -> list[FileChange]:
    """The migration-file changes among one commit's raw diff lines.

    A rename into or out of the folder (or from a non-SQL name) is an add or
    a delete from the folder's point of view; a mode-only change is none.
    """
    changes: list[FileChange] = []
    for change in raw:
        old = change.status not in ("A", "C") and change.old_is_file
        old = old and _in_folder(change.old_path, prefix)
        new = change.status != "D" and change.new_is_file and _in_folder(change.new_path, prefix)
        if change.status == "C":
            old = False  # a copy leaves its source in place
        if old and new:
            if change.old_path != change.new_path:
                changes.append(
                    FileChange(
                        "renamed",
                        change.new_path,
                        change.old_path,
                        change.old_blob,
                        change.new_blob,
                    )
                )
            elif change.old_blob != change.new_blob:
                changes.append(
                    FileChange("modified", change.new_path, None, change.old_blob, change.new_blob)
                )
        elif old:
            changes.append(
                FileChange("deleted", change.old_path, change.old_path, change.old_blob, None)
            )
        elif new:
            changes.append(FileChange("added", change.new_path, None, None, change.new_blob))
    return changes


class _Folder:
    """The migrations folder's files and up versions, updated one commit at a time."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.prefix = f"{folder}/" if folder else ""
        self.files: dict[str, str] = {}
        self.ups: dict[int, int] = {}  # up version -> number of up files with it
        self.schema: int | None = None

    def _count(self, path: str, step: int) -> None:
        for version in versions_of((path,), self.folder):
            left = self.ups.get(version, 0) + step
            if left > 0:
                self.ups[version] = left
            else:
                self.ups.pop(version, None)

    def apply(self, changes: Iterable[FileChange]) -> None:
        """Apply one commit's changes; the files mapping is replaced, never mutated."""
        files = dict(self.files)
        for change in changes:
            if change.old_path is not None and change.old_path in files:
                del files[change.old_path]
                self._count(change.old_path, -1)
            if change.new_blob is not None:
                if change.path not in files:
                    self._count(change.path, +1)
                files[change.path] = change.new_blob
        self.files = files
        self.schema = max(self.ups, default=None)


_object_new = object.__new__
_object_setattr = object.__setattr__


class _Builder:
    """Turns first-parent commits, oldest first, into code versions as git streams them.

    Why streaming: building the versions while git is still walking keeps
    the total time close to git's own.  Under ``auto`` the strategy is only
    known at the end, so ordinal versions are kept until the first commit
    with a Gerrit number shows up (then they are dropped: the history is
    Gerrit's); ``pending`` collects the folder's changes since the last
    Gerrit version, so commits without a CL fold into the next version.
    """

    def __init__(
        self,
        folder: str,
        *,
        numbered: bool,
        ordinal: bool,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.folder = _Folder(folder)
        self.progress = progress
        self.numbered = numbered
        self.keep_ordinal = ordinal
        self.ordinal: list[CodeVersion] = []
        self.gerrit: list[CodeVersion] = []
        self.pending: list[FileChange] = []
        self.seen: set[int] = set()
        self.duplicated = False
        self.commits = 0

    def add(self, records: Iterable[_Record]) -> None:
        """Account for the next commits, oldest first."""
        # Locals rather than attributes, and the folder's state re-read only when
        # it changed: this loop runs once per commit (50,000 times in a large history).
        folder, numbered, pending, progress = (
            self.folder,
            self.numbered,
            self.pending,
            self.progress,
        )
        seen, gerrit = self.seen, self.gerrit
        ordinal, keep_ordinal = self.ordinal, self.keep_ordinal
        count = self.commits
        schema, files = folder.schema, folder.files
        to_date = datetime.fromtimestamp
        new = _object_new
        set_dict = _object_setattr
        for sha, timestamp, subject, number, changes in records:
            count += 1
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count)
            if changes:
                folder.apply(changes)
                schema, files = folder.schema, folder.files
                if numbered:
                    pending.extend(changes)
            date = to_date(timestamp, UTC)
            # A CodeVersion built without the frozen dataclass's __init__, which sets
            # each of the nine fields through object.__setattr__: filling the instance
            # dictionary at once halves the cost, measurable at 50,000 commits.  The
            # fields are the same (a test compares with the regular constructor), so
            # equality, repr and dataclasses.replace behave as usual.
            if number is not None:
                if number in seen:
                    self.duplicated = True
                seen.add(number)
                if keep_ordinal:
                    keep_ordinal, ordinal = False, []
                version = new(CodeVersion)
                set_dict(
                    version,
                    "__dict__",
                    {
                        "cl": str(number),
                        "number": number,
                        "commit": sha,
                        "date": date,
                        "subject": subject,
                        "position": len(gerrit),
                        "schema": schema,
                        "migrations": files,
                        "changes": tuple(pending) if pending else (),
                    },
                )
                gerrit.append(version)
                if pending:
                    pending.clear()
            if keep_ordinal:
                version = new(CodeVersion)
                set_dict(
                    version,
                    "__dict__",
                    {
                        "cl": str(count),
                        "number": count,
                        "commit": sha,
                        "date": date,
                        "subject": subject,
                        "position": count - 1,
                        "schema": schema,
                        "migrations": files,
                        "changes": changes,
                    },
                )
                ordinal.append(version)
        self.commits = count
        self.keep_ordinal, self.ordinal = keep_ordinal, ordinal

    def gerrit_versions(self) -> tuple[CodeVersion, ...]:
        """The Gerrit versions, each CL at its last landing (see the module docstring)."""
        if not self.duplicated:
            return tuple(self.gerrit)
        last = {version.number: index for index, version in enumerate(self.gerrit)}
        kept: list[CodeVersion] = []
        carried: list[FileChange] = []
        for index, version in enumerate(self.gerrit):
            if last[version.number] != index:
                carried.extend(version.changes)  # an earlier landing: fold into the next one
                continue
            kept.append(
                dataclasses.replace(
                    version, position=len(kept), changes=(*carried, *version.changes)
                )
            )
            carried = []
        return tuple(kept)


# ---------------------------------------------------------------------------
# Tags


def semver_key(name: str) -> tuple[int, tuple[int, ...], tuple[tuple[int, int | str], ...], str]:
    """Sort key of a tag: semantic versions first, in version order, then other names.

    Pre-releases sort before their release, and their dot-separated
    identifiers compare numerically when numeric (``rc.2`` < ``rc.10``),
    as semver.org specifies.
    """
    match = _SEMVER.match(name)
    if match is None:
        return (1, (), (), name)
    core = tuple(int(part) for part in match["core"].split("."))
    core = core + (0,) * (3 - len(core))
    pre: tuple[tuple[int, int | str], ...]
    if match["pre"] is None:
        pre = ((2, 0),)  # a release outranks every pre-release of it
    else:
        pre = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in match["pre"].split(".")
        )
    return (0, core, pre, name)


def _tree_changes(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[FileChange, ...]:
    """The changes between two folder states; a removed and an added file with the
    same blob are a rename."""
    removed = {path: blob for path, blob in before.items() if path not in after}
    added = {path: blob for path, blob in after.items() if path not in before}
    by_blob: dict[str, list[str]] = {}
    for path, blob in sorted(removed.items()):
        by_blob.setdefault(blob, []).append(path)
    changes: list[FileChange] = []
    for path in sorted(set(before) | set(after)):
        if path in added:
            sources = by_blob.get(added[path])
            if sources:
                old = sources.pop(0)
                del removed[old]
                changes.append(FileChange("renamed", path, old, added[path], added[path]))
            else:
                changes.append(FileChange("added", path, None, None, added[path]))
        elif path not in removed and before[path] != after[path]:
            changes.append(FileChange("modified", path, None, before[path], after[path]))
    changes.extend(
        FileChange("deleted", path, path, blob, None) for path, blob in sorted(removed.items())
    )
    return tuple(changes)


def _tag_history(
    repo: _git.Repo,
    config: Config,
    folder: str,
    branch: str,
    tip: str,
    progress: Callable[[int], None] | None,
) -> History:
    """Versions named by tags, each read from its own tree (release branches included)."""
    tags = sorted(
        (t for t in _git.commit_tags(repo) if fnmatch.fnmatchcase(t.name, config.tag_glob)),
        key=lambda t: semver_key(t.name),
    )
    if not tags:
        raise HistoryError(
            f"no tag matches `{config.tag_glob}`",
            where=str(config.repo),
            fix="fetch the tags (`git fetch --tags`), or set tag_glob / --tag-glob",
        )
    prefix = f"{folder}/" if folder else ""
    trees: dict[str, dict[str, str]] = {}
    versions: list[CodeVersion] = []
    previous: Mapping[str, str] = {}
    for position, tag in enumerate(tags):
        files = trees.get(tag.commit)
        if files is None:
            files = {
                path: blob
                for path, blob in _git.folder_blobs(repo, tag.commit, folder).items()
                if _in_folder(path, prefix)
            }
            trees[tag.commit] = files
            if progress is not None and len(trees) % PROGRESS_EVERY == 0:
                progress(len(trees))
        versions.append(
            CodeVersion(
                cl=tag.name,
                number=None,
                commit=tag.commit,
                date=datetime.fromtimestamp(tag.timestamp, UTC),
                subject=tag.subject,
                position=position,
                schema=max(versions_of(files, folder), default=None),
                migrations=files,
                changes=_tree_changes(previous, files),
            )
        )
        previous = files
    if progress is not None and len(trees) % PROGRESS_EVERY:
        progress(len(trees))
    return History(
        folder=folder or ".",
        branch=branch,
        tip=tip,
        strategy="tag",
        versions=tuple(versions),
        skipped=0,
        commits=len(trees),
    )
