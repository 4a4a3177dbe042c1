"""Code versions from git history: which CL landed when, and which schema it ships.

Why: the release table, the upgrade plans, lint's history checks and the pair
tests all start from the same question — for every code version of the
release branch, what did the migrations folder hold?  It is answered here in
one streaming pass over ``git log --first-parent --raw`` (see
`rollsafe._gitlog.first_parent_log`): git reports only the blob ids that changed
in the folder, and the folder's content is tracked incrementally from the
root commit to the tip, so no tree is walked and nothing is checked out per
commit.  The cost grows linearly with the number of commits.

What one read found is kept in the history cache (`rollsafe.history._cache`,
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

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rollsafe import _git, _gitlog
from rollsafe.config import Config
from rollsafe.errors import HistoryError
from rollsafe.history import _cache
from rollsafe.history._build import _CHANGE_KINDS, _Builder, _cl_number, _file_changes
from rollsafe.history._model import PROGRESS_EVERY, FileChange, History, Strategy, _Record
from rollsafe.history._tags import _tag_history

#: Set by `cache_disabled` (the CLI's ``--no-cache``) for the reads made inside it.
_CACHE_OFF: ContextVar[bool] = ContextVar("rollsafe_history_cache_off", default=False)


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
    the history cache (see `rollsafe.history._cache`; default:
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


def require_folder(config: Config, history: History) -> None:
    """A migrations folder that is in no commit and not in the work tree is a typo, not news.

    Without this, ``--migrations nope`` reads as "no schema has shipped yet"
    and the table is overwritten with that.  A folder that existed and was
    deleted stays a history event (lint reports it); a folder only in the
    work tree is a project whose first migration is not committed yet.
    Commands that answer from the table call it; `read_history` itself
    describes any folder, present or not.
    """
    folder = history.folder
    if folder == "." or any(version.migrations for version in history.versions):
        return
    repo = _git.open_repo(config.repo)
    if (config.repo / folder).is_dir() and repo.working_tree_dir is not None:
        return
    if _git.try_run(repo, "rev-list", "-1", history.tip, "--", f":(literal){folder}"):
        return
    raise HistoryError(
        f"migrations folder `{folder}` is in no commit of `{history.branch}` and not in the "
        "work tree",
        where=str(config.repo),
        fix="check the name (--migrations or `migrations` in [tool.rollsafe])",
    )


def _records_of(batch: Sequence[_gitlog.LogCommit], prefix: str, numbered: bool) -> list[_Record]:
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
    for batch in _gitlog.first_parent_log(repo, tip, folder, messages=numbered, notes=notes):
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
        for batch in _gitlog.first_parent_log(
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
        _cache.store(
            self.path, self.key, _cache.CachedHistory(tip, self.notes_tip, self.refs, records)
        )


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
    snapshot: _cache.CachedHistory,
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
