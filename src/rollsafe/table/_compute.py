"""Everything the table commands derive from history: rows, catalogue, verdicts, records.

Why: ``release-table``, ``which``, ``upgrade-plan`` and the pair tests all
start from the same rows; `compute` reads history, the branch tip's
catalogue, the lint verdicts and the release records once and builds them.

The catalogue is read from the branch tip's tree through git, never from
the work tree, so the same commit gives the same table on every machine;
the verdicts, notes and down files of the cells come from each migration
as it last stood in history (`files_as_landed`), so a file deleted later
keeps its row's cells.  Release records are the exception, read from
the work tree, so that the commit adding a record can carry the table
regenerated with it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from rollsafe import _git
from rollsafe.config import Config
from rollsafe.history import (
    History,
    ReleaseRecord,
    cache_enabled,
    load_records,
    read_history,
    require_folder,
)
from rollsafe.lint import verdict_cache_file, verdicts_of
from rollsafe.migrate import Catalogue, catalogue_from_files, file_patterns, refuse_link
from rollsafe.table._cells import RollbackVerdict, Verdict
from rollsafe.table._rows import Row, files_as_landed, rows_from


@dataclass(frozen=True)
class Computed:
    """Everything the table commands derive from history, kept to rebuild rows cheaply."""

    history: History
    catalogue: Catalogue
    rows: tuple[Row, ...]
    records: tuple[ReleaseRecord, ...]
    compat: Mapping[int, Verdict]
    rollback: Mapping[int, RollbackVerdict]
    notes: Mapping[int, str]
    irreversible: frozenset[int]
    baseline: int | None

    @property
    def released(self) -> frozenset[str] | None:
        """The released CLs, or ``None`` when there are no records (every CL counts)."""
        return frozenset(r.cl for r in self.records) if self.records else None

    def rows_with(self, extra: Collection[str]) -> tuple[Row, ...]:
        """The rows as if ``extra`` CLs were released too (plans to a release candidate)."""
        released = self.released
        if released is None or set(extra) <= released:
            return self.rows
        return rows_from(
            self.history,
            self.compat,
            self.notes,
            baseline=self.baseline,
            released=released | set(extra),
            irreversible=self.irreversible,
            rollback=self.rollback,
        )


def compute(config: Config, *, progress: Callable[[int], None] | None = None) -> Computed:
    """Read history, the tip's catalogue, lint verdicts and release records; build the rows."""
    history = read_history(config, progress=progress)
    require_folder(config, history)
    files = _git.files_at(config.repo, history.tip, file_patterns(history.folder))
    for link in _git.links_at(config.repo, history.tip, history.folder):
        refuse_link(link)
    catalogue = catalogue_from_files(history.folder, files)
    # Cells come from every migration as it landed, deleted ones included.  Verdicts
    # are kept under .git/rollsafe: a warm `which` or `upgrade-plan` never loads
    # PostgreSQL's parser (see rollsafe.lint._verdicts).
    landed = catalogue_from_files(history.folder, _landed_files(config, history))
    kept_compat, kept_rollback = verdicts_of(landed, cache=_verdict_cache(config.repo))
    compat: dict[int, Verdict] = dict(kept_compat)
    rollback: dict[int, RollbackVerdict] = dict(kept_rollback)
    notes = {m.version: m.directives.note for m in landed if m.directives.note}
    irreversible = frozenset(m.version for m in landed if not m.reversible)
    records = load_records(config, history)
    released = frozenset(r.cl for r in records) if records else None
    rows = rows_from(
        history,
        compat,
        notes,
        baseline=config.baseline,
        released=released,
        irreversible=irreversible,
        rollback=rollback,
    )
    return Computed(
        history=history,
        catalogue=catalogue,
        rows=rows,
        records=records,
        compat=compat,
        rollback=rollback,
        notes=notes,
        irreversible=irreversible,
        baseline=config.baseline,
    )


def _landed_files(config: Config, history: History) -> dict[str, str]:
    """``path -> text`` of every migration as it last stood in history (`files_as_landed`)."""
    return _git.blob_texts(config.repo, files_as_landed(history), at="in history")


def _verdict_cache(repo: Path) -> Path | None:
    """The verdict file under the git common directory; None when caches are off."""
    if not cache_enabled():
        return None
    common = _git.common_dir(repo)
    return verdict_cache_file(common / "rollsafe") if common is not None else None


def compute_rows(
    config: Config, *, progress: Callable[[int], None] | None = None
) -> tuple[History, Catalogue, tuple[Row, ...]]:
    """History, the branch tip's catalogue and the table's rows (what the pair tests reuse)."""
    computed = compute(config, progress=progress)
    return computed.history, computed.catalogue, computed.rows
