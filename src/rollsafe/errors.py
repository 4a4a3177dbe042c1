"""One error hierarchy for everything a user can get wrong or meet in the field.

Why: a release engineer reading CI output needs one line that says what went
wrong, where, and how to fix it.  Every error the package raises on purpose is
a `RollsafeError`; the message is built in one place (`__str__`) from
structured fields, and `report` turns it into one line and an exit code for
the console script and the invoke tasks alike (the nox sessions show
`error_message`).  Library errors (psycopg, GitPython) are converted at the
adapter with ``raise ... from``, so a traceback is only ever shown with
``--debug``.
"""

from __future__ import annotations

import sys
import traceback
from typing import TextIO

#: Exit code of a command whose input was bad (config, files, history, CL).
EXIT_BAD_INPUT = 2
#: Exit code of a check that ran and found a problem (stale table, lint error).
EXIT_CHECK_FAILED = 1
#: Exit code of a command stopped with Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class RollsafeError(Exception):
    """Base of every error a user is meant to read.

    ``what`` says what is wrong, ``where`` names the place (a file and line, a
    commit, a CL, a database), and ``fix`` says what to do about it.  The
    rendered message is ``where: what; fix`` on one line.
    """

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The one line shown to the user."""
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text = f"{text} ({self.fix})"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.message


def at(file: str, line: int | None = None) -> str:
    """Format a ``file:line`` location the way compilers do, so editors can jump to it."""
    return f"{file}:{line}" if line is not None else file


class ConfigError(RollsafeError):
    """The configuration (pyproject.toml or a flag) is invalid."""


class CatalogueError(RollsafeError):
    """A migration file is malformed: a bad name, a duplicate version, a bad directive."""

    def __init__(self, what: str, *, file: str, line: int | None = None, fix: str | None = None):
        self.file = file
        self.line = line
        super().__init__(what, where=at(file, line), fix=fix)


class HistoryError(RollsafeError):
    """Git history cannot be read as asked: not a repository, a missing branch, a shallow clone."""


class UnknownCLError(RollsafeError):
    """A CL named on the command line is not a code version of the branch."""

    def __init__(self, cl: str, *, fix: str | None = None) -> None:
        self.cl = cl
        super().__init__(
            "not a code version on this branch",
            where=f"CL {cl}",
            fix=fix or "run `rollsafe release-table --format json` to list the known CLs",
        )


class ReleaseError(RollsafeError):
    """A release record cannot be written or read."""


class DatabaseError(RollsafeError):
    """The database refused something: a failing migration, a dirty state, a lock."""


class MigrationFailed(DatabaseError):
    """A statement of a migration file failed; names the file, line and the server's words."""

    def __init__(
        self,
        *,
        file: str,
        line: int | None,
        statement: str,
        server_message: str,
        hint: str | None = None,
        dirty: bool = False,
    ) -> None:
        self.file = file
        self.line = line
        self.statement = statement
        self.server_message = server_message
        self.hint = hint
        self.dirty = dirty
        what = f"migration failed: {server_message}"
        if hint:
            what = f"{what} (hint: {hint})"
        fix = (
            "the version is left dirty; fix the migration, repair the database by hand, "
            "then `rollsafe migrate --force VERSION`"
            if dirty
            else "the database is left at the previous version; fix the migration and run again"
        )
        super().__init__(what, where=at(file, line), fix=fix)


class DirtyDatabase(DatabaseError):
    """The state table says a migration failed half-way; nothing runs until it is forced."""

    def __init__(self, version: int, *, where: str) -> None:
        self.version = version
        super().__init__(
            f"database is dirty at version {version}: a migration failed half-way",
            where=where,
            fix=f"repair it by hand, then `rollsafe migrate --force {version}` "
            "(or the version it is really at)",
        )


class EngineUnavailable(RollsafeError):
    """The selected throwaway-database engine cannot run on this machine."""


class EngineMismatch(EngineUnavailable):
    """The migrations are written for another engine than the one selected.

    Raised before a server starts (CockroachDB SQL on PostgreSQL), so the
    user reads one line naming the file and line instead of a failed pair
    for every version after it.
    """

    def __init__(self, what: str, *, file: str, line: int | None, fix: str) -> None:
        self.file = file
        self.line = line
        super().__init__(what, where=at(file, line), fix=fix)


class CheckFailed(RollsafeError):
    """A check ran and found a problem (stale table, lint errors, a failing upgrade pair)."""

    exit_code = EXIT_CHECK_FAILED


class PlanError(RollsafeError):
    """An upgrade plan cannot be made as asked: a downgrade, a CL that is in no row."""


class DeployingFileError(RollsafeError):
    """The DEPLOYING file cannot hold the table: malformed markers, unreadable text."""


class QueryFileError(RollsafeError):
    """A query file (sqlc style, ``-- name: X :kind`` headers) cannot be read as queries."""

    def __init__(self, what: str, *, file: str, line: int | None = None, fix: str | None = None):
        self.file = file
        self.line = line
        super().__init__(what, where=at(file, line), fix=fix)


class FixtureError(RollsafeError):
    """An upgrade fixture folder (``tests/upgrade/<version>/``) is malformed."""

    def __init__(self, what: str, *, file: str, line: int | None = None, fix: str | None = None):
        self.file = file
        self.line = line
        super().__init__(what, where=at(file, line), fix=fix)


def _versions(known: tuple[int, ...]) -> str:
    """A short list of versions for a message: all of them, or the ends of a long list."""
    if not known:
        return "none"
    shown = [str(v) for v in known]
    return ", ".join(shown) if len(shown) <= 8 else f"{', '.join(shown[:3])}, ..., {shown[-1]}"


class UnknownVersion(DatabaseError):
    """A target version (``--to``, ``--down-to``, ``--goto``, ``--force``) is not a migration."""

    def __init__(self, version: int, *, folder: str, known: tuple[int, ...]) -> None:
        self.version = version
        super().__init__(
            f"version {version} is not a migration in this folder",
            where=folder,
            fix=f"known versions: {_versions(known)}",
        )


class IrreversibleMigration(DatabaseError):
    """A migration on the way down has no down file; nothing was run."""

    def __init__(self, version: int, *, file: str) -> None:
        self.version = version
        self.file = file
        super().__init__(
            f"migration {version} has no down file, so it cannot be undone; nothing was run",
            where=file,
            fix="write the .down.sql file, or restore a backup instead of migrating down",
        )


class DatabaseAhead(DatabaseError):
    """The database's version is newer than every migration this code knows."""

    def __init__(self, version: int, *, head: int | None, where: str) -> None:
        self.version = version
        self.head = head
        super().__init__(
            f"database is at version {version}, newer than this code's newest migration "
            f"({'none' if head is None else head})",
            where=where,
            fix="migrate with the newer code; old code may run on a newer schema in a rolling "
            "upgrade, so plain `migrate` leaves it alone",
        )


def error_message(exc: RollsafeError | KeyboardInterrupt) -> str:
    """The one line a user reads for ``exc``, without ``rollsafe:`` (nox names the session)."""
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else exc.message


def report(
    exc: RollsafeError | KeyboardInterrupt, *, debug: bool = False, err: TextIO | None = None
) -> int:
    """Print ``rollsafe: <message>`` (after the traceback with ``debug``) and return the exit code.

    Why one function: the console script and the invoke tasks print the same
    line and exit with the same code for the same error, and ``--debug`` means
    the same thing in both.
    """
    stream = err if err is not None else sys.stderr
    if debug and not isinstance(exc, KeyboardInterrupt):
        traceback.print_exception(exc, file=stream)
    print(f"rollsafe: {error_message(exc)}", file=stream)
    return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else exc.exit_code
