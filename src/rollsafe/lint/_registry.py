"""The lint rule registry and the finding type, shared by the SQL rules and the history hazards.

Why: rule ids are a contract (users write them in ``-- lint: ignore``, the
README documents them, JSON output carries them), so they are declared once,
here, with their kind, default severity, one-line why and fix.  Public
through `rollsafe.lint`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Severity = Literal["error", "warning", "info"]
RuleKind = Literal["breaking", "risky", "history", "file"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class Rule:
    """A lint rule: stable id (used in ``-- lint: ignore``), kind, default severity, why, fix.

    ``breaking`` rules mean old code fails on the new schema and infer
    ``offline``; ``risky`` rules warn about locks and transactions without
    changing compatibility; ``history`` and ``file`` rules concern the
    folder and its history rather than one statement.
    """

    id: str
    kind: RuleKind
    severity: Severity
    why: str
    fix: str


def _rules(*rules: Rule) -> Mapping[str, Rule]:
    return MappingProxyType({rule.id: rule for rule in rules})


#: The rule registry, in the order the README documents it.
RULES: Mapping[str, Rule] = _rules(
    Rule(
        "drop-table",
        "breaking",
        "warning",
        "old code still reads and writes the table",
        "stop using it in one release, drop it in a later one (declare that one offline)",
    ),
    Rule(
        "drop-column",
        "breaking",
        "warning",
        "old code that selects or inserts the column fails",
        "ship code that no longer uses the column first, then drop it in a later migration",
    ),
    Rule(
        "drop-type",
        "breaking",
        "warning",
        "old code that casts to the type or uses it in a column fails",
        "drop the type in a later release, after no code names it",
    ),
    Rule(
        "drop-enum-value",
        "breaking",
        "warning",
        "old code that writes the dropped label fails, rows holding it must be rewritten",
        "stop writing the label first; to only add labels use ALTER TYPE ... ADD VALUE",
    ),
    Rule(
        "rename-table",
        "breaking",
        "warning",
        "old code names the table by its old name",
        "create the new table (or a view under the old name) and move code over in steps",
    ),
    Rule(
        "rename-column",
        "breaking",
        "warning",
        "old code names the column by its old name",
        "add the new column, write both, backfill, switch reads, drop the old one later",
    ),
    Rule(
        "add-not-null-column",
        "breaking",
        "warning",
        "old code's inserts omit the column and fail; on a populated table the migration fails",
        "add it with a DEFAULT, or nullable and set NOT NULL once every writer fills it",
    ),
    Rule(
        "set-not-null",
        "breaking",
        "warning",
        "old code that writes NULL or omits the column fails; the check scans the table "
        "under an exclusive lock",
        "give the column a DEFAULT, make every writer fill it, then set NOT NULL in a later "
        "release (after a validated CHECK (col IS NOT NULL) the scan is skipped)",
    ),
    Rule(
        "change-column-type",
        "breaking",
        "warning",
        "old code may send values or expect results of the old type; most changes rewrite "
        "the table under an exclusive lock",
        "add a column of the new type and migrate in steps; if it only widens (varchar(n) "
        "to text) ignore this rule in the file",
    ),
    Rule(
        "add-constraint",
        "breaking",
        "warning",
        "old code's writes can violate a constraint it does not know",
        "ship code that respects the constraint first, then add it (NOT VALID, then "
        "VALIDATE CONSTRAINT in a later migration)",
    ),
    Rule(
        "index-not-concurrent",
        "risky",
        "warning",
        "without CONCURRENTLY, writes to the table (and for DROP INDEX, reads) wait until "
        "the index is built or dropped",
        "use CREATE/DROP INDEX CONCURRENTLY, alone in its own migration file (it cannot "
        "run inside the file's transaction)",
    ),
    Rule(
        "constraint-validates-rows",
        "risky",
        "warning",
        "checking existing rows holds a lock that blocks writes for a full table scan",
        "add CHECK and FOREIGN KEY constraints NOT VALID and VALIDATE CONSTRAINT in a "
        "later migration; for UNIQUE build the index CONCURRENTLY and add USING INDEX",
    ),
    Rule(
        "add-column-rewrites-table",
        "risky",
        "warning",
        "a value computed for every row (serial, identity, a volatile default) rewrites the "
        "table under a lock that blocks reads and writes",
        "add the column without a default, fill it in batches, then set the default (and the "
        "sequence) in a later migration",
    ),
    Rule(
        "enum-value-same-transaction",
        "risky",
        "warning",
        "PostgreSQL refuses a new enum label before the transaction that added it commits, "
        "and a migration file runs as one transaction",
        "move the ALTER TYPE ... ADD VALUE into its own, earlier migration",
    ),
    Rule(
        "golang-migrate-one-query",
        "file",
        "warning",
        "golang-migrate sends the file as one query, which PostgreSQL runs as one implicit "
        "transaction, where this statement is refused: the migration fails in production",
        "move the statement to a migration file of its own",
    ),
    Rule(
        "not-analysed",
        "risky",
        "warning",
        "PostgreSQL's parser cannot read it, so no rule checked it; a file without "
        "`-- compat:` counts as offline",
        "check the statement by hand and declare `-- compat: live` or `offline` in the file",
    ),
    Rule(
        "cockroach-dialect",
        "file",
        "info",
        "the file is CockroachDB SQL, which PostgreSQL cannot run, so its upgrade pairs need "
        "a CockroachDB engine",
        "run the pair tests with a `cockroach` binary (v22.1+) on PATH, or with "
        "ROLLSAFE_DATABASE_URL set to a CockroachDB cluster and `--engine external`",
    ),
    Rule(
        "shipped-migration-edited",
        "history",
        "error",
        "databases that already applied the file keep the old version, so schemas diverge",
        "restore the shipped content and put the change in a new migration",
    ),
    Rule(
        "migration-out-of-order",
        "history",
        "error",
        "golang-migrate only applies versions above a database's current one, so databases "
        "past it never run it",
        "give it a version above every shipped one; if databases already applied it, "
        "acknowledge with `-- lint: ignore migration-out-of-order`",
    ),
    Rule(
        "migration-deleted",
        "history",
        "error",
        "databases at that version cannot migrate further, and new databases lack its changes",
        "restore the file; undo its effect in a new migration instead",
    ),
    Rule(
        "migration-renamed",
        "history",
        "error",
        "golang-migrate knows a migration by its version; a new version is a new migration",
        "restore the original version number; only the title may change",
    ),
    Rule(
        "folder-vanished",
        "history",
        "error",
        "with no migration files, nothing can migrate or roll back",
        "restore the folder, or set `migrations` in [tool.rollsafe] to its new place",
    ),
    Rule(
        "missing-down",
        "file",
        "warning",
        "without a down file the migration cannot be rolled back",
        "add <version>_<title>.down.sql, or acknowledge with `-- lint: ignore missing-down`",
    ),
    Rule(
        "unknown-rule",
        "file",
        "error",
        "a misspelt rule id silences nothing",
        "use an id from `rollsafe lint` output or the README's rule table",
    ),
    Rule(
        "bad-catalogue",
        "file",
        "error",
        "a malformed file name, pair or directive stops every command",
        "fix the file as the message says",
    ),
    Rule(
        "history-unreadable",
        "history",
        "error",
        "history hazards cannot be checked without the branch's history",
        "fetch the full history (not a shallow clone), or pass --no-history",
    ),
)

#: Rules that make a file ``offline`` when it declares nothing (plus `not-analysed`).
BREAKING: frozenset[str] = frozenset(r.id for r in RULES.values() if r.kind == "breaking")


@dataclass(frozen=True)
class Finding:
    """One problem: which rule, how bad, where, what, and how to fix it.

    ``cl`` and ``commit`` name the code version that introduced a history
    hazard (``None`` for file findings and for uncommitted work).
    """

    rule: str
    severity: Severity
    file: str
    line: int | None
    message: str
    fix: str
    cl: str | None = None
    commit: str | None = None

    @property
    def why(self) -> str:
        rule = RULES.get(self.rule)
        return rule.why if rule else ""


def with_cl(found: Finding, message: str, cl: str | None, commit: str | None) -> Finding:
    """The same finding, with a new message and the code version that caused it."""
    return Finding(
        found.rule, found.severity, found.file, found.line, message, found.fix, cl, commit
    )
