"""Lint: SQL rules, history hazards and the live/offline verdict of every migration.

Why: a rolling upgrade is only safe when old code keeps working on the new
schema, and most ways to break that are visible in the DDL (a dropped column,
a new ``NOT NULL`` without a default) or in history (a shipped migration
edited, a version added below one already deployed).  Reading them offline,
with PostgreSQL's own parser, lets the release table infer ``live`` or
``offline`` for migrations that declare nothing, and lets CI refuse a
migration declared ``live`` that is not.

Everything here is pure: migrations, `History` and release records in,
`Finding` values out.  The command that reads the work tree and git lives in
`rollsafe.commands.lint`.

Severities:

* ``error`` — something is wrong now: a file declared ``live`` fires a
  breaking rule, a shipped migration was edited or deleted, a directive
  names a rule that does not exist.
* ``warning`` — worth a look before merging: a breaking change in a file
  that declares nothing (it is inferred ``offline``), a statement that takes
  a blocking lock, SQL the parser cannot read, a missing down file.
  ``--strict`` fails on these.
* ``info`` — context, never a failure: the breaking changes behind a
  declared ``offline``, comment-only edits of shipped files.

Down files are linted with the same rules; undoing what the up file did
(dropping the table it created) is the point of a down file and is not
reported.  Other breaking changes in a down file are warnings (the rollback
of a live migration should be live too), or info when the migration is
offline anyway.  ``-- lint: ignore`` in the up file applies to both files.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rollsafe.lint._dialect import files_needing_cockroach, summary
from rollsafe.lint._hazards import blob_id, down_origins, lint_history
from rollsafe.lint._registry import (
    BREAKING,
    RULES,
    SEVERITIES,
    Finding,
    Rule,
    RuleKind,
    Severity,
    with_cl,
)
from rollsafe.lint._sql import analyse
from rollsafe.lint._sqlparse import Analysis, Hit
from rollsafe.lint._verdicts import CompatVerdict, RollbackVerdict
from rollsafe.migrate import Catalogue, Migration, one_query_refusal

if TYPE_CHECKING:
    from rollsafe.history import History

__all__ = [
    "BREAKING",
    "RULES",
    "SEVERITIES",
    "CompatVerdict",
    "Finding",
    "LintReport",
    "RollbackVerdict",
    "Rule",
    "RuleKind",
    "Severity",
    "blob_id",
    "compat_of",
    "lint_catalogue",
    "lint_history",
    "lint_migration",
    "rollback_of",
    "sort_findings",
]


@dataclass(frozen=True)
class LintReport:
    """All findings of one run and the verdict of every migration in the work tree."""

    findings: tuple[Finding, ...]
    verdicts: Mapping[int, CompatVerdict] = field(default_factory=dict)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def failed(self, *, strict: bool = False) -> bool:
        """Errors fail; with ``strict``, warnings fail too."""
        return any(
            f.severity == "error" or (strict and f.severity == "warning") for f in self.findings
        )


def _offline_reasons(analysis: Analysis, ignored: Collection[str]) -> tuple[str, ...]:
    found: list[str] = []
    for hit in analysis.hits:
        offline = hit.rule in BREAKING or hit.rule == "not-analysed"
        if offline and hit.rule not in ignored and hit.rule not in found:
            found.append(hit.rule)
    return tuple(found)


def compat_of(migration: Migration) -> CompatVerdict:
    """The declared compat of a migration, or the one inferred from its up file.

    A breaking rule that fires (and is not ignored) infers ``offline``; so
    does a statement the parser cannot read, because unread SQL must never
    pass as safe.  Pure and cached by SQL text.
    """
    reasons = _offline_reasons(analyse(migration.up_sql), migration.directives.lint_ignore)
    declared = migration.directives.compat
    if declared == "live":
        return CompatVerdict("live", inferred=False, reasons=())
    if declared == "offline":
        return CompatVerdict("offline", inferred=False, reasons=reasons)
    return CompatVerdict("offline" if reasons else "live", inferred=True, reasons=reasons)


def rollback_of(migration: Migration) -> RollbackVerdict:
    """The rollback mode of a migration: declared, or inferred from its files.

    A missing down file, or a down file with SQL the parser cannot read, is
    ``restore`` whatever the directive says: only a backup brings the old
    schema back for certain.  Undeclared, a migration is ``offline`` when its
    up file adds something code built for the new schema depends on (a new
    table or view, a NOT NULL column on an existing table: new code reads or
    writes it, and it is gone after the down), or SQL the parser cannot read;
    or when its down file breaks code built for the new schema (renames a
    column back, changes a type back); otherwise ``live``.  The pair test's
    rollback check (new code's queries prepared on the old schema) proves a
    declared ``live``, and fails the pair when it does not hold.
    """
    if migration.down_sql is None:
        return RollbackVerdict("restore", inferred=False, reasons=("has no down file",))
    down = analyse(migration.down_sql)
    if any(hit.rule == "not-analysed" for hit in down.hits):
        return RollbackVerdict(
            "restore",
            inferred=True,
            reasons=("has a down file with SQL the parser cannot read",),
        )
    declared = migration.directives.rollback
    if declared is not None:
        return RollbackVerdict(
            declared, inferred=False, reasons=(f"declares `-- rollback: {declared}`",)
        )
    up = analyse(migration.up_sql)
    reasons = [f"creates {name}" for kind, name in sorted(up.created) if kind == "table"]
    reasons += [f"adds NOT NULL column {column}" for column in sorted(up.new_not_null)]
    if any(hit.rule == "not-analysed" for hit in up.hits):
        reasons.append("holds SQL the parser cannot read")
    # The down file itself can break new code: renaming a column back, changing a type
    # back.  Undoing what the up file created is covered above (or harmless: a nullable
    # column new code can live without), so it is not counted twice.
    reasons += [
        f"its down file {hit.message}"
        for hit in down.hits
        if hit.rule in BREAKING and hit.subject not in up.created
    ]
    if reasons:
        return RollbackVerdict("offline", inferred=True, reasons=tuple(reasons))
    return RollbackVerdict(
        "live",
        inferred=True,
        reasons=("adds no table and no NOT NULL column, and its down file breaks nothing",),
    )


def _finding(rule_id: str, severity: Severity, file: str, hit: Hit, suffix: str = "") -> Finding:
    rule = RULES[rule_id]
    message = f"{hit.message}: {rule.why}{suffix}"
    return Finding(rule_id, severity, file, hit.line, message, rule.fix)


def _one_query_findings(migration: Migration) -> list[Finding]:
    """Where golang-migrate's one-query run of a file fails (`one_query_refusal`)."""
    rule = RULES["golang-migrate-one-query"]
    if rule.id in migration.directives.lint_ignore:
        return []
    findings: list[Finding] = []
    for path, sql in (
        (migration.up_path, migration.up_sql),
        (migration.down_path, migration.down_sql),
    ):
        refusal = one_query_refusal(sql) if path is not None and sql is not None else None
        if path is not None and refusal is not None:
            line, kind = refusal
            message = f"{kind} among other statements: {rule.why}"
            findings.append(Finding(rule.id, "warning", path, line, message, rule.fix))
    return findings


def lint_migration(migration: Migration) -> tuple[Finding, ...]:
    """Every file finding of one migration: its up and down SQL and its directives."""
    directives = migration.directives
    ignored = directives.lint_ignore
    findings: list[Finding] = []
    for unknown in sorted(ignored - RULES.keys()):
        rule = RULES["unknown-rule"]
        findings.append(
            Finding(
                "unknown-rule",
                "error",
                migration.up_path,
                directives.lint_ignore_line,
                f"`-- lint: ignore {unknown}` names no rule: {rule.why}",
                rule.fix,
            )
        )
    verdict = compat_of(migration)
    up = analyse(migration.up_sql)
    for hit in up.hits:
        if hit.rule in ignored:
            continue
        if hit.rule not in BREAKING:
            findings.append(_finding(hit.rule, "warning", migration.up_path, hit))
        elif directives.compat == "live":
            findings.append(
                _finding(hit.rule, "error", migration.up_path, hit, " (the file declares live)")
            )
        elif directives.compat == "offline":
            findings.append(_finding(hit.rule, "info", migration.up_path, hit))
        else:
            findings.append(
                _finding(
                    hit.rule,
                    "warning",
                    migration.up_path,
                    hit,
                    " (inferred offline; declare `-- compat: offline` to confirm)",
                )
            )
    findings.extend(_dialect_findings(migration))
    findings.extend(_one_query_findings(migration))
    if migration.down_path is not None and migration.down_sql is not None:
        for hit in analyse(migration.down_sql).hits:
            if hit.rule in ignored or hit.subject in up.created:
                continue  # undoing what the up file did is what a down file is for
            if hit.rule in BREAKING and verdict.compat == "offline":
                severity: Severity = "info"
                suffix = " (rolling back an offline migration)"
            else:
                severity = "warning"
                suffix = " (while rolling back)" if hit.rule in BREAKING else ""
            findings.append(_finding(hit.rule, severity, migration.down_path, hit, suffix))
    elif "missing-down" not in ignored:
        rule = RULES["missing-down"]
        findings.append(
            Finding(
                "missing-down",
                "warning",
                migration.up_path,
                None,
                f"version {migration.version} has no down file: {rule.why}",
                rule.fix,
            )
        )
    return tuple(findings)


def _dialect_findings(migration: Migration) -> list[Finding]:
    """One ``cockroach-dialect`` note per file written in CockroachDB's SQL."""
    if "cockroach-dialect" in migration.directives.lint_ignore:
        return []
    rule = RULES["cockroach-dialect"]
    return [
        Finding(
            rule.id,
            rule.severity,
            path,
            uses[0].line,
            f"CockroachDB-only SQL: {summary(uses)}: {rule.why}",
            rule.fix,
        )
        for path, uses in files_needing_cockroach(migration)
    ]


def lint_catalogue(catalogue: Catalogue, *, history: History | None = None) -> tuple[Finding, ...]:
    """File findings of every migration; with ``history``, missing down files name their CL."""
    origins = down_origins(history) if history is not None else {}
    findings: list[Finding] = []
    for migration in catalogue:
        for found in lint_migration(migration):
            origin = origins.get(migration.version)
            if found.rule == "missing-down" and origin is not None:
                what, version = origin
                found = with_cl(
                    found,
                    f"{found.message}; {what} by CL {version.cl} (commit {version.commit[:12]})",
                    version.cl,
                    version.commit,
                )
            findings.append(found)
    return tuple(findings)


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Findings grouped by file (history-wide ones first), then by line and rule."""
    return tuple(
        sorted(findings, key=lambda f: (f.file, f.line if f.line is not None else 0, f.rule))
    )
