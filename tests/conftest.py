"""Shared fixtures: one real database server per test session, one fresh database per test.

Why: database tests run against a real server started by the project's own
engine (`rollsafe.engines`), never a mock.  Starting PostgreSQL costs about a
second, creating a database a few milliseconds, so the server lives for the
session and every test gets its own empty database, dropped afterwards.

``pg_server`` is PostgreSQL: an embedded one by default, or the cluster of
``ROLLSAFE_DATABASE_URL`` when ``ROLLSAFE_ENGINE=external`` (or when only the
URL is set), so CI can point the suite at a shared server.
``cockroach_server`` is a CockroachDB node, skipped with the reason when no
``cockroach`` binary is on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from rollsafe.engines import ENGINE_ENV, URL_ENV, Database, Server, ephemeral_server


def _pg_engine() -> str:
    """``external`` when asked for (or when only a URL is given), else the embedded server."""
    chosen = os.environ.get(ENGINE_ENV, "").strip().lower()
    if chosen == "external" or (not chosen and os.environ.get(URL_ENV)):
        return "external"
    return "postgres"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """A PostgreSQL server for the whole session (stopped and removed at the end)."""
    with ephemeral_server(_pg_engine()) as server:
        if server.flavor != "postgres":
            pytest.skip(f"{URL_ENV} points at CockroachDB; these tests need PostgreSQL")
        yield server


@pytest.fixture
def database(pg_server: Server) -> Iterator[Database]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    db = pg_server.create_database()
    try:
        yield db
    finally:
        pg_server.drop(db)


@pytest.fixture(scope="session")
def cockroach_server() -> Iterator[Server]:
    """A single-node in-memory CockroachDB, or a skip saying why there is none."""
    if shutil.which("cockroach") is None:
        pytest.skip("no `cockroach` binary on PATH: CockroachDB tests need one")
    with ephemeral_server("cockroach") as server:
        yield server


@pytest.fixture
def cockroach_database(cockroach_server: Server) -> Iterator[Database]:
    """A fresh CockroachDB database for one test, dropped afterwards."""
    db = cockroach_server.create_database()
    try:
        yield db
    finally:
        cockroach_server.drop(db)
