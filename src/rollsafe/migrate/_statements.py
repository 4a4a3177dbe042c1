"""Whether a migration file can run in a transaction block, and if not, why.

Why: golang-migrate's way of running a file decides what production sees;
a file holding a statement PostgreSQL refuses inside a transaction block
(``CREATE INDEX CONCURRENTLY``) runs statement by statement instead.  Lint
asks the same questions, so nothing here loads the database driver.  The
statements themselves are `rollsafe._sqltext`'s.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from pglast import parser as pg_parser

from rollsafe._sqltext import mentions_word, split_statements

#: The marker that forces golang-migrate's non-transactional protocol for a file.
NO_TRANSACTION = re.compile(r"^--\s*transaction:\s*(?P<mode>none|per-statement)\s*$", re.I)


#: A word every statement `_reason` refuses contains (a superset: words in strings count
#: too).  A file without any fits one transaction without being parsed, which for a
#: 5 MB bulk load is most of the cost.
_REFUSED_WORDS = (
    "concurrently", "vacuum", "cluster", "begin", "start", "commit", "end", "rollback",
    "abort", "prepare", "database", "tablespace", "system", "subscription", "discard",
    "reindex", "detach",
)  # fmt: skip


def _reason(kind: str, node: dict[str, Any]) -> str | None:
    """Why PostgreSQL refuses this statement in a transaction block, or None."""
    concurrent = bool(node.get("concurrent"))
    if kind == "TransactionStmt":
        if node.get("kind") not in (
            "TRANS_STMT_SAVEPOINT",
            "TRANS_STMT_RELEASE",
            "TRANS_STMT_ROLLBACK_TO",
        ):
            return "the file controls its own transactions (BEGIN/COMMIT)"
        return None
    if kind == "IndexStmt" and concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if kind == "DropStmt" and concurrent:
        return "DROP INDEX CONCURRENTLY"
    if kind == "ReindexStmt":
        params = node.get("params") or []
        names = {p.get("DefElem", {}).get("defname") for p in params if isinstance(p, dict)}
        if "concurrently" in names:
            return "REINDEX CONCURRENTLY"
        if node.get("kind") in ("REINDEX_OBJECT_DATABASE", "REINDEX_OBJECT_SYSTEM"):
            return "REINDEX DATABASE/SYSTEM"
        return None
    if kind == "VacuumStmt":
        return "VACUUM" if node.get("is_vacuumcmd") else None
    if kind == "ClusterStmt":
        return None if node.get("relation") else "CLUSTER without a table"
    if kind == "AlterTableStmt":
        for cmd in node.get("cmds") or []:
            detail = cmd.get("AlterTableCmd", {}) if isinstance(cmd, dict) else {}
            partition = detail.get("def", {}).get("PartitionCmd", {})
            if detail.get("subtype") == "AT_DetachPartition" and partition.get("concurrent"):
                return "DETACH PARTITION CONCURRENTLY"
        return None
    if kind == "AlterDatabaseStmt":
        options = node.get("options") or []
        names = {o.get("DefElem", {}).get("defname") for o in options if isinstance(o, dict)}
        return "ALTER DATABASE ... SET TABLESPACE" if "tablespace" in names else None
    if kind == "DiscardStmt":
        return "DISCARD ALL" if node.get("target") == "DISCARD_ALL" else None
    return {
        "CreatedbStmt": "CREATE DATABASE",
        "DropdbStmt": "DROP DATABASE",
        "CreateTableSpaceStmt": "CREATE TABLESPACE",
        "DropTableSpaceStmt": "DROP TABLESPACE",
        "AlterSystemStmt": "ALTER SYSTEM",
        "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
        "AlterSubscriptionStmt": "ALTER SUBSCRIPTION",
        "DropSubscriptionStmt": "DROP SUBSCRIPTION",
    }.get(kind)


def _declared_mode(sql: str) -> str | None:
    """The ``-- transaction:`` value in the comment block at the top of ``sql``, if any."""
    for raw in sql.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            break
        match = NO_TRANSACTION.match(line)
        if match:
            return match["mode"].lower()
    return None


def per_statement(sql: str) -> bool:
    """Whether the file asks to be sent one statement at a time (``-- transaction: per-statement``).

    golang-migrate always sends a file as one query; splitting is rollsafe's
    opt-in for files that production runs with rollsafe.
    """
    return _declared_mode(sql) == "per-statement"


@functools.lru_cache(maxsize=4096)
def no_transaction_reason(sql: str) -> str | None:
    """Why ``sql`` must run outside a transaction block, or None when one transaction fits.

    A file pglast cannot parse runs in a transaction: the server then
    reports the syntax error with the previous version left clean.
    """
    mode = _declared_mode(sql)
    if mode is not None:
        return f"the file declares `-- transaction: {mode}`"
    if not mentions_word(sql, _REFUSED_WORDS):
        return None  # no statement `_reason` knows can be written without these words
    try:
        tree = json.loads(pg_parser.parse_sql_json(sql))
    except pg_parser.ParseError:
        return None
    for entry in tree.get("stmts", []):
        for kind, node in entry.get("stmt", {}).items():
            reason = _reason(kind, node if isinstance(node, dict) else {})
            if reason:
                return reason
    return None


def one_query_refusal(sql: str) -> tuple[int, str] | None:
    """Where golang-migrate's way of running ``sql`` fails: the line and the statement kind.

    golang-migrate sends a file as one query, which PostgreSQL runs as one
    implicit transaction; a statement refused inside a transaction block
    (``CREATE INDEX CONCURRENTLY``) then fails unless it is the file's only
    statement.  None when the file runs that way.
    """
    if not mentions_word(sql, _REFUSED_WORDS):
        return None
    statements = split_statements(sql)
    if statements is None or len([s for s in statements if s.text.strip()]) < 2:
        return None
    for statement in statements:
        reason = no_transaction_reason(statement.text)
        if reason is not None and not reason.startswith("the file"):
            return statement.line, reason
    return None
