"""Chain states saved across processes, so a CI job for one pair starts where the chain would be.

Why: with one CI job per pair (``nox -s 'upgrade_pairs(5->6)'`` from a
``nox -l --json`` matrix) every job would otherwise walk the chain through
every earlier pair to reach its start state, O(N^2) for the matrix.  A job
that finds its start state here restores it (``pg_restore`` of a
``pg_dump``) and runs one pair; a job that walked saves the states it
reached for the next jobs.

Trust: a state is named by a key that hashes everything that made it (the
up and down files and the fixtures of every version up to it, the pairs
walked, the migrations table, the server's release, rollsafe's version and
the source of the code that runs pairs), so a changed migration or seed
names another state and the old one is never looked up.  A file is used
only when its checksum and stored key match; anything else (a damaged,
truncated or foreign file, a dump the server refuses) is deleted and the
state rebuilt.  Writes go to a temporary file renamed into place, so a
reader never sees half a state.  A verdict therefore never depends on
which jobs ran before: a state is either exactly the one the chain would
reach, or rebuilt.

Where: ``<git common dir>/rollsafe/states/`` by default (next to the
history cache, shared by worktrees), moved by ``--state-cache PATH`` or
``ROLLSAFE_STATE_CACHE`` (a CI cache folder), off with ``--no-cache`` or
``ROLLSAFE_NO_CACHE=1``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollsafe._version import __version__
from rollsafe.migrate import Catalogue
from rollsafe.pairs._fixtures import Fixture
from rollsafe.pairs._model import Pair

#: Version of the file layout and of what a state holds.
FORMAT = 2
#: Moves the state cache (a folder), e.g. to a path CI keeps between jobs.
STATE_CACHE_ENV = "ROLLSAFE_STATE_CACHE"
#: Most state files kept; the least recently used go first.
KEEP = 500

_MAGIC = b"rollsafe-state\n"
_DIGEST = 32  # bytes of SHA-256
_LENGTH = 8  # bytes of the header length


@dataclass(frozen=True)
class ChainState:
    """What the chain carries besides its database: where it is and what it noted on the way."""

    at: int | None
    notes: tuple[str, ...] = ()
    skip_seeds: tuple[int, ...] = ()
    without_data_before: int | None = None
    #: What generated seeds remember of this state (`rollsafe.pairs._seeding`), as JSON.
    generated: Mapping[str, Any] = field(default_factory=dict, compare=False)


def code_digest() -> str:
    """A digest of the source of the packages whose code makes a state (pairs, migrate).

    Why: a state made by other code must not be trusted, and the version
    number does not change with every edit of a checkout.
    """
    digest = hashlib.sha256()
    for package in ("rollsafe.pairs", "rollsafe.migrate"):
        folder = Path(str(sys.modules[package].__file__)).parent
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _fixture_bytes(fixture: Fixture | None) -> bytes:
    if fixture is None:
        return b"-"
    module = b""
    if fixture.module is not None:
        try:
            module = fixture.module.read_bytes()
        except OSError:
            module = b"?"
    parts = (fixture.seed_sql, fixture.check_sql, module.decode("utf-8", "replace"))
    return json.dumps(parts).encode()


def state_keys(
    base: Mapping[str, object],
    catalogue: Catalogue,
    pairs: Sequence[Pair],
    fixtures: Mapping[int, Fixture],
) -> list[str]:
    """``keys[j]``: the identity of the chain's state before ``pairs[j]`` (after ``pairs[:j]``).

    One running hash, O(N) for all of them: the state before pair j depends
    on every version up to the highest one the chain reached, their files
    and fixtures, and the pairs already run (their shape decides which
    seeds old code replays).  ``base`` is what every state shares (engine,
    migrations table, code).
    """
    running = hashlib.sha256(json.dumps({**base, "format": FORMAT}, sort_keys=True).encode())
    migrations = list(catalogue.migrations)
    done = 0  # migrations[:done] are in the hash

    def take(upto: int | None) -> None:
        nonlocal done
        while done < len(migrations) and upto is not None and migrations[done].version <= upto:
            m = migrations[done]
            running.update(json.dumps([m.version, m.up_sql, m.down_sql]).encode())
            running.update(_fixture_bytes(fixtures.get(m.version)))
            done += 1

    keys: list[str] = []
    for pair in pairs:
        take(pair.previous)
        keys.append(running.hexdigest())
        running.update(
            json.dumps(
                [pair.previous, pair.target, pair.upgrade, pair.migrations, pair.old_migrations]
            ).encode()
        )
        take(pair.target)
    keys.append(running.hexdigest())
    return keys


def base_key(
    *, engine: str, migrations_table: str, extra: Mapping[str, object]
) -> dict[str, object]:
    """What every state of a run shares (the first part of each key)."""
    return {
        "engine": engine,
        "migrations_table": migrations_table,
        "rollsafe": __version__,
        "code": code_digest(),
        **extra,
    }


class StateCache:
    """A folder of saved chain states, one file per key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / f"state-{key[:40]}.dump"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def discard(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self.path(key).unlink()

    def load(self, key: str) -> tuple[ChainState, bytes] | None:
        """The state saved under ``key`` and its dump; None (and the file gone) when untrusted."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        found = _parse(data, key)
        if found is None:
            self.discard(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept longest
        return found

    def save(self, key: str, state: ChainState, dump: bytes) -> bool:
        """Write atomically (temporary file, rename); False when the folder is not writable."""
        header = json.dumps(
            {
                "key": key,
                "at": state.at,
                "notes": list(state.notes),
                "skip_seeds": list(state.skip_seeds),
                "without_data_before": state.without_data_before,
                "generated": dict(state.generated),
            }
        ).encode()
        body = len(header).to_bytes(_LENGTH, "big") + header + dump
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.folder)
        except OSError:
            return False
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(_MAGIC + hashlib.sha256(body).digest() + body)
            Path(temporary).replace(self.path(key))
        except OSError:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()
            return False
        self._prune()
        return True

    def _prune(self) -> None:
        """Keep the ``KEEP`` most recently used states: old histories' states go."""
        try:
            files = sorted(self.folder.glob("state-*.dump"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        for old in files[: max(0, len(files) - KEEP)]:
            with contextlib.suppress(OSError):
                old.unlink()


def _parse(data: bytes, key: str) -> tuple[ChainState, bytes] | None:
    start = len(_MAGIC) + _DIGEST
    if not data.startswith(_MAGIC) or len(data) < start + _LENGTH:
        return None
    body = memoryview(data)[start:]
    if hashlib.sha256(body).digest() != data[len(_MAGIC) : start]:
        return None
    length = int.from_bytes(body[:_LENGTH], "big")
    try:
        header = json.loads(bytes(body[_LENGTH : _LENGTH + length]))
        if header["key"] != key:
            return None
        state = ChainState(
            at=_version(header["at"]),
            notes=tuple(str(n) for n in header["notes"]),
            skip_seeds=tuple(int(v) for v in header["skip_seeds"]),
            without_data_before=_version(header["without_data_before"]),
            generated=dict(header.get("generated") or {}),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return state, bytes(body[_LENGTH + length :])


def _version(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int):
        raise TypeError("version")
    return value


def default_folder(repo: Path) -> Path | None:
    """``ROLLSAFE_STATE_CACHE``, else ``<git common dir>/rollsafe/states``; None outside git."""
    moved = os.environ.get(STATE_CACHE_ENV, "").strip()
    if moved:
        return Path(moved)
    from rollsafe import _git
    from rollsafe.errors import RollsafeError

    try:
        return Path(_git.open_repo(repo).common_dir) / "rollsafe" / "states"
    except RollsafeError:
        return None
