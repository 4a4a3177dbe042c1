"""``rollsafe lint``: SQL rules on the work tree's migrations plus the history hazards.

Why: CI needs one command that fails when a migration would break a rolling
upgrade or when history was rewritten under deployed databases, and a
developer needs the same answer before committing.  The files are read from
the work tree (uncommitted edits count, as the last step of history), history
through `rollsafe.history`, release records through `rollsafe.history._releases`; the
judging is `rollsafe.lint`'s pure functions.

Exit codes: 0 clean (warnings allowed), `EXIT_CHECK_FAILED` on an error, or
on a warning with ``--strict``.  A malformed catalogue or unreadable history
is reported as an error finding rather than an exception, so one run shows
everything that is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from rollsafe import _git
from rollsafe.errors import EXIT_CHECK_FAILED, CatalogueError, HistoryError, ReleaseError
from rollsafe.history import History, ReleaseRecord, load_records, read_history
from rollsafe.lint import (
    RULES,
    Finding,
    LintReport,
    blob_id,
    compat_of,
    lint_catalogue,
    lint_history,
    render_github,
    render_sarif,
    sort_findings,
)
from rollsafe.migrate import Catalogue, load_catalogue, read_by_catalogue

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
    """Compute every finding and verdict without printing (what `lint` prints)."""
    findings: list[Finding] = []
    catalogue: Catalogue | None = None
    try:
        catalogue = load_catalogue(config.repo, config.migrations)
    except CatalogueError as exc:
        findings.append(
            Finding("bad-catalogue", "error", exc.file, exc.line, exc.what, exc.fix or "")
        )
    else:
        # Names golang-migrate skips, titles it does not compare: it runs the folder anyway.
        findings.extend(
            Finding("bad-catalogue", "warning", w.file, None, w.what, w.fix)
            for w in catalogue.warnings
        )
    past: History | None = None
    records: tuple[ReleaseRecord, ...] = ()
    if history:
        progress = _progress()
        try:
            past = read_history(config, progress=progress)
            records = load_records(config, past)
        except (HistoryError, ReleaseError) as exc:
            fix = f"{exc.fix}, or pass --no-history" if exc.fix else RULES["history-unreadable"].fix
            findings.append(
                Finding("history-unreadable", "error", exc.where or "", None, exc.what, fix)
            )
            past = None
        finally:
            if progress is not None:
                print("\r\033[K", end="", file=sys.stderr, flush=True)  # clear the counter
    if catalogue is not None:
        findings.extend(lint_catalogue(catalogue, history=past))
    if past is not None:
        current, texts = _work_tree(config, past)
        findings.extend(
            lint_history(
                past,
                records,
                catalogue=catalogue,
                current=current,
                read_texts=_reader(config.repo, texts),
            )
        )
    verdicts = {m.version: compat_of(m) for m in catalogue} if catalogue is not None else {}
    return LintReport(sort_findings(findings), verdicts)


def _progress() -> Callable[[int], None] | None:
    """Count commits on a terminal's stderr; nothing when output goes to a log."""
    if not sys.stderr.isatty():
        return None

    def show(commits: int) -> None:
        print(f"\rreading history: {commits} commits", end="", file=sys.stderr, flush=True)

    return show


def _work_tree(config: Config, past: History) -> tuple[dict[str, str], dict[str, str]]:
    """Blob ids (and texts by blob id) of the work tree's migration files.

    Ids are computed like git's; a file whose only difference from the newest
    version is CRLF line ends (git's autocrlf) keeps that version's id.
    """
    folder = "" if past.folder in ("", ".") else past.folder
    tip = past.versions[-1].migrations if past.versions else {}
    like = next(iter(tip.values()), None)
    root = config.repo / folder if folder else config.repo
    current: dict[str, str] = {}
    texts: dict[str, str] = {}
    if not root.is_dir():
        return current, texts
    for entry in sorted(root.iterdir()):
        if not read_by_catalogue(entry.name) or not entry.is_file():
            continue
        path = f"{folder}/{entry.name}" if folder else entry.name
        data = _read_bytes(entry)
        blob = blob_id(data, like=like)
        if path in tip and tip[path] != blob and b"\r\n" in data:
            normal = blob_id(data.replace(b"\r\n", b"\n"), like=like)
            blob = tip[path] if normal == tip[path] else blob
        current[path] = blob
        texts[blob] = data.decode("utf-8", errors="replace")
    return current, texts


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CatalogueError(
            f"cannot read: {exc.strerror}", file=str(path), fix="check the file's permissions"
        ) from exc


def _reader(repo: Path, texts: Mapping[str, str]) -> Callable[[Collection[str]], Mapping[str, str]]:
    """Texts of blob ids: the work tree's first, the rest from git in one batch."""

    def read(ids: Collection[str]) -> Mapping[str, str]:
        found = {blob: texts[blob] for blob in ids if blob in texts}
        missing = [blob for blob in ids if blob not in found]
        for blob, data in _git.read_blobs(repo, missing).items():
            found[blob] = data.decode("utf-8", errors="replace")
        return found

    return read


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
