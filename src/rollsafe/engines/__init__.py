"""Throwaway database servers: an embedded PostgreSQL, a CockroachDB node, or an external cluster.

Why: every database test and every upgrade pair needs a real server, started
and removed by rollsafe itself; `ephemeral_server` is the one entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollsafe._lazy import lazy_names

if TYPE_CHECKING:
    from rollsafe.engines._servers import (
        ENGINE_ENV,
        URL_ENV,
        Database,
        EngineKind,
        PostgresServer,
        Server,
        Snapshot,
        ephemeral_server,
        find_postgres_bindir,
        resolve_engine,
        unique_name,
    )

__all__ = [
    "ENGINE_ENV",
    "URL_ENV",
    "Database",
    "EngineKind",
    "PostgresServer",
    "Server",
    "Snapshot",
    "ephemeral_server",
    "find_postgres_bindir",
    "resolve_engine",
    "unique_name",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "Database": "._servers",
        "ENGINE_ENV": "._servers",
        "EngineKind": "._servers",
        "PostgresServer": "._servers",
        "Server": "._servers",
        "Snapshot": "._servers",
        "URL_ENV": "._servers",
        "ephemeral_server": "._servers",
        "find_postgres_bindir": "._servers",
        "resolve_engine": "._servers",
        "unique_name": "._servers",
    },
)
