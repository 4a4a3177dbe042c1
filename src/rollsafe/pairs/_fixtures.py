"""Upgrade fixtures: the data old code wrote (seeds) and what new code must read (checks).

Why: a migration that works on an empty database can still fail on a real
one (``NOT NULL`` over existing rows, a unique index over duplicates), and
a down migration can keep the schema but lose the rows.  Fixtures give the
pair test data that looks like production: ``tests/upgrade/<version>/``
holds ``seed.sql`` (what the code of that version wrote), ``check.sql``
(what the code of that version must be able to read) and, for data that
SQL alone cannot express, ``fixture.py`` with ``seed(conn)`` and
``check(conn)``.

Rules (the README repeats them):

* A seed runs in one transaction: all of it or nothing.  Seeds run once when
  the chain reaches their version and again on the next schema when the
  step is ``live`` (old code keeps writing), so a seed must not rely on
  being the first to insert a unique value: derive keys from existing rows
  or from a sequence, as the real code does.
* A check is what the code of its version reads, and it runs on data that
  code did not write: in step 5 on the data written before its version
  (new code reads old data), and after a down to its version on everything
  written up to then, including old code's writes on the newer schema.  So
  a check asserts what must hold for any such data (``SELECT NOT EXISTS
  (... bad rows ...)``), not that its own seed is there.
* Every statement of ``check.sql`` must succeed, and a statement that
  returns rows fails the check unless it returns at least one row and the
  first column of every row is neither false nor NULL.  All statements run
  (each in its own savepoint) so one report lists every failing check, and
  the transaction is rolled back: checks never change the data.
* Seeds and checks must not change the schema: the pair test compares the
  schema before and after, and only follows the objects the migrations
  name.
* ``fixture.py``'s ``check(conn)`` fails by raising (``assert`` is fine) or
  by returning ``False``.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg

from rollsafe._db import ServerError
from rollsafe._sqltext import Statement, error_line, line_at, skip_comments, split_statements
from rollsafe.errors import FixtureError
from rollsafe.pairs._batch import batchable, run_batch

#: The files a version folder may hold; other ``.sql``/``.py`` files are typos.
KNOWN_FILES = ("seed.sql", "check.sql", "fixture.py")

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class Fixture:
    """The fixture files of one migration version (paths repository-relative)."""

    version: int
    folder: str
    seed_sql: str | None = None
    check_sql: str | None = None
    module: Path | None = field(default=None, compare=False)

    @property
    def seed_path(self) -> str:
        return f"{self.folder}/seed.sql"

    @property
    def check_path(self) -> str:
        return f"{self.folder}/check.sql"

    @property
    def module_path(self) -> str:
        return f"{self.folder}/fixture.py"

    @property
    def has_seed(self) -> bool:
        return self.seed_sql is not None or self.module is not None

    @property
    def has_check(self) -> bool:
        return self.check_sql is not None or self.module is not None


@dataclass(frozen=True)
class FixtureFailure:
    """A seed or check that failed: which file and line, which statement, and why."""

    file: str
    line: int | None
    statement: str
    message: str
    sqlstate: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def sentence(self) -> str:
        return f"{self.where}: {self.message}"


def statements_of(text: str) -> tuple[Statement, ...]:
    """The statements of a fixture file; one that cannot be split is sent whole.

    Then the server names the unclosed quote or comment, with its line.
    """
    statements = split_statements(text)
    if statements is not None:
        return statements
    start = skip_comments(text, 0)
    return (Statement(text[start:].rstrip(), start, line_at(text, start)),)


def _read(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FixtureError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})",
            file=shown,
            fix="save it as UTF-8",
        ) from exc
    except OSError as exc:
        raise FixtureError(f"cannot read: {exc.strerror}", file=shown) from exc


def load_fixtures(
    repo: Path, folder: str, versions: Collection[int] | None = None
) -> dict[int, Fixture]:
    """The fixtures under ``repo/folder``, by version; ``{}`` when the folder is absent.

    Folder names are versions (``3`` or ``000003``).  A folder that is not a
    number, two folders for one version, a version that is not a migration
    (when ``versions`` is given) and an unknown ``.sql``/``.py`` file are
    errors naming the path: each is a fixture that would silently never run.
    """
    root = repo / folder
    if not root.is_dir():
        return {}
    found: dict[int, Fixture] = {}
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith((".", "_")):
            continue
        shown = f"{folder.rstrip('/')}/{entry.name}"
        if not entry.name.isdigit():
            raise FixtureError(
                "fixture folder name is not a migration version",
                file=shown,
                fix="name it after the version it seeds and checks, e.g. 000003",
            )
        version = int(entry.name)
        if version in found:
            raise FixtureError(
                f"second fixture folder for version {version} (also {found[version].folder})",
                file=shown,
                fix="merge them into one folder",
            )
        if versions is not None and version not in versions:
            raise FixtureError(
                f"no migration has version {version}",
                file=shown,
                fix="rename the folder after an existing migration version or delete it",
            )
        for item in sorted(entry.iterdir()):
            if item.suffix in (".sql", ".py") and item.name not in KNOWN_FILES:
                raise FixtureError(
                    f"unknown fixture file `{item.name}`",
                    file=f"{shown}/{item.name}",
                    fix=f"fixture files are {', '.join(KNOWN_FILES)}",
                )
        seed, check, module = entry / "seed.sql", entry / "check.sql", entry / "fixture.py"
        found[version] = Fixture(
            version=version,
            folder=shown,
            seed_sql=_read(seed, f"{shown}/seed.sql") if seed.is_file() else None,
            check_sql=_read(check, f"{shown}/check.sql") if check.is_file() else None,
            module=module if module.is_file() else None,
        )
    return found


def _load_module(fixture: Fixture) -> ModuleType:
    assert fixture.module is not None
    name = f"rollsafe_fixture_{fixture.version}"
    spec = importlib.util.spec_from_file_location(name, fixture.module)
    if spec is None or spec.loader is None:
        raise FixtureError("cannot import", file=fixture.module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def _python_failure(fixture: Fixture, exc: BaseException, doing: str) -> FixtureFailure:
    """Where in ``fixture.py`` an exception came from, and its message."""
    line: int | None = None
    statement = doing
    assert fixture.module is not None
    target = str(fixture.module.resolve())
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
            statement = (frame.line or doing).strip()
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        message = ServerError.from_diag(exc.diag).text
        sqlstate = exc.diag.sqlstate
    else:
        text = str(exc) or "assertion failed" if isinstance(exc, AssertionError) else str(exc)
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        sqlstate = None
    return FixtureFailure(
        file=fixture.module_path, line=line, statement=statement, message=message, sqlstate=sqlstate
    )


def _call(fixture: Fixture, function: str, conn: Connection) -> FixtureFailure | bool | None:
    """Call ``fixture.py``'s ``function(conn)``; a failure, or what it returned."""
    # SystemExit too: user code must not end the run (a `sys.exit(0)` once ended it with 0).
    try:
        module = _load_module(fixture)
    except (Exception, SystemExit) as exc:
        return _python_failure(fixture, exc, "import fixture.py")
    hook: Callable[[Connection], object] | None = getattr(module, function, None)
    if hook is None:
        return None
    try:
        result = hook(conn)
    except (Exception, SystemExit) as exc:
        if conn.closed:
            return _closed(fixture, function)
        return _python_failure(fixture, exc, f"{function}(conn)")
    if conn.closed:
        return _closed(fixture, function)
    return result is not False


def _closed(fixture: Fixture, function: str) -> FixtureFailure:
    return FixtureFailure(
        file=fixture.module_path,
        line=None,
        statement=f"{function}(conn)",
        message=f"{function}(conn) closed the connection; a fixture must leave it open",
    )


def run_statements(conn: Connection, text: str, file: str) -> FixtureFailure | None:
    """Run every statement of ``text``; the first failure (the transaction is then aborted)."""
    for statement in statements_of(text):
        try:
            conn.execute(statement.text)  # fixture SQL, no parameters
        except psycopg.Error as exc:
            if conn.closed:
                raise
            error = ServerError.from_diag(exc.diag)
            line = (
                error_line(error.position, statement.text, first_line=statement.line)
                or statement.line
            )
            return FixtureFailure(
                file=file,
                line=line,
                statement=statement.text,
                message=error.text,
                sqlstate=error.sqlstate,
            )
    return None


def _sql_only(fixture: Fixture, text: str | None) -> tuple[str, ...] | None:
    """The statements of a SQL-only fixture file that can go out as one batch, or None."""
    if fixture.module is not None or text is None:
        return None
    statements = tuple(s.text for s in statements_of(text))
    return statements if batchable(statements) else None


def seed(conn: Connection, fixture: Fixture, *, keep: bool = True) -> FixtureFailure | None:
    """Write a version's seed data in one transaction; the failure, or None when it committed.

    A ``seed.sql`` alone goes out in one round trip (`rollsafe.pairs._batch`); when
    that fails, it was rolled back, and the statement-by-statement run below
    finds and reports the failing statement.  With ``keep=False`` the writes
    are only tried and always rolled back (the rollback check tries new
    code's writes on the old schema without adding rows the chain would
    write again).
    """
    batch = _sql_only(fixture, fixture.seed_sql)
    if batch is not None and run_batch(conn, batch, end="COMMIT" if keep else "ROLLBACK").ok:
        return None
    failure: FixtureFailure | None = None
    try:
        with conn.transaction():
            if fixture.seed_sql is not None:
                failure = run_statements(conn, fixture.seed_sql, fixture.seed_path)
            if failure is None and fixture.module is not None:
                outcome = _call(fixture, "seed", conn)
                if isinstance(outcome, FixtureFailure):
                    failure = outcome
            if failure is not None or not keep:
                raise _Rollback
    except _Rollback:
        pass
    except psycopg.Error:
        if failure is None or not conn.closed:
            raise  # the transaction could not end on a closed connection: the fixture's doing
    return failure


class _Rollback(Exception):
    """Leaves a ``conn.transaction()`` block by rolling back, without an error to report."""


def _holds(first_column: tuple[bool | None, ...] | None) -> bool:
    """`_check_rows` on a batch result: no rows returned, or rows whose first column holds."""
    if first_column is None:
        return True
    return bool(first_column) and all(value is True for value in first_column)


def _check_rows(rows: list[tuple[Any, ...]]) -> str | None:
    if not rows:
        return "returned no rows (a check must return a row whose first column is true)"
    for number, row in enumerate(rows, start=1):
        value = row[0] if row else None
        if value is None or value is False:
            shown = "NULL" if value is None else "false"
            where = "" if len(rows) == 1 else f" in row {number} of {len(rows)}"
            return f"returned {shown}{where}"
    return None


def check(conn: Connection, fixture: Fixture) -> tuple[FixtureFailure, ...]:
    """Run a version's checks on the data; every failing one (nothing is changed).

    A ``check.sql`` alone goes out in one round trip first (`rollsafe.pairs._batch`,
    rolled back); only when a statement fails or a check does not hold are
    the statements run one by one, each in its own savepoint, to report every
    failing one with its line.
    """
    batch = _sql_only(fixture, fixture.check_sql)
    if batch is not None:
        ran = run_batch(conn, batch, end="ROLLBACK")
        if ran.ok and all(_holds(column) for column in ran.first_columns):
            return ()
    failures: list[FixtureFailure] = []
    try:
        _run_checks(conn, fixture, failures)
    except psycopg.Error:
        if not (conn.closed and failures and failures[-1].file == fixture.module_path):
            raise  # the transaction could not end on a closed connection: the fixture's doing
    return tuple(failures)


def _run_checks(conn: Connection, fixture: Fixture, failures: list[FixtureFailure]) -> None:
    with conn.transaction(force_rollback=True):
        if fixture.check_sql is not None:
            for statement in statements_of(fixture.check_sql):
                try:
                    with conn.transaction(), conn.cursor() as cursor:
                        cursor.execute(statement.text)
                        problem = _check_rows(cursor.fetchall()) if cursor.description else None
                except psycopg.Error as exc:
                    if conn.closed:
                        raise
                    error = ServerError.from_diag(exc.diag)
                    line = (
                        error_line(error.position, statement.text, first_line=statement.line)
                        or statement.line
                    )
                    failures.append(
                        FixtureFailure(
                            file=fixture.check_path,
                            line=line,
                            statement=statement.text,
                            message=error.text,
                            sqlstate=error.sqlstate,
                        )
                    )
                    continue
                if problem is not None:
                    failures.append(
                        FixtureFailure(
                            file=fixture.check_path,
                            line=statement.line,
                            statement=statement.text,
                            message=problem,
                        )
                    )
        if fixture.module is not None:
            failed: FixtureFailure | None = None
            try:
                with conn.transaction():
                    outcome = _call(fixture, "check", conn)
                    if isinstance(outcome, FixtureFailure):
                        failed = outcome
                    elif outcome is False:
                        failed = FixtureFailure(
                            file=fixture.module_path,
                            line=None,
                            statement="check(conn)",
                            message="check(conn) returned False",
                        )
                    if failed is not None:
                        raise _Failed(failed)
            except _Failed:
                pass
            finally:
                if failed is not None:
                    failures.append(failed)


class _Failed(Exception):
    def __init__(self, failure: FixtureFailure) -> None:
        self.failure = failure
        super().__init__(failure.sentence())


def fixtures_for(fixtures: Mapping[int, Fixture], versions: Collection[int]) -> list[Fixture]:
    """The fixtures of ``versions``, in version order."""
    return [fixtures[v] for v in sorted(versions) if v in fixtures]
