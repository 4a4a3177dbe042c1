"""Lint a repository: the work tree's migrations, their history and the release records.

Why: ``rollsafe lint`` and CI need one function that gathers what the pure
rules judge (the catalogue as it is now, first-parent history, release
records, the work tree's blob ids for edits not yet committed); the command
only formats what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from rollsafe import _git
from rollsafe.config import Config
from rollsafe.errors import CatalogueError, HistoryError, ReleaseError
from rollsafe.history import History, ReleaseRecord, load_records, read_history
from rollsafe.lint._run import (
    RULES,
    Finding,
    LintReport,
    blob_id,
    compat_of,
    lint_catalogue,
    lint_history,
    sort_findings,
)
from rollsafe.migrate import Catalogue, load_catalogue, read_by_catalogue


def lint_repository(
    config: Config, *, history: bool = True, progress: Callable[[int], None] | None = None
) -> LintReport:
    """Every finding and verdict of a repository's migrations: work tree, history, records.

    The files are read from the work tree (uncommitted edits count, as the
    last step of history), history and release records from git.  A
    malformed catalogue or unreadable history is an error finding rather
    than an exception, so one run shows everything that is wrong.
    """
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
        try:
            past = read_history(config, progress=progress)
            records = load_records(config, past)
        except (HistoryError, ReleaseError) as exc:
            fix = f"{exc.fix}, or pass --no-history" if exc.fix else RULES["history-unreadable"].fix
            findings.append(
                Finding("history-unreadable", "error", exc.where or "", None, exc.what, fix)
            )
            past = None
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
