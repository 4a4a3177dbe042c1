"""Lint: SQL rules, history hazards and the live/offline verdict of every migration.

Why: most ways to break a rolling upgrade are visible in the DDL or in
history; reading them with PostgreSQL's own parser lets the table infer
``live`` or ``offline`` and lets CI refuse a migration declared ``live``
that is not.  Everything here is pure: data in, findings out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollsafe._lazy import lazy_names

if TYPE_CHECKING:
    from rollsafe.lint._dialect import DialectUse, cockroach_sql, files_needing_cockroach
    from rollsafe.lint._formats import render_github, render_sarif
    from rollsafe.lint._repository import lint_repository
    from rollsafe.lint._run import (
        BREAKING,
        RULES,
        SEVERITIES,
        Finding,
        LintReport,
        Rule,
        RuleKind,
        Severity,
        blob_id,
        compat_of,
        lint_catalogue,
        lint_history,
        lint_migration,
        rollback_of,
        sort_findings,
    )
    from rollsafe.lint._sqlparse import walk_nodes
    from rollsafe.lint._verdicts import (
        CompatVerdict,
        RollbackVerdict,
        verdict_cache_file,
        verdicts_of,
    )

__all__ = [
    "BREAKING",
    "RULES",
    "SEVERITIES",
    "CompatVerdict",
    "DialectUse",
    "Finding",
    "LintReport",
    "RollbackVerdict",
    "Rule",
    "RuleKind",
    "Severity",
    "blob_id",
    "cockroach_sql",
    "compat_of",
    "files_needing_cockroach",
    "lint_catalogue",
    "lint_history",
    "lint_migration",
    "lint_repository",
    "render_github",
    "render_sarif",
    "rollback_of",
    "sort_findings",
    "verdict_cache_file",
    "verdicts_of",
    "walk_nodes",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "BREAKING": "._run",
        "lint_repository": "._repository",
        "CompatVerdict": "._verdicts",
        "DialectUse": "._dialect",
        "Finding": "._run",
        "LintReport": "._run",
        "RULES": "._run",
        "RollbackVerdict": "._verdicts",
        "Rule": "._run",
        "RuleKind": "._run",
        "SEVERITIES": "._run",
        "Severity": "._run",
        "blob_id": "._run",
        "cockroach_sql": "._dialect",
        "files_needing_cockroach": "._dialect",
        "compat_of": "._run",
        "verdict_cache_file": "._verdicts",
        "verdicts_of": "._verdicts",
        "lint_catalogue": "._run",
        "lint_history": "._run",
        "lint_migration": "._run",
        "rollback_of": "._run",
        "sort_findings": "._run",
        "walk_nodes": "._sqlparse",
        "render_github": "._formats",
        "render_sarif": "._formats",
    },
)
