"""What the upgrade pair test talks about: pairs, steps, findings, results (no I/O).

Why a module of its own: the pairs of a history and the vocabulary of their
results are plain data, used by the runner (`rollsafe.pairs`), by the
commands that list, select and report pairs, and by the nox sessions that
name one session per pair.  Listing pairs (``nox -l``) must not pay for the
database stack, so nothing here imports psycopg or pglast.

A pair is two adjacent rows of the release table (p -> n); its result is the
seven steps of DESIGN.md, each passed, failed, skipped, not applicable or not
run, with `PairFinding`s that say what went wrong, where, with which statement,
and what to do.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from rollsafe.errors import ConfigError, MigrationFailed, RollsafeError

if TYPE_CHECKING:
    from rollsafe.pairs._fixtures import FixtureFailure
    from rollsafe.pairs._queries import QueryFailure
    from rollsafe.table import Row

Compat = Literal["live", "offline"]
RollbackMode = Literal["live", "offline", "restore"]
Isolation = Literal["chain", "clone"]
#: ``noted``: the step found something that does not fail the pair (the rollback check
#: disproving a rollback nobody declared live).
StepStatus = Literal["passed", "failed", "noted", "skipped", "not applicable", "not run"]
PairStatus = Literal["passed", "failed", "incomplete"]
FindingKind = Literal[
    "cannot-reach",
    "up-fails-on-data",
    "old-write-fails",
    "old-query-fails",
    "check-fails",
    "down-fails",
    "down-leaves-trace",
    "down-loses-rows",
    "old-data-unreadable",
    "up-again-fails",
    "up-again-differs",
    "new-query-fails-on-old",
    "fixture-fails",
]

#: The rollback check's number: the design's seven steps keep theirs, and it runs between
#: 6 and 7 (`STEPS` lists the steps in the order they run).
ROLLBACK_CHECK = 8

#: The seven steps of DESIGN.md and the rollback check, by number, in the order they run.
STEPS: dict[int, str] = {
    1: "reach the old schema",
    2: "snapshot the schema",
    3: "migrate up",
    4: "old code on the new schema",
    5: "new code reads old data",
    6: "migrate down",
    ROLLBACK_CHECK: "rollback check: new code on the old schema",
    7: "migrate up again",
}

#: What to do, per finding kind: the ``fix`` a failure prints.
FIXES: dict[FindingKind, str] = {
    "cannot-reach": "fix the earlier failure named here; this pair cannot be tested until then",
    "up-fails-on-data": (
        "make the migration work on existing rows (the seed fixtures show what production "
        "holds), then run again"
    ),
    "old-write-fails": (
        "old code keeps writing this during a rolling upgrade: accept it in the new schema "
        "(a DEFAULT for a new NOT NULL column, keep old columns until no code writes them), "
        "or declare the migration `-- compat: offline`"
    ),
    "old-query-fails": (
        "old code runs this query during a rolling upgrade: keep what it uses (tables, "
        "columns, types) until no deployed code needs it, or declare the migration "
        "`-- compat: offline`"
    ),
    "check-fails": (
        "new code must read data written before the upgrade: backfill it in the migration, "
        "or make the new code (and its check) accept the old shape"
    ),
    "down-fails": (
        "fix the down file so that the engine runs it; in production a failing down leaves "
        "the database dirty in the middle of a rollback"
    ),
    "down-leaves-trace": (
        "make the down migration undo exactly what the up migration did (drop what it "
        "creates, restore what it changes)"
    ),
    "down-loses-rows": (
        "a rollback must keep the rows written before it: restore the data instead of "
        "recreating tables empty"
    ),
    "old-data-unreadable": (
        "after a rollback the old code must read its data again: restore the old shape of "
        "the data in the down migration"
    ),
    "up-again-fails": (
        "the down migration leaves something behind that the up migration trips over: "
        "remove it in the down migration"
    ),
    "up-again-differs": (
        "down and up again must give the schema of the first up: make the down migration "
        "undo everything the up migration did"
    ),
    "new-query-fails-on-old": (
        "the migration declares `-- rollback: live`, so new code must keep working once it is "
        "undone: keep new code off what the migration adds until a later release, or declare "
        "`-- rollback: offline`"
    ),
    "fixture-fails": (
        "a seed that cannot run on its own version's schema is a defect of the test suite, "
        "not of the migration: fix the fixture file named here"
    ),
}


#: Hints for a migration failing on data, by a phrase of PostgreSQL's message.
DATA_HINTS: tuple[tuple[str, str], ...] = (
    (
        "contains null values",
        "existing rows have no value for the new NOT NULL column: give it a DEFAULT, or add "
        "it nullable, backfill it, and set NOT NULL in a later migration",
    ),
    (
        "could not create unique index",
        "existing rows hold duplicates: merge or delete them in the migration before "
        "creating the unique index or constraint",
    ),
    (
        "violates foreign key constraint",
        "existing rows break the new foreign key: fix them first, or add the constraint "
        "NOT VALID and VALIDATE it in a later migration",
    ),
    (
        "is violated by some row",
        "existing rows break the new check: fix them first, or add the constraint NOT VALID "
        "and VALIDATE it in a later migration",
    ),
)


@dataclass(frozen=True)
class Pair:
    """Two adjacent rows of the table: the upgrade from schema ``previous`` to ``target``.

    ``old_migrations`` are the versions the older row introduced (its seeds
    are what old code writes); ``migrations`` the versions this upgrade
    applies.  ``old_commit`` is the newest CL of the older row: the code
    still running while a live upgrade rolls out, whose query files are
    tried on the new schema.
    """

    previous: int | None
    target: int
    upgrade: Compat
    migrations: tuple[int, ...]
    old_migrations: tuple[int, ...]
    old_cl: str
    old_commit: str
    new_cl: str
    #: The newest CL of the newer row: the code whose queries the rollback check prepares
    #: on schema p, and how the table says one goes back (``rollback_declared``: by a
    #: ``-- rollback:`` directive, so a disproval fails the pair).
    new_last_cl: str = ""
    new_commit: str = ""
    rollback: RollbackMode | None = None
    rollback_declared: bool = False

    @property
    def id(self) -> str:
        """``3->4``: what nox, JUnit and ``--pair`` call the pair."""
        return f"{version_text(self.previous)}->{self.target}"


def version_text(version: int | None) -> str:
    return "none" if version is None else str(version)


def pairs_from(rows: Sequence[Row]) -> tuple[Pair, ...]:
    """One pair per two adjacent rows whose schema goes up (pure).

    A row whose schema went down (its newest migration deleted) is no
    upgrade: it has no migrations to apply, so it makes no pair, and the
    next pair starts from its schema.
    """
    pairs: list[Pair] = []
    for older, newer in itertools.pairwise(rows):
        if newer.schema is None or not newer.migrations:
            continue
        if older.schema is not None and newer.schema <= older.schema:
            continue
        pairs.append(
            Pair(
                previous=older.schema,
                target=newer.schema,
                upgrade=newer.upgrade or "offline",
                migrations=tuple(newer.migrations),
                old_migrations=tuple(older.migrations),
                old_cl=older.last.cl,
                old_commit=older.last.commit,
                new_cl=newer.first.cl,
                new_last_cl=newer.last.cl,
                new_commit=newer.last.commit,
                rollback=newer.rollback,
                # A missing down file is certain, not declared: only a directive is.
                rollback_declared=newer.rollback in ("live", "offline")
                and not newer.rollback_inferred,
            )
        )
    return tuple(pairs)


def select_pairs(
    pairs: Sequence[Pair],
    *,
    pair: str | None = None,
    start: int | None = None,
    end: int | None = None,
) -> tuple[Pair, ...]:
    """The pairs a run reports: ``pair`` (``3->4`` or the target ``4``) and/or a version range.

    ``start``/``end`` keep the pairs whose whole upgrade lies within
    ``[start, end]`` (``--from 3 --to 6``: 3->4, 4->5, 5->6).  A selection that
    matches nothing is an error listing the pairs, so a typo in CI is loud.
    """
    chosen = list(pairs)
    if pair is not None:
        wanted = pair.strip().replace(" ", "")
        chosen = [p for p in chosen if wanted in (p.id, str(p.target))]
    if start is not None:
        chosen = [p for p in chosen if p.previous is not None and p.previous >= start]
    if end is not None:
        chosen = [p for p in chosen if p.target <= end]
    if not chosen:
        shown = ", ".join(p.id for p in pairs) or "none (fewer than two rows)"
        raise ConfigError(
            "no upgrade pair matches the selection",
            where=" ".join(
                part
                for part in (
                    f"--pair {pair}" if pair is not None else "",
                    f"--from {start}" if start is not None else "",
                    f"--to {end}" if end is not None else "",
                )
                if part
            )
            or "upgrade-pairs",
            fix=f"pairs: {shown}",
        )
    return tuple(chosen)


@dataclass(frozen=True)
class PairFinding:
    """One failure: what went wrong, where, the statement, the server's words and what to do."""

    kind: FindingKind
    summary: str
    fix: str
    where: str | None = None
    statement: str | None = None
    server: str | None = None
    details: str = ""


@dataclass(frozen=True)
class StepResult:
    """The outcome of one of the seven steps for one pair."""

    number: int
    status: StepStatus
    detail: str = ""
    findings: tuple[PairFinding, ...] = ()
    seconds: float = 0.0

    @property
    def title(self) -> str:
        return STEPS[self.number]


@dataclass(frozen=True)
class Generated:
    """The rows generated from the catalog for a pair: at its start state and replayed.

    ``skipped`` names each table that could not be filled, with the reason.
    """

    tables: int = 0
    rows: int = 0
    replayed_rows: int = 0
    skipped: tuple[str, ...] = ()

    def text(self) -> str:
        """``generated 9 rows in 3 tables (+9 replayed; 1 table skipped)`` for the summary line."""
        shown = f"generated {self.rows} row{'s' * (self.rows != 1)} in {self.tables} table" + (
            "s" * (self.tables != 1)
        )
        extra = [f"+{self.replayed_rows} replayed"] if self.replayed_rows else []
        if self.skipped:
            extra.append(
                f"{len(self.skipped)} skipped: "
                + ", ".join(s.split(":", 1)[0] for s in self.skipped)
            )
        return shown + (f" ({'; '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class PairResult:
    """All seven steps of one pair, and notes about the data it ran on.

    ``generated`` is None when generated seeds are off.
    """

    pair: Pair
    steps: tuple[StepResult, ...]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    generated: Generated | None = None

    @property
    def status(self) -> PairStatus:
        """``failed`` when a step failed; ``incomplete`` when one that applies was skipped."""
        if any(s.status == "failed" for s in self.steps):
            return "failed"
        if any(s.status == "skipped" for s in self.steps):
            return "incomplete"
        return "passed"

    @property
    def findings(self) -> tuple[PairFinding, ...]:
        return tuple(f for s in self.steps for f in s.findings)

    def step(self, number: int) -> StepResult:
        return next(s for s in self.steps if s.number == number)

    @property
    def rollback(self) -> RollbackMode | None:
        """How to go back from n to p, with this run's evidence.

        ``restore`` without a down file; ``offline`` when the rollback check
        found new code failing on schema p, or the table says so; ``live``
        when the table says live and the check did not disprove it.  None
        when the check did not run (a failure before it).
        """
        pair = self.pair
        if pair.rollback == "restore":
            return "restore"
        check = next((s for s in self.steps if s.number == ROLLBACK_CHECK), None)
        if check is None or check.status in ("not run", "skipped"):
            return None
        if check.findings:
            return "offline"
        return pair.rollback or "offline"


@dataclass(frozen=True)
class Counters:
    """What a run cost, in the units that matter for the O(N) claim."""

    migrations: int = 0  # migration files run (up and down)
    copies: int = 0  # database copies (snapshots and clones)
    rebuilds: int = 0  # states rebuilt from an empty database after a failure
    restores: int = 0  # chain states restored from the state cache


@dataclass(frozen=True)
class PairsRun:
    """The results of a run, in pair order, and what the run cost."""

    results: tuple[PairResult, ...]
    engine: str
    isolation: Isolation
    seconds: float
    counters: Counters = field(default_factory=Counters)

    @property
    def failed(self) -> tuple[PairResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def ok(self) -> bool:
        return not self.failed


# -- findings from the errors of the layers below --------------------------------------------------


def migration_finding(
    kind: FindingKind, summary: str, exc: RollsafeError, fix: str | None = None
) -> PairFinding:
    """A finding from a migrator error, keeping its file, line, statement and server message."""
    if isinstance(exc, MigrationFailed):
        hint = fix or FIXES[kind]
        if kind == "up-fails-on-data":
            for phrase, text in DATA_HINTS:
                if phrase in exc.server_message:
                    hint = text
                    break
        server = exc.server_message + (f" (hint: {exc.hint})" if exc.hint else "")
        where = f"{exc.file}:{exc.line}" if exc.line is not None else exc.file
        return PairFinding(
            kind=kind,
            summary=summary,
            fix=hint,
            where=where,
            statement=one_line(exc.statement),
            server=server,
        )
    return PairFinding(
        kind=kind, summary=summary, fix=fix or exc.fix or FIXES[kind], server=exc.what
    )


def fixture_finding(kind: FindingKind, summary: str, failure: FixtureFailure) -> PairFinding:
    """A finding from a seed or check that failed: its file, line, statement and message."""
    return PairFinding(
        kind=kind,
        summary=summary,
        fix=FIXES[kind],
        where=failure.where,
        statement=one_line(failure.statement),
        server=failure.message,
    )


def query_finding(failure: QueryFailure, pair: Pair) -> PairFinding:
    """A finding for an old query that no longer prepares, at the old code's CL."""
    query = failure.query
    return PairFinding(
        kind="old-query-fails",
        summary=(
            f"old code's query {query.name} (CL {pair.old_cl}) does not prepare on schema "
            f"{pair.target}"
        ),
        fix=FIXES["old-query-fails"],
        where=f"{query.file}:{failure.line} at CL {pair.old_cl}",
        statement=one_line(query.text),
        server=failure.error.text,
    )


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut at ``limit`` characters: a statement in a report."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def with_findings(
    steps: Sequence[StepResult], number: int, findings: Sequence[PairFinding]
) -> tuple[StepResult, ...]:
    """``steps`` with ``findings`` added to step ``number``, which then fails."""
    if not findings:
        return tuple(steps)
    return tuple(
        replace(step, status="failed", findings=(*step.findings, *findings))
        if step.number == number
        else step
        for step in steps
    )


class Recorder:
    """Collects step results in order and times each step."""

    def __init__(self) -> None:
        self.steps: list[StepResult] = []
        self._started = time.perf_counter()

    def add(
        self,
        number: int,
        status: StepStatus,
        detail: str = "",
        findings: Sequence[PairFinding] = (),
    ) -> StepResult:
        now = time.perf_counter()
        result = StepResult(number, status, detail, tuple(findings), now - self._started)
        self._started = now
        self.steps.append(result)
        return result

    def rest(self, status: StepStatus, detail: str) -> None:
        """Mark every later step, in run order (after a failure that stops the pair)."""
        order = list(STEPS)
        last = max((order.index(s.number) for s in self.steps), default=-1)
        self.steps.extend(StepResult(n, status, detail) for n in order[last + 1 :])
