"""Throwaway database servers: an embedded PostgreSQL, a CockroachDB node, or an external cluster.

Why: every database test and every upgrade pair needs a real server, started
and removed by rollsafe itself; `ephemeral_server` is the one entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollsafe._lazy import lazy_names

if TYPE_CHECKING:
    from rollsafe.engines._base import (
        ENGINE_ENV,
        URL_ENV,
        Database,
        EngineKind,
        Server,
        Snapshot,
        unique_name,
    )
    from rollsafe.engines._ephemeral import ephemeral_server, resolve_engine
    from rollsafe.engines._postgres import PostgresServer, find_postgres_bindir

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
        "Database": "._base",
        "ENGINE_ENV": "._base",
        "EngineKind": "._base",
        "PostgresServer": "._postgres",
        "Server": "._base",
        "Snapshot": "._base",
        "URL_ENV": "._base",
        "ephemeral_server": "._ephemeral",
        "find_postgres_bindir": "._postgres",
        "resolve_engine": "._ephemeral",
        "unique_name": "._base",
    },
)
