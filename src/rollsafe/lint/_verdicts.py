"""Compat verdicts kept across runs, so commands that only show rows never load the SQL parser.

Why: ``rollsafe which 1565`` and ``upgrade-plan`` need the upgrade and
rollback verdicts of every migration to build the rows, and inferring them
parses the up and down files with PostgreSQL's parser (pglast: its import
alone costs several times a bare interpreter start).  The verdicts are kept
in ``<git common dir>/rollsafe/verdicts-<key>.json`` next to the history
cache, keyed by the files' text and directives, in a file whose name hashes
the lint code and pglast's release: new rules or a new parser never reuse an
old verdict.  A missing, foreign or damaged file is ignored and rewritten
(atomically); the verdicts are the same with or without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rollsafe._version import __version__
from rollsafe.migrate import Migration

Compat = Literal["live", "offline"]


@dataclass(frozen=True)
class CompatVerdict:
    """Whether code built for the previous schema keeps working on a migration's schema.

    ``inferred`` is True when the file declares no ``-- compat:``; ``reasons``
    lists the rule ids behind ``offline`` (empty for ``live``).
    """

    compat: Compat
    inferred: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RollbackVerdict:
    """Whether code built for a migration's schema keeps working once the migration is undone.

    ``mode`` is ``restore`` when no down migration can undo it (no down file,
    or one the parser cannot read, so nothing vouches for it); ``inferred``
    is True when the up file declares no ``-- rollback:``; ``reasons`` say
    what decided it, as phrases that follow "migration N" in a plan.
    """

    mode: Literal["live", "offline", "restore"]
    inferred: bool
    reasons: tuple[str, ...]


Verdicts = tuple[CompatVerdict, RollbackVerdict]


def _entry_key(migration: Migration) -> str:
    directives = migration.directives
    text = json.dumps(
        [
            migration.up_sql,
            migration.down_sql,
            directives.compat,
            directives.rollback,
            sorted(directives.lint_ignore),
        ],
        ensure_ascii=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _code_digest() -> str:
    """The lint package's source and pglast's ``__init__`` (its version), without importing it."""
    digest = hashlib.sha256(f"{__version__} {sys.version_info[:2]}".encode())
    folder = Path(__file__).parent
    for path in sorted(folder.glob("*.py")):
        digest.update(path.read_bytes())
    spec = importlib.util.find_spec("pglast")
    if spec is not None and spec.origin:
        with contextlib.suppress(OSError):
            digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()[:24]


def verdict_cache_file(folder: Path) -> Path:
    """The verdict file of this lint code and parser under ``folder`` (``.git/rollsafe``)."""
    return folder / f"verdicts-{_code_digest()}.json"


def _texts(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(r, str) for r in value):
        return tuple(value)
    return None


def _parsed(value: object) -> Verdicts | None:
    if not isinstance(value, list) or len(value) != 6:
        return None
    compat, inferred, reasons, mode, rollback_inferred, why = value
    reasons, why = _texts(reasons), _texts(why)
    if (
        compat not in ("live", "offline")
        or mode not in ("live", "offline", "restore")
        or not isinstance(inferred, bool)
        or not isinstance(rollback_inferred, bool)
        or reasons is None
        or why is None
    ):
        return None
    return CompatVerdict(compat, inferred, reasons), RollbackVerdict(mode, rollback_inferred, why)


def _load(path: Path) -> dict[str, Verdicts]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    found: dict[str, Verdicts] = {}
    for key, value in raw.items():
        parsed = _parsed(value)
        if parsed is not None:
            found[str(key)] = parsed
    return found


def _store(path: Path, verdicts: Mapping[str, Verdicts]) -> None:
    data = {
        key: [c.compat, c.inferred, list(c.reasons), r.mode, r.inferred, list(r.reasons)]
        for key, (c, r) in sorted(verdicts.items())
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".verdicts-", suffix=".tmp", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream)
        Path(temporary).replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()


def verdicts_of(
    migrations: Iterable[Migration], *, cache: Path | None = None
) -> tuple[dict[int, CompatVerdict], dict[int, RollbackVerdict]]:
    """`compat_of` and `rollback_of` of every migration, parsing only what is not kept.

    ``cache`` is the verdict file (`verdict_cache_file`); None parses every
    file.  Only the verdicts of this run's migrations are written back, so
    the file follows the branch instead of growing with every edit ever seen.
    """
    stored = _load(cache) if cache is not None else {}
    used: dict[str, Verdicts] = {}
    compat: dict[int, CompatVerdict] = {}
    rollback: dict[int, RollbackVerdict] = {}
    for migration in migrations:
        key = _entry_key(migration)
        found = stored.get(key)
        if found is None:
            from rollsafe.lint._run import compat_of, rollback_of  # loads the parser

            found = (compat_of(migration), rollback_of(migration))
        used[key] = found
        compat[migration.version], rollback[migration.version] = found
    if cache is not None and used.keys() != stored.keys():
        _store(cache, used)
    return compat, rollback
