"""Before the pairs run: can the selected engine run these migrations at all?

Why: a migration folder written for CockroachDB fails on PostgreSQL at its
first CockroachDB statement, and the pair tests would then report every
later pair as failed because of "migration 1662136250", when the migration
is fine and the engine is wrong.  This check reads the migrations (no
database) and stops with one line that names the file and line needing
CockroachDB and how to get that engine, before any server starts.

The check is the library's, so the ``upgrade-pairs`` command, the invoke
task and the nox sessions all stop the same way.  It runs twice at most:
before a server starts (the engine is known from ``--engine`` / the
environment / ``auto``'s choice), and once an external cluster is attached
(only its answer to ``crdb_version`` tells which engine it is).
"""

from __future__ import annotations

import os
import shutil

from rollsafe.engines import ENGINE_ENV, URL_ENV, resolve_engine
from rollsafe.errors import EngineMismatch
from rollsafe.lint import DialectUse, files_needing_cockroach
from rollsafe.migrate import Catalogue


def cockroach_need(
    catalogue: Catalogue, *, up_to: int | None = None
) -> tuple[str, DialectUse] | None:
    """The first file (and construct) of the catalogue that needs CockroachDB, if any.

    Migrations are read in version order, each up file before its down
    file; ``up_to`` stops after that version (the pairs selected never run
    later migrations).
    """
    for migration in catalogue:
        if up_to is not None and migration.version > up_to:
            break
        for path, uses in files_needing_cockroach(migration):
            return path, uses[0]
    return None


def _postgres_reason(engine: str) -> str:
    """Why the engine is PostgreSQL, as the user chose it (or `auto` did)."""
    auto = engine.strip().lower() == "auto" and not os.environ.get(ENGINE_ENV, "").strip()
    if auto and shutil.which("cockroach") is None:
        return "engine `auto` picked PostgreSQL: no `cockroach` binary on PATH"
    return "the engine is PostgreSQL"


def require_engine(
    catalogue: Catalogue,
    *,
    engine: str = "auto",
    flavor: str | None = None,
    up_to: int | None = None,
) -> None:
    """Raise `EngineMismatch` when PostgreSQL would have to run CockroachDB migrations.

    ``flavor`` is the answer of a server already running (``postgres`` or
    ``cockroach``); without it the engine is resolved from ``engine`` as
    `rollsafe.engines.ephemeral_server` would, starting nothing.  An
    ``external`` engine without a flavor is not judged yet: call again once
    it is attached.
    """
    if flavor is None:
        kind = resolve_engine(engine)
        if kind != "postgres":
            return
        reason = _postgres_reason(engine)
    elif flavor == "postgres":
        reason = "the database server is PostgreSQL"
    else:
        return
    need = cockroach_need(catalogue, up_to=up_to)
    if need is None:
        return
    path, use = need
    raise EngineMismatch(
        f"this migration needs CockroachDB ({use.construct}), but {reason}; "
        "no upgrade pair was run",
        file=path,
        line=use.line,
        fix=f"put a `cockroach` binary (v22.1 or newer) on PATH, or set {URL_ENV} to a "
        "CockroachDB cluster and pass `--engine external`",
    )


__all__ = ["cockroach_need", "require_engine"]
