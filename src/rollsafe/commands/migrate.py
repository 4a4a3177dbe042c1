"""``rollsafe migrate``: the operator's migrator, golang-migrate compatible.

Why: a release engineer needs to move a real database to a version, look at
its state, and clear a dirty flag after a repair, with the same runner the
upgrade tests use and without a Go toolchain.  The DSN comes from ``--dsn``
or ``ROLLSAFE_DATABASE_URL`` and is only ever shown with its password
masked; the migrations are the work tree's (``config.migrations``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TextIO

from rollsafe.commands._spec import URL_ENV
from rollsafe.errors import ConfigError

if TYPE_CHECKING:
    from rollsafe.config import Config
    from rollsafe.migrate import Status

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


def parse_version(text: str, *, allow_none: bool = True) -> int | None:
    """A version from the command line: an integer >= 0, or ``none`` where allowed."""
    value = text.strip().lower()
    if allow_none and value in NO_VERSION:
        return None
    if value.isdigit():
        return int(value)
    accepted = "an integer >= 0" + (" or `none`" if allow_none else "")
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
) -> MigrateResult:
    """Move the database per ``action``; raises a `RollsafeError` for anything wrong."""
    from rollsafe._db import mask_dsn
    from rollsafe.migrate import Migrator, load_catalogue

    url = database_url(dsn)
    catalogue = load_catalogue(config.repo, config.migrations)
    changed: tuple[int, ...] = ()
    with Migrator(url, catalogue, table=config.migrations_table) as migrator:
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
    return MigrateResult(action=action, database=mask_dsn(url), changed=changed, status=status)


def _state(status: Status) -> str:
    if status.version is None:
        return "no version" + (" (dirty)" if status.dirty else "")
    return f"version {status.version} ({'dirty' if status.dirty else 'clean'})"


def describe(result: MigrateResult) -> list[str]:
    """The lines a person reads after a run."""
    status = result.status
    lines = [f"database: {result.database}"]
    verb = {"up": "applied", "to": "applied", "down-to": "undone", "goto": "ran"}.get(result.action)
    if result.action == "force":
        lines.append(f"forced to {_state(status)}")
    elif verb is not None:
        ran = ", ".join(str(v) for v in result.changed) if result.changed else "nothing"
        lines.append(f"{verb}: {ran}")
    lines.append(f"now at {_state(status)}")
    if status.ahead:
        lines.append(
            "the database is newer than this code's newest migration: left alone "
            "(expected while old components run during a rolling upgrade)"
        )
    else:
        pending = ", ".join(str(v) for v in status.pending) if status.pending else "none"
        lines.append(f"pending: {pending}")
    return lines


def migrate(
    config: Config,
    dsn: str | None = None,
    *,
    action: Action = "up",
    version: int | None = None,
    strict: bool = False,
    fmt: Format = "text",
    out: TextIO | None = None,
) -> int:
    """Run `run_migrate` and print the outcome; returns the exit code (0)."""
    stream = out if out is not None else sys.stdout
    result = run_migrate(config, dsn, action=action, version=version, strict=strict)
    if fmt == "json":
        payload = {
            "action": result.action,
            "database": result.database,
            "changed": list(result.changed),
            "version": result.status.version,
            "dirty": result.status.dirty,
            "pending": list(result.status.pending),
            "ahead": result.status.ahead,
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
        config, args.dsn, action=action, version=version, strict=args.strict, fmt=args.fmt
    )
