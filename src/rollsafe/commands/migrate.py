"""``rollsafe migrate``: the operator's migrator, golang-migrate compatible.

Why: a release engineer needs to move a real database to a version, look at
its state, and clear a dirty flag after a repair, with the same runner the
upgrade tests use and without a Go toolchain.  The DSN comes from ``--dsn``
or ``ROLLSAFE_DATABASE_URL`` and is only ever shown with its password
masked; the migrations are the work tree's (``config.migrations``), or with
``--files-at CL`` the folder as it was at that CL, read from git blobs: an
operator on the old code's checkout undoes a newer schema with the newer
code's down files, without checking anything out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TextIO

from rollsafe.commands._spec import URL_ENV
from rollsafe.errors import ConfigError, IrreversibleMigration

if TYPE_CHECKING:
    from rollsafe.config import Config
    from rollsafe.migrate import Catalogue, Status

# The database modules (psycopg, the migrator) are imported by the functions
# that use them: the driver is loaded only when a database is migrated.


Action = Literal["up", "to", "down-to", "goto", "force", "status"]
Format = Literal["text", "json"]
#: Words that mean "no version" (golang-migrate's NilVersion is -1).
NO_VERSION = ("none", "nil", "-1")


@dataclass(frozen=True)
class MigrateResult:
    """What a migrate run did and where the database stands after it."""

    action: Action
    database: str  # the DSN with its password masked
    changed: tuple[int, ...]  # versions applied (up) or undone (down), in run order
    status: Status
    files_at: str | None = None  # the CL whose migration files ran (None: the work tree)


#: PostgreSQL's bigint, golang-migrate's version column.
MAX_VERSION = 2**63 - 1
#: golang-migrate's ``DefaultLockTimeout``, in seconds (`rollsafe.migrate._lock`, repeated
#: so that parsing flags imports no driver).
DEFAULT_LOCK_TIMEOUT = 15.0


def parse_version(text: str, *, allow_none: bool = True) -> int | None:
    """A version from the command line: an integer >= 0, or ``none`` where allowed."""
    value = text.strip().lower()
    if allow_none and value in NO_VERSION:
        return None
    if value.isdigit() and int(value) <= MAX_VERSION:
        return int(value)
    accepted = "an integer from 0 to 2^63-1" + (" or `none`" if allow_none else "")
    raise ConfigError(f"bad version `{text}`", fix=f"give {accepted}")


def database_url(dsn: str | None) -> str:
    """The DSN given, else ``ROLLSAFE_DATABASE_URL``, else a one-line error."""
    value = (dsn or os.environ.get(URL_ENV, "")).strip()
    if not value:
        raise ConfigError(
            "no database to migrate",
            fix=f"pass --dsn URL or set {URL_ENV}",
        )
    return value


def run_migrate(
    config: Config,
    dsn: str | None = None,
    *,
    action: Action = "up",
    version: int | None = None,
    strict: bool = False,
    files_at: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    notify: Callable[[str], None] | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> MigrateResult:
    """Move the database per ``action``; raises a `RollsafeError` for anything wrong.

    ``files_at`` runs the migration files as they were at that CL (git
    blobs of the release branch's history) instead of the work tree's.
    ``notify`` hears what a person waiting should know (who holds the lock).
    ``progress(done, total, version)`` is called after each migration file.
    """
    from rollsafe._db import mask_dsn
    from rollsafe.migrate import load_catalogue

    url = database_url(dsn)
    shown: str | None = None
    if files_at is None:
        catalogue = load_catalogue(config.repo, config.migrations)
    else:
        shown, catalogue = catalogue_at(config, files_at)
    changed: tuple[int, ...] = ()
    if action == "force" and version is not None and version not in catalogue and notify:
        notify(f"no migration file has version {version}: forced all the same, as golang-migrate")
    session = _Session(config, url, catalogue, lock_timeout, notify, progress)
    try:
        changed, status = _run(session, action, version, strict)
    except IrreversibleMigration as exc:
        if shown is None:
            raise
        raise ConfigError(
            f"migration {exc.version} has no down file at CL {shown}; nothing was run",
            where=f"--files-at {files_at}",
            fix="give a CL whose folder has that down file, or restore the backup taken "
            f"before migration {exc.version} was applied",
        ) from exc
    return MigrateResult(
        action=action, database=mask_dsn(url), changed=changed, status=status, files_at=shown
    )


def catalogue_at(config: Config, cl: str) -> tuple[str, Catalogue]:
    """The CL as shown and the migrations folder as it was at that CL, from git blobs.

    Any commit id works too; a CL is looked up in the release branch's
    history (cached), so ``--files-at 1590`` means the same code as
    ``rollsafe which 1590``.
    """
    from rollsafe import _git
    from rollsafe.history import read_history
    from rollsafe.migrate import catalogue_from_files, file_patterns

    history = read_history(config)
    version = history.find(cl)
    folder = config.migrations.strip("/")
    files = _git.files_at(config.repo, version.commit, file_patterns(folder))
    return version.cl, catalogue_from_files(folder, files)


@dataclass(frozen=True)
class _Session:
    """What one migrator session needs besides the operation."""

    config: Config
    url: str
    catalogue: Catalogue
    lock_timeout: float
    notify: Callable[[str], None] | None
    progress: Callable[[int, int, int], None] | None = None


def _run(
    session: _Session, action: Action, version: int | None, strict: bool
) -> tuple[tuple[int, ...], Status]:
    """One migrator session: the versions changed and the state after it."""
    from rollsafe.migrate import Migrator

    changed: tuple[int, ...] = ()
    with Migrator(
        session.url,
        session.catalogue,
        table=session.config.migrations_table,
        lock_timeout=session.lock_timeout,
        notify=session.notify,
        progress=session.progress,
    ) as migrator:
        if action == "up":
            changed = migrator.up(strict=strict)
        elif action == "to":
            if version is None:
                raise ConfigError("--to needs a version", fix="give an integer >= 0")
            changed = migrator.up_to(version)
        elif action == "down-to":
            changed = migrator.down_to(version)
        elif action == "goto":
            changed = migrator.goto(version)
        elif action == "force":
            migrator.force(version)
        status = migrator.status()
    return changed, status


def _state(status: Status) -> str:
    if status.version is None:
        return "no version" + (" (dirty)" if status.dirty else "")
    return f"version {status.version} ({'dirty' if status.dirty else 'clean'})"


#: Lists longer than this are summarised by their count, first and last version.
LIST_LIMIT = 10
#: A counter is shown on a terminal when at least this many files run.
PROGRESS_FROM = 20


def versions_text(versions: Sequence[int]) -> str:
    """``1, 2, 3``, or ``300 migrations, 20240101000000 to 20240101000299`` for long lists."""
    if len(versions) <= LIST_LIMIT:
        return ", ".join(str(v) for v in versions)
    return f"{len(versions)} migrations, {versions[0]} to {versions[-1]}"


def terminal_progress(stream: TextIO) -> Callable[[int, int, int], None] | None:
    """A counter on a terminal's ``stream`` when much is to run; nothing in a log.

    Why: applying hundreds of migrations to a real database takes minutes,
    and a silent terminal looks hung; a CI log would only collect the noise.
    """
    if not stream.isatty():
        return None

    def show(done: int, total: int, version: int) -> None:
        if total >= PROGRESS_FROM:
            stream.write(f"\rmigrating: {done}/{total} (version {version})")
            stream.flush()

    return show


def describe(result: MigrateResult) -> list[str]:
    """The lines a person reads after a run."""
    status = result.status
    lines = [f"database: {result.database}"]
    if result.files_at is not None:
        lines.append(f"files:    the migrations folder at CL {result.files_at} (from git)")
    verb = {"up": "applied", "to": "applied", "down-to": "undone", "goto": "ran"}.get(result.action)
    if result.action == "force":
        lines.append(f"forced to {_state(status)}")
    elif verb is not None:
        ran = versions_text(result.changed) if result.changed else "nothing"
        lines.append(f"{verb}: {ran}")
    lines.append(f"now at {_state(status)}")
    if status.ahead:
        lines.append(
            "the database is newer than this code's newest migration: left alone "
            "(expected while old components run during a rolling upgrade)"
        )
    else:
        pending = versions_text(status.pending) if status.pending else "none"
        lines.append(f"pending: {pending}")
    return lines


def migrate(
    config: Config,
    dsn: str | None = None,
    *,
    action: Action = "up",
    version: int | None = None,
    strict: bool = False,
    files_at: str | None = None,
    fmt: Format = "text",
    out: TextIO | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> int:
    """Run `run_migrate` and print the outcome; returns the exit code (0).

    Waiting notes (who holds the lock) go to stderr as they happen.
    """
    stream = out if out is not None else sys.stdout

    def notify(line: str) -> None:
        print(f"rollsafe: {line}", file=sys.stderr, flush=True)

    progress = terminal_progress(sys.stderr)
    try:
        result = run_migrate(
            config,
            dsn,
            action=action,
            version=version,
            strict=strict,
            files_at=files_at,
            lock_timeout=lock_timeout,
            notify=notify,
            progress=progress,
        )
    finally:
        if progress is not None:  # an error after some files: its line starts clean
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
    if fmt == "json":
        payload = {
            "action": result.action,
            "database": result.database,
            "changed": list(result.changed),
            "version": result.status.version,
            "dirty": result.status.dirty,
            "pending": list(result.status.pending),
            "ahead": result.status.ahead,
            "files_at": result.files_at,
        }
        print(json.dumps(payload, indent=2), file=stream)
    else:
        print("\n".join(describe(result)), file=stream)
    return 0


def handle_migrate(config: Config, args: argparse.Namespace) -> int:
    """``rollsafe migrate`` (`rollsafe.commands._spec`): parsed flags in, an exit code out."""
    action: Action = "up"
    version: int | None = None
    if args.to is not None:
        action, version = "to", parse_version(args.to, allow_none=False)
    elif args.down_to is not None:
        action, version = "down-to", parse_version(args.down_to)
    elif args.goto is not None:
        action, version = "goto", parse_version(args.goto)
    elif args.force is not None:
        action, version = "force", parse_version(args.force)
    elif args.status:
        action = "status"
    return migrate(
        config,
        args.dsn,
        action=action,
        version=version,
        strict=args.strict,
        files_at=args.files_at,
        fmt=args.fmt,
        lock_timeout=float(args.lock_timeout),  # invoke hands the default over as text
    )
