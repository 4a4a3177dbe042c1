"""The real golang-migrate CLI beside rollsafe, on one PostgreSQL started by the project's engine.

Why: compatibility checked against a reading of golang-migrate's source is
only as good as the reading; these tests make golang-migrate itself the
oracle.  The CLI comes from ``ROLLSAFE_GOLANG_MIGRATE`` (a path; `.ci/run`
builds it from ``../shared/tools/golang-migrate``); without it every test
here skips, saying so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from rollsafe.engines import Database, Server
from rollsafe.migrate import Migrator, load_catalogue
from rollsafe.pairs._schema import snapshot_schema

BINARY_ENV = "ROLLSAFE_GOLANG_MIGRATE"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder carries the ``golang_migrate`` marker."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.golang_migrate)


@pytest.fixture(scope="session")
def golang_migrate() -> Path:
    """The golang-migrate CLI, or a skip naming the variable that would provide it."""
    value = os.environ.get(BINARY_ENV, "").strip()
    if not value:
        pytest.skip(f"{BINARY_ENV} is unset: set it to a golang-migrate `migrate` binary")
    path = Path(value)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"{BINARY_ENV}={value} is not an executable file")
    return path


def go_url(db: Database, *, path: bool = True, params: dict[str, str] | None = None) -> str:
    """The golang-migrate URL of ``db`` (lib/pq: a socket folder goes in ``host``).

    ``path=False`` names the database in the query instead, so golang-migrate
    takes its lock id from ``current_database()`` (its ``WithInstance`` route).
    """
    info = conninfo_to_dict(db.dsn)
    query = {"host": str(info["host"]), "port": str(info.get("port", 5432)), "sslmode": "disable"}
    if not path:
        query["dbname"] = db.name
    query.update(params or {})
    where = f"/{quote(db.name)}" if path else ""
    return f"postgres://{info.get('user', 'postgres')}@{where}?{urlencode(query, quote_via=quote)}"


@dataclass(frozen=True)
class Outcome:
    """How one tool's run ended: success, and its message."""

    ok: bool
    message: str


@dataclass
class Tools:
    """Runs one operation through golang-migrate or rollsafe on a migrations folder."""

    binary: Path
    folder: Path

    def write(self, files: dict[str, str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (self.folder / name).write_text(text, encoding="utf-8")

    def go(self, url: str, *args: str, lock_timeout: int = 15) -> Outcome:
        done = subprocess.run(
            [
                str(self.binary),
                "-lock-timeout",
                str(lock_timeout),
                "-path",
                str(self.folder),
                "-database",
                url,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Outcome(done.returncode == 0, done.stderr + done.stdout)

    def rollsafe(self, dsn: str, operation: str, version: int | None = None) -> Outcome:
        catalogue = load_catalogue(self.folder.parent, self.folder.name)
        try:
            with Migrator(dsn, catalogue) as migrator:
                if operation == "up":
                    migrator.up()
                elif operation == "goto":
                    migrator.goto(version)
                elif operation == "down-to":
                    migrator.down_to(version)
                elif operation == "force":
                    migrator.force(version)
                else:
                    raise AssertionError(operation)
        except Exception as exc:
            return Outcome(False, str(exc))
        return Outcome(True, "")


@pytest.fixture
def tools(golang_migrate: Path, tmp_path: Path) -> Tools:
    return Tools(golang_migrate, tmp_path / "migrations")


@pytest.fixture
def twin(pg_server: Server) -> Iterator[tuple[Database, Database]]:
    """Two fresh databases on one server: golang-migrate's and rollsafe's."""
    first = pg_server.create_database()
    second = pg_server.create_database()
    try:
        yield first, second
    finally:
        pg_server.drop(first)
        pg_server.drop(second)


def rows(db: Database, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        return list(conn.execute(sql).fetchall())


def execute(db: Database, sql: str) -> None:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(sql)


def state(db: Database, table: str = '"schema_migrations"') -> list[tuple[object, ...]]:
    """The state table's rows (golang-migrate keeps exactly one)."""
    return rows(db, f"SELECT version, dirty FROM {table}")


def schema(db: Database) -> object:
    """rollsafe's own catalog snapshot of the whole schema, state table included."""
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        return snapshot_schema(conn)
