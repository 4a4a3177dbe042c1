"""The history cache: the first-parent history rollsafe read, kept in the git directory.

Why: every CI run and every ``rollsafe`` command reads the whole first-parent
history of the release branch, although all but the newest few commits are
the same as last time.  As git's commit-graph file does for git, a file under
``<git-common-dir>/rollsafe/`` keeps what one read found (per commit: id,
date, subject, Gerrit number, changes to the migrations folder), so the next
read only asks git for the commits that landed since.  `rollsafe.history`
decides when a cache can be trusted; this module only writes and reads it.

Decisions:

* One file per question asked: the file name is a hash of everything the
  records depend on (folder, strategy, notes ref, branch name, this format,
  rollsafe's version and the source of the code that parses git's output,
  Python's version, the git binary), and the same key is stored inside the
  file and compared on load, so a file is never read for another question.
* A file that is missing, truncated, edited, of another format or another
  Python is ignored (`load` returns None) and replaced on the next write: the
  payload carries a SHA-256 checksum, and the cache is only an optimisation.
* Writes are atomic (a temporary file renamed over the old one), so a
  concurrent reader sees the old file or the new one, never half of one; a
  repository that cannot be written (read-only CI checkout) is simply not
  cached.
* The payload is `marshal` data of plain strings, integers, lists and
  dicts: loading it is a single C call, far cheaper than parsing 50,000
  records.  marshal does not defend against crafted input, but the file
  lives where git's hooks and configuration do: whoever can write it can
  already run code in the repository.  Bump `FORMAT` when the layout
  changes; a change of the parsing code changes the key by itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from rollsafe._version import __version__

#: Version of the file layout and of what history stores in it.
FORMAT = 1
#: Disables the cache (reading and writing) when set to anything but ``""`` or ``0``.
NO_CACHE_ENV = "ROLLSAFE_NO_CACHE"
#: Folder under the git common directory that holds the cache files.
FOLDER = "rollsafe"

_MAGIC = b"rollsafe-history-cache\n"
_DIGEST = 32  # bytes of SHA-256
_HEX_DIGITS = "0123456789abcdef"

#: One change to the folder as stored: kind, path, old path, old blob, new blob.
StoredChange = tuple[str, str, str | None, str | None, str | None]


def disabled_by_environment() -> bool:
    """Whether ``ROLLSAFE_NO_CACHE`` asks for the cache to be left alone."""
    return os.environ.get(NO_CACHE_ENV, "").strip() not in ("", "0")


@dataclass
class Records:
    """Per-commit records of a first-parent history, oldest first, stored column by column.

    Why columns: loading one list of 50,000 ids is much cheaper than 50,000
    small tuples, and most commits change nothing in the folder, so changes
    are kept only for the commits that have some (by index).
    """

    shas: list[str] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    numbers: list[int | None] = field(default_factory=list)
    changes: dict[int, tuple[StoredChange, ...]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.shas)

    def append(
        self,
        sha: str,
        timestamp: int,
        subject: str,
        number: int | None,
        changes: Iterable[StoredChange],
    ) -> None:
        """Add the next commit."""
        stored = tuple(changes)
        if stored:
            self.changes[len(self.shas)] = stored
        self.shas.append(sha)
        self.timestamps.append(timestamp)
        self.subjects.append(subject)
        self.numbers.append(number)

    def head(self, count: int) -> Records:
        """The first ``count`` commits (the history of an older tip on the same chain)."""
        return Records(
            self.shas[:count],
            self.timestamps[:count],
            self.subjects[:count],
            self.numbers[:count],
            {index: stored for index, stored in self.changes.items() if index < count},
        )


@dataclass(frozen=True)
class CachedHistory:
    """A cache file's content: the records up to ``tip`` and the ref states they depend on.

    ``notes_tip`` is the commit of the notes ref that was read (None when
    there was none); ``refs`` fingerprints what else can change history as
    git shows it (replace refs, grafts).
    """

    tip: str
    notes_tip: str | None
    refs: str
    records: Records


def cache_key(**parts: str | bool | None) -> str:
    """The identity of one cache: everything its records depend on, as canonical text."""
    return json.dumps(
        {
            **parts,
            "format": FORMAT,
            "rollsafe": __version__,
            "python": list(sys.version_info[:2]),
            "marshal": marshal.version,
        },
        sort_keys=True,
    )


def source_digest(*modules: ModuleType) -> str:
    """A digest of the source of the modules whose code produces the records.

    Why: records parsed by other code must not be trusted, and rollsafe's
    version number does not change with every edit of a checkout of it;
    reading two source files costs well under a millisecond.
    """
    digest = hashlib.sha256()
    for module in (sys.modules[__name__], *modules):
        try:
            digest.update(Path(str(module.__file__)).read_bytes())
        except OSError:  # pragma: no cover - a package without its sources
            digest.update(module.__name__.encode("utf-8"))
    return digest.hexdigest()


def cache_path(common_dir: Path, key: str) -> Path:
    """Where the cache of ``key`` lives under the repository's git common directory."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return common_dir / FOLDER / f"history-{digest}.bin"


def load(path: Path, key: str) -> CachedHistory | None:
    """The snapshot stored at ``path`` for ``key``, or None when there is none to trust."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    start = len(_MAGIC) + _DIGEST
    if not data.startswith(_MAGIC) or len(data) <= start:
        return None
    payload = memoryview(data)[start:]
    if hashlib.sha256(payload).digest() != data[len(_MAGIC) : start]:
        return None
    try:
        content = marshal.loads(payload)
        stored_key, tip, notes_tip, refs, shas, timestamps, subjects, numbers, changes = content
    except (EOFError, ValueError, TypeError):
        return None
    if stored_key != key or not isinstance(refs, str) or not _object_id(tip):
        return None
    if notes_tip is not None and not _object_id(notes_tip):
        return None  # both tips go back to git as arguments: ids only, never options
    columns = (shas, timestamps, subjects, numbers)
    if not all(isinstance(column, list) for column in columns) or not isinstance(changes, dict):
        return None
    if len({len(column) for column in columns}) != 1 or not shas or shas[-1] != tip:
        return None
    return CachedHistory(
        tip, notes_tip, refs, Records(shas, timestamps, subjects, numbers, changes)
    )


def _object_id(value: object) -> bool:
    """Whether ``value`` is a full git object id (SHA-1 or SHA-256, lowercase hex)."""
    return isinstance(value, str) and len(value) in (40, 64) and not value.strip(_HEX_DIGITS)


def store(path: Path, key: str, snapshot: CachedHistory) -> bool:
    """Write ``snapshot`` atomically; False (and nothing written) when that is not possible."""
    records = snapshot.records
    content = (
        key,
        snapshot.tip,
        snapshot.notes_tip,
        snapshot.refs,
        records.shas,
        records.timestamps,
        records.subjects,
        records.numbers,
        records.changes,
    )
    try:
        payload = marshal.dumps(content)
    except ValueError:  # pragma: no cover - only plain values are stored
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".history-", suffix=".tmp", dir=path.parent)
    except OSError:
        return False
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(_MAGIC)
            stream.write(hashlib.sha256(payload).digest())
            stream.write(payload)
        Path(temporary).replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        return False
    return True


def refs_fingerprint(replace_refs: Mapping[str, str], common_dir: Path) -> str:
    """What besides the branch and the notes can change history as git shows it.

    Replace refs (``git replace``) and a grafts file substitute commits; if
    either changes, the records read under the old state no longer match a
    full read.
    """
    parts = [f"{name} {sha}" for name, sha in sorted(replace_refs.items())]
    grafts = common_dir / "info" / "grafts"
    with contextlib.suppress(OSError):
        stat = grafts.stat()
        parts.append(f"grafts {stat.st_size} {stat.st_mtime_ns}")
    return "\n".join(parts)
