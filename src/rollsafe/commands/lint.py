"""``rollsafe lint``: SQL rules on the work tree's migrations plus the history hazards.

Why: CI needs one command that fails when a migration would break a rolling
upgrade or when history was rewritten under deployed databases, and a
developer needs the same answer before committing.  The gathering and
judging is `rollsafe.lint.lint_repository`; this module shows a commit
counter on a terminal and formats the report (text, JSON, GitHub, SARIF).

Exit codes: 0 clean (warnings allowed), `EXIT_CHECK_FAILED` on an error, or
on a warning with ``--strict``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Literal, TextIO

from rollsafe.errors import EXIT_CHECK_FAILED
from rollsafe.lint import (
    LintReport,
    lint_repository,
    render_github,
    render_sarif,
)

if TYPE_CHECKING:
    from rollsafe.config import Config

Format = Literal["text", "json", "github", "sarif"]


def handle_lint(config: Config, args: argparse.Namespace) -> int:
    """``rollsafe lint`` (`rollsafe.commands._spec`): parsed flags in, an exit code out."""
    return lint(config, strict=args.strict, fmt=args.fmt, history=not args.no_history)


def lint(
    config: Config,
    *,
    strict: bool = False,
    fmt: Format = "text",
    out: TextIO | None = None,
    history: bool = True,
) -> int:
    """Lint the migrations of ``config``'s repository, print the findings, return the exit code."""
    stream = out if out is not None else sys.stdout
    report = lint_report(config, history=history)
    if fmt == "json":
        stream.write(render_json(report, config, strict=strict))
    elif fmt == "github":
        summary = summary_line(report, strict=strict)
        stream.write(render_github(report, folder=config.migrations, summary=summary))
    elif fmt == "sarif":
        stream.write(render_sarif(report, folder=config.migrations))
    else:
        stream.write(render_text(report, strict=strict))
    return EXIT_CHECK_FAILED if report.failed(strict=strict) else 0


def lint_report(config: Config, *, history: bool = True) -> LintReport:
    """Every finding and verdict (`lint_repository`), with a commit counter on a terminal."""
    progress = _progress() if history else None
    try:
        return lint_repository(config, history=history, progress=progress)
    finally:
        if progress is not None:
            print("\r\033[K", end="", file=sys.stderr, flush=True)  # clear the counter


def _progress() -> Callable[[int], None] | None:
    """Count commits on a terminal's stderr; nothing when output goes to a log."""
    if not sys.stderr.isatty():
        return None

    def show(commits: int) -> None:
        print(f"\rreading history: {commits} commits", end="", file=sys.stderr, flush=True)

    return show


def render_text(report: LintReport, *, strict: bool = False) -> str:
    """Findings grouped by file, then a summary line; fix hints for what can fail a run."""
    lines: list[str] = []
    current: str | None = None
    for found in report.findings:
        if found.file != current:
            current = found.file
            if lines:
                lines.append("")
            lines.append(found.file or "(repository)")
        where = f"{found.line}:" if found.line is not None else "-:"
        lines.append(f"  {where:<5} {found.severity:<7} {found.rule}  {found.message}")
        if found.severity in ("error", "warning"):
            lines.append(f"  {'':<5} {'':<7} fix: {found.fix}")
    if lines:
        lines.append("")
    lines.append(summary_line(report, strict=strict))
    return "\n".join(lines) + "\n"


def summary_line(report: LintReport, *, strict: bool = False) -> str:
    """``lint ok: 0 error(s), 1 warning(s), ...``: the verdict and the counts on one line."""
    verdicts = report.verdicts.values()
    offline = sum(1 for v in verdicts if v.compat == "offline")
    inferred = sum(1 for v in verdicts if v.inferred)
    summary = (
        f"{report.count('error')} error(s), {report.count('warning')} warning(s), "
        f"{report.count('info')} info; {len(report.verdicts)} migration(s): "
        f"{len(report.verdicts) - offline} live, {offline} offline ({inferred} inferred)"
    )
    verdict = "FAILED" if report.failed(strict=strict) else "ok"
    mode = " (strict)" if strict else ""
    return f"lint {verdict}{mode}: {summary}"


def render_json(report: LintReport, config: Config, *, strict: bool = False) -> str:
    """Findings, per-migration verdicts and the summary, for other tools."""
    document = {
        "ok": not report.failed(strict=strict),
        "strict": strict,
        "summary": {severity: report.count(severity) for severity in ("error", "warning", "info")},
        "migrations": [
            {
                "version": version,
                "compat": verdict.compat,
                "inferred": verdict.inferred,
                "reasons": list(verdict.reasons),
            }
            for version, verdict in sorted(report.verdicts.items())
        ],
        "findings": [asdict(found) for found in report.findings],
        "folder": config.migrations,
    }
    return json.dumps(document, indent=2) + "\n"
