"""rollsafe: which code version ships which schema, and is every upgrade step safe.

The public API is listed in ``__all__``; everything in a module whose name
starts with ``_`` is private and may change without notice.  Names are
imported on first use (PEP 562): ``import rollsafe`` must stay cheap, because
the console script imports it for every command and ``release-table`` has no
use for the database stack (psycopg) or the SQL parser (pglast).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollsafe._lazy import lazy_names
from rollsafe._version import __version__ as __version__

if TYPE_CHECKING:
    from rollsafe.config import Config, load_config
    from rollsafe.engines import Database, Server, Snapshot, ephemeral_server
    from rollsafe.errors import RollsafeError
    from rollsafe.history import CodeVersion, History, ReleaseRecord, load_records, read_history
    from rollsafe.lint import CompatVerdict, Finding, compat_of, lint_catalogue, lint_history
    from rollsafe.migrate import (
        Catalogue,
        Migration,
        Migrator,
        Status,
        catalogue_from_files,
        load_catalogue,
    )
    from rollsafe.pairs import Pair, PairResult, pairs_from
    from rollsafe.table import Plan, Row, compute_rows, plan_upgrade, rows_from

#: Public name -> the module that defines it.
_EXPORTS = {
    "Catalogue": "rollsafe.migrate",
    "Migration": "rollsafe.migrate",
    "catalogue_from_files": "rollsafe.migrate",
    "load_catalogue": "rollsafe.migrate",
    "compute_rows": "rollsafe.table",
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
    "Migrator": "rollsafe.migrate",
    "Status": "rollsafe.migrate",
    "Pair": "rollsafe.pairs",
    "PairResult": "rollsafe.pairs",
    "pairs_from": "rollsafe.pairs",
    "Plan": "rollsafe.table",
    "plan_upgrade": "rollsafe.table",
    "ReleaseRecord": "rollsafe.history",
    "load_records": "rollsafe.history",
    "Row": "rollsafe.table",
    "rows_from": "rollsafe.table",
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


__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
