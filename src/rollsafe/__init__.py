"""rollsafe: which code version ships which schema, and is every upgrade step safe.

The public API is listed in ``__all__``; everything in a module whose name
starts with ``_`` is private and may change without notice.  Names are
imported on first use (PEP 562): ``import rollsafe`` must stay cheap, because
the console script imports it for every command and ``release-table`` has no
use for the database stack (psycopg) or the SQL parser (pglast).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rollsafe.catalogue import Catalogue, Migration, catalogue_from_files, load_catalogue
    from rollsafe.commands.table import compute_rows
    from rollsafe.config import Config, load_config
    from rollsafe.engines import Database, Server, Snapshot, ephemeral_server
    from rollsafe.errors import RollsafeError
    from rollsafe.history import CodeVersion, History, read_history
    from rollsafe.lint import CompatVerdict, Finding, compat_of, lint_catalogue, lint_history
    from rollsafe.migrator import Migrator, Status
    from rollsafe.pairs import Pair, PairResult, pairs_from
    from rollsafe.plan import Plan, plan_upgrade
    from rollsafe.releases import ReleaseRecord, load_records
    from rollsafe.rows import Row, rows_from

#: Public name -> the module that defines it.
_EXPORTS = {
    "Catalogue": "rollsafe.catalogue",
    "Migration": "rollsafe.catalogue",
    "catalogue_from_files": "rollsafe.catalogue",
    "load_catalogue": "rollsafe.catalogue",
    "compute_rows": "rollsafe.commands.table",
    "Config": "rollsafe.config",
    "load_config": "rollsafe.config",
    "Database": "rollsafe.engines",
    "Server": "rollsafe.engines",
    "Snapshot": "rollsafe.engines",
    "ephemeral_server": "rollsafe.engines",
    "RollsafeError": "rollsafe.errors",
    "CodeVersion": "rollsafe.history",
    "History": "rollsafe.history",
    "read_history": "rollsafe.history",
    "CompatVerdict": "rollsafe.lint",
    "Finding": "rollsafe.lint",
    "compat_of": "rollsafe.lint",
    "lint_catalogue": "rollsafe.lint",
    "lint_history": "rollsafe.lint",
    "Migrator": "rollsafe.migrator",
    "Status": "rollsafe.migrator",
    "Pair": "rollsafe.pairs",
    "PairResult": "rollsafe.pairs",
    "pairs_from": "rollsafe.pairs",
    "Plan": "rollsafe.plan",
    "plan_upgrade": "rollsafe.plan",
    "ReleaseRecord": "rollsafe.releases",
    "load_records": "rollsafe.releases",
    "Row": "rollsafe.rows",
    "rows_from": "rollsafe.rows",
}

__all__ = [
    "Catalogue",
    "CodeVersion",
    "CompatVerdict",
    "Config",
    "Database",
    "Finding",
    "History",
    "Migration",
    "Migrator",
    "Pair",
    "PairResult",
    "Plan",
    "ReleaseRecord",
    "RollsafeError",
    "Row",
    "Server",
    "Snapshot",
    "Status",
    "catalogue_from_files",
    "compat_of",
    "compute_rows",
    "ephemeral_server",
    "lint_catalogue",
    "lint_history",
    "load_catalogue",
    "load_config",
    "load_records",
    "pairs_from",
    "plan_upgrade",
    "read_history",
    "rows_from",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rollsafe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
