"""The upgrade pair test: for each pair of adjacent rows p -> n, the seven steps of DESIGN.md.

Why: the release table says which upgrades are ``live`` and which are
``offline``, but only running them proves it.  For each pair the database
is brought to p the way production got there (every version migrated up and
seeded with what the code of that time wrote), then migrated to n on that
populated database, old code's writes and queries are tried on the new
schema (live steps), new code's checks read the old data, and the down
migration must restore p's schema and keep its rows, with up again as the
test for debris.

Every outcome is a `StepResult` with `Finding`s that say which pair, which
step, which statement and what to do; one pair failing never stops the
others.

Cost: a whole run is O(N) migration runs, and a pair's cost does not grow
with the schema: the schema is read only for the objects the pair's up and
down files name (`rollsafe.schema.Scope`; everything when the SQL cannot be
followed), and up again (step 7) is compared with the first up only when the
down left a trace, since the same files on a restored schema give the same
schema.  Two ways to reach p:

* ``chain`` (default): the pairs run one after another on one database that
  moves forward.  After pair p -> n the database is at n with p's data (and,
  for a live step, old code's writes at n, as in production), and n's seeds
  are loaded: that is state n for the next pair, with no copy at all.  Such
  a state has also been through the earlier pairs' down and up again, each
  checked to restore the schema and keep every row.  Any failure that
  leaves the database in doubt (a failed up, down or up again, a trace, a
  lost row) rebuilds state n from an empty database the production way, so
  one broken pair never contaminates the next.  Running one selected pair
  walks the earlier pairs the same way (without reporting them), so a
  pair's result never depends on the selection.
* ``clone``: the literal protocol of DESIGN.md.  A separate chain database
  follows the production path (up and seed, nothing else); each row state is
  frozen as an engine snapshot and each pair runs on a clone of it, so no
  experiment can ever touch another.  Two database copies per pair: on
  PostgreSQL about 50-100 ms each, which dominates when migrations take a
  millisecond (see bench/pairs.py).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import psycopg

from rollsafe import _db
from rollsafe.catalogue import Catalogue
from rollsafe.engines import Database, Server, Snapshot, unique_name
from rollsafe.errors import ConfigError, DatabaseError, MigrationFailed, RollsafeError
from rollsafe.fixtures import Fixture, FixtureFailure, check, seed
from rollsafe.migrator import Migrator
from rollsafe.queries import (
    Query,
    QueryFailure,
    parse_query_files,
    prepare_queries,
    referenced_relations,
)
from rollsafe.schema import (
    SchemaSnapshot,
    Scope,
    count_rows,
    diff_schemas,
    render_diff,
    scope_of,
    snapshot_schema,
)

if TYPE_CHECKING:
    from rollsafe.rows import Row

Compat = Literal["live", "offline"]
Isolation = Literal["chain", "clone"]
StepStatus = Literal["passed", "failed", "skipped", "not applicable", "not run"]
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
]

#: The seven steps of DESIGN.md, by number.
STEPS: dict[int, str] = {
    1: "reach the old schema",
    2: "snapshot the schema",
    3: "migrate up",
    4: "old code on the new schema",
    5: "new code reads old data",
    6: "migrate down",
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

    @property
    def id(self) -> str:
        """``3->4``: what nox, JUnit and ``--pair`` call the pair."""
        return f"{_version_text(self.previous)}->{self.target}"


def _version_text(version: int | None) -> str:
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
class Finding:
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
    findings: tuple[Finding, ...] = ()
    seconds: float = 0.0

    @property
    def title(self) -> str:
        return STEPS[self.number]


@dataclass(frozen=True)
class PairResult:
    """All seven steps of one pair, and notes about the data it ran on."""

    pair: Pair
    steps: tuple[StepResult, ...]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def status(self) -> PairStatus:
        """``failed`` when a step failed; ``incomplete`` when one that applies was skipped."""
        if any(s.status == "failed" for s in self.steps):
            return "failed"
        if any(s.status == "skipped" for s in self.steps):
            return "incomplete"
        return "passed"

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for s in self.steps for f in s.findings)

    def step(self, number: int) -> StepResult:
        return next(s for s in self.steps if s.number == number)


@dataclass(frozen=True)
class Counters:
    """What a run cost, in the units that matter for the O(N) claim."""

    migrations: int = 0  # migration files run (up and down)
    copies: int = 0  # database copies (snapshots and clones)
    rebuilds: int = 0  # states rebuilt from an empty database after a failure


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


# -- the seven steps ----------------------------------------------------------------------------


class _Recorder:
    """Collects step results in order and times each step."""

    def __init__(self) -> None:
        self.steps: list[StepResult] = []
        self._started = time.perf_counter()

    def add(
        self,
        number: int,
        status: StepStatus,
        detail: str = "",
        findings: Sequence[Finding] = (),
    ) -> StepResult:
        now = time.perf_counter()
        result = StepResult(number, status, detail, tuple(findings), now - self._started)
        self._started = now
        self.steps.append(result)
        return result

    def rest(self, status: StepStatus, detail: str) -> None:
        """Mark every later step (after a failure that stops the pair)."""
        last = max((s.number for s in self.steps), default=0)
        self.steps.extend(StepResult(n, status, detail) for n in STEPS if n > last)


def _migration_finding(
    kind: FindingKind, summary: str, exc: RollsafeError, fix: str | None = None
) -> Finding:
    """A finding from a migrator error, keeping its file, line, statement and server message."""
    if isinstance(exc, MigrationFailed):
        hint = fix or FIXES[kind]
        if kind == "up-fails-on-data":
            for phrase, text in DATA_HINTS:
                if phrase in exc.server_message:
                    hint = text
                    break
        server = exc.server_message + (f" (hint: {exc.hint})" if exc.hint else "")
        return Finding(
            kind=kind,
            summary=summary,
            fix=hint,
            where=_db_where(exc.file, exc.line),
            statement=_one_line(exc.statement),
            server=server,
        )
    return Finding(kind=kind, summary=summary, fix=fix or exc.fix or FIXES[kind], server=exc.what)


def _db_where(file: str, line: int | None) -> str:
    return f"{file}:{line}" if line is not None else file


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _fixture_finding(kind: FindingKind, summary: str, failure: FixtureFailure) -> Finding:
    return Finding(
        kind=kind,
        summary=summary,
        fix=FIXES[kind],
        where=failure.where,
        statement=_one_line(failure.statement),
        server=failure.message,
    )


def _query_finding(failure: QueryFailure, pair: Pair) -> Finding:
    query = failure.query
    return Finding(
        kind="old-query-fails",
        summary=(
            f"old code's query {query.name} (CL {pair.old_cl}) does not prepare on schema "
            f"{pair.target}"
        ),
        fix=FIXES["old-query-fails"],
        where=f"{query.file}:{failure.line} at CL {pair.old_cl}",
        statement=_one_line(query.text),
        server=failure.error.text,
    )


@dataclass
class _Data:
    """What the pair steps need besides the database: fixtures, old queries, names."""

    catalogue: Catalogue
    fixtures: Mapping[int, Fixture]
    old_queries: Callable[[Pair], Mapping[str, str]]
    table: str
    #: Function names of pg_catalog: calls to anything else may change the schema.
    builtins: frozenset[str] = frozenset()

    def scope(self, pair: Pair) -> Scope | None:
        """What the pair's up and down files can change (``None``: anything)."""
        texts: list[str] = []
        for version in pair.migrations:
            migration = self.catalogue.get(version)
            if migration is None:
                return None
            texts.append(migration.up_sql)
            if migration.down_sql is not None:
                texts.append(migration.down_sql)
        return scope_of(texts, builtins=self.builtins)


def _seed_versions(data: _Data, pair: Pair) -> list[Fixture]:
    """Old code's writes: the seeds of the versions the older row introduced.

    No fallback to an older seed: the code of the older row may write
    differently from the code before it, and replaying the wrong writes
    would blame the upgrade for a fixture gap.
    """
    return [
        data.fixtures[v]
        for v in pair.old_migrations
        if v in data.fixtures and data.fixtures[v].has_seed
    ]


def _check_fixture(data: _Data, versions: Sequence[int]) -> Fixture | None:
    """The newest check fixture among ``versions``: what the code of that row reads."""
    candidates = [data.fixtures[v] for v in versions if v in data.fixtures]
    candidates = [f for f in candidates if f.has_check]
    return max(candidates, key=lambda f: f.version) if candidates else None


class _Session:
    """The two connections a pair uses on one database: the migrator's and the data's."""

    def __init__(self, server: Server, db: Database, data: _Data) -> None:
        self.server = server
        self.db = db
        self.migrator = Migrator(db.dsn, data.catalogue, table=data.table)
        self.conn = _db.connect(_db.parse_target(db.dsn), application_name="rollsafe pairs")
        # Schema snapshots get a connection of their own: psycopg forgets every prepared
        # statement of a connection after a ROLLBACK, and checks and query preparation roll
        # back on purpose, so sharing one would re-plan the catalog queries at every step.
        self.catalog = _db.connect(_db.parse_target(db.dsn), application_name="rollsafe schema")
        self.data = data
        self.migrations = 0
        if not data.builtins:
            rows = self.conn.execute(
                "SELECT DISTINCT proname FROM pg_proc "
                "WHERE pronamespace = 'pg_catalog'::regnamespace"
            ).fetchall()
            data.builtins = frozenset(str(row[0]) for row in rows)

    def close(self) -> None:
        self.migrator.close()
        for conn in (self.conn, self.catalog):
            with suppress(Exception):
                conn.close()

    def schema(self, scope: Scope | None) -> SchemaSnapshot:
        return snapshot_schema(self.catalog, exclude_tables=(self.data.table,), scope=scope)

    def up_to(self, version: int) -> None:
        self.migrations += len(self.migrator.up_to(version))

    def down_to(self, version: int | None) -> None:
        self.migrations += len(self.migrator.down_to(version))


def _run_steps(
    session: _Session, pair: Pair, *, skip_seeds: frozenset[int] = frozenset()
) -> tuple[list[StepResult], bool]:
    """Steps 2-7 on a database at state p; the results and whether the database is still sound.

    "Sound" means: at n, with the schema of the first up and every row it
    had: fit to continue the chain.  Step 1 is the caller's.
    """
    data = session.data
    record = _Recorder()
    conn = session.conn

    # Step 2: what p looks like, so the down can be compared with it.  Only the objects the
    # pair's files name are read (when the SQL allows it), so the cost of a pair does not
    # grow with the schema.
    scope = data.scope(pair)
    before = session.schema(scope)
    rows_before = count_rows(conn, before.tables)
    shown = "the whole schema" if scope is None else "the objects the migrations name"
    record.add(
        2,
        "passed",
        f"{_plural(len(before.objects), 'object')} ({shown}), "
        f"{_plural(sum(rows_before.values()), 'row')}",
    )

    # Step 3: up to n, on the populated database, version by version, loading the seeds of
    # versions inside the row on the way (as the chain does).
    for version in pair.migrations:
        try:
            session.up_to(version)
        except RollsafeError as exc:
            record.add(
                3,
                "failed",
                findings=[
                    _migration_finding(
                        "up-fails-on-data",
                        f"migration {version} fails on the populated database",
                        exc,
                    )
                ],
            )
            record.rest("not run", "migrate up failed")
            return record.steps, False
        fixture = data.fixtures.get(version)
        inside = version != pair.target and version not in skip_seeds
        if inside and fixture is not None and fixture.has_seed:
            seed(conn, fixture)
    record.add(3, "passed", f"applied {', '.join(map(str, pair.migrations))}")

    # Step 4: old code on the new schema (live steps only).
    if pair.upgrade == "offline":
        record.add(
            4,
            "not applicable",
            "offline step: every component stops before the upgrade, so old code never "
            "meets the new schema",
        )
    else:
        findings: list[Finding] = []
        details: list[str] = []
        seeds = [f for f in _seed_versions(data, pair) if f.version not in skip_seeds]
        for fixture in seeds:
            failure = seed(conn, fixture)
            if failure is not None:
                findings.append(
                    _fixture_finding(
                        "old-write-fails",
                        f"old code's writes (seed of version {fixture.version}) fail on "
                        f"schema {pair.target}",
                        failure,
                    )
                )
        details.append(
            f"replayed seeds of {', '.join(str(f.version) for f in seeds)}"
            if seeds
            else f"no seed fixture for {_versions_text(pair.old_migrations)}: old writes untested"
        )
        try:
            queries = parse_query_files(data.old_queries(pair))
        except RollsafeError as exc:
            findings.append(
                Finding(
                    kind="old-query-fails",
                    summary=f"old code's query files (CL {pair.old_cl}) cannot be read",
                    fix=exc.fix or "fix the query file",
                    where=exc.where,
                    server=exc.what,
                )
            )
            queries = ()
        relevant = _affected(queries, scope, before)
        refused = prepare_queries(conn, relevant) if relevant else ()
        if refused:
            # A query that does not prepare on the old schema either is not this step's
            # doing: note it, do not fail the pair for it.
            broken_before = _prepare_at_previous(session, pair, [f.query for f in refused])
            for query_failure in refused:
                if query_failure.query.name in broken_before:
                    details.append(
                        f"query {query_failure.query.name} does not prepare on schema "
                        f"{_version_text(pair.previous)} either: not counted"
                    )
                else:
                    findings.append(_query_finding(query_failure, pair))
        skipped = len(queries) - len(relevant)
        details.append(
            f"prepared {len(relevant)} of {_plural(len(queries), 'query')} of CL {pair.old_cl}"
            + (f" ({skipped} use nothing this upgrade changes)" if skipped else "")
        )
        record.add(4, "failed" if findings else "passed", "; ".join(details), findings)

    # Step 5: new code reads old data.
    check_fixture = _check_fixture(data, pair.migrations)
    if check_fixture is None:
        record.add(5, "not applicable", f"no check fixture for versions {_versions(pair)}")
    else:
        failures_5 = check(conn, check_fixture)
        record.add(
            5,
            "failed" if failures_5 else "passed",
            f"ran checks of {check_fixture.version}",
            [
                _fixture_finding(
                    "check-fails",
                    f"new code's check (version {check_fixture.version}) fails on the data "
                    f"written before the upgrade",
                    failure,
                )
                for failure in failures_5
            ],
        )

    # Steps 6 and 7 need every down file.
    irreversible = [
        v for v in pair.migrations if (m := data.catalogue.get(v)) is not None and not m.reversible
    ]
    if irreversible:
        shown = ", ".join(map(str, irreversible))
        reason = (
            f"migration {shown} has no down file (irreversible): a rollback is impossible, so "
            f"down and up again are not tested"
        )
        record.add(6, "skipped", reason)
        record.add(7, "skipped", reason)
        return record.steps, True

    # Step 6: down to p.
    try:
        session.down_to(pair.previous)
    except RollsafeError as exc:
        record.add(
            6,
            "failed",
            findings=[
                _migration_finding(
                    "down-fails", f"the down migration cannot run on {_engine_of(session)}", exc
                )
            ],
        )
        record.rest("not run", "migrate down failed")
        return record.steps, False
    findings_6: list[Finding] = []
    after_down = session.schema(scope)
    changes = diff_schemas(before, after_down)
    if changes:
        findings_6.append(
            Finding(
                kind="down-leaves-trace",
                summary=(
                    f"down to {_version_text(pair.previous)} leaves the schema different from "
                    f"before the upgrade ({_plural(len(changes), 'difference')})"
                ),
                fix=FIXES["down-leaves-trace"],
                where=", ".join(_down_files(data.catalogue, pair)),
                details=render_diff(changes, expected="before the upgrade", actual="after down"),
            )
        )
    rows_after = count_rows(conn, [t for t in rows_before if t in set(after_down.tables)])
    lost = [
        f"{table}: {rows_before[table]} rows before the upgrade, "
        f"{rows_after.get(table, 0)} after down"
        for table in sorted(rows_before)
        if rows_after.get(table, rows_before[table]) < rows_before[table]
    ]
    if lost:
        findings_6.append(
            Finding(
                kind="down-loses-rows",
                summary="rows written before the upgrade are gone after down",
                fix=FIXES["down-loses-rows"],
                where=", ".join(_down_files(data.catalogue, pair)),
                details="\n".join(lost),
            )
        )
    old_check = _check_fixture(data, pair.old_migrations) if pair.previous is not None else None
    if old_check is not None and not changes:
        for failure in check(conn, old_check):
            findings_6.append(
                _fixture_finding(
                    "old-data-unreadable",
                    f"old code's check (version {old_check.version}) fails after down",
                    failure,
                )
            )
    record.add(
        6,
        "failed" if findings_6 else "passed",
        "schema equals the snapshot, rows kept"
        + (f", checks of {old_check.version} pass" if old_check is not None else ""),
        findings_6,
    )

    # Step 7: up again; a down that leaves debris shows here.
    try:
        session.up_to(pair.target)
    except RollsafeError as exc:
        record.add(
            7,
            "failed",
            findings=[
                _migration_finding("up-again-fails", "migrating up again after down fails", exc)
            ],
        )
        return record.steps, False
    if not changes:
        # The down restored every object the files can touch exactly, so the same files on
        # the same schema give the schema of the first up: reading it again would only cost
        # time.  After a down that left a trace, the schema is compared with the first up's,
        # rebuilt in a scratch database (rare, so the usual pair does not pay for it).
        record.add(7, "passed", "up again ran on the restored schema")
        return record.steps, not findings_6
    again = session.schema(scope)
    first_up = _first_up_schema(session, pair, scope)
    changes_7 = diff_schemas(first_up, again) if first_up is not None else ()
    if changes_7:
        record.add(
            7,
            "failed",
            findings=[
                Finding(
                    kind="up-again-differs",
                    summary="down and up again give a schema different from the first up",
                    fix=FIXES["up-again-differs"],
                    where=", ".join(_down_files(data.catalogue, pair)),
                    details=render_diff(
                        changes_7, expected="after the first up", actual="after down and up"
                    ),
                )
            ],
        )
        return record.steps, False
    record.add(7, "passed", "schema equals the first up")
    return record.steps, not findings_6


def _first_up_schema(session: _Session, pair: Pair, scope: Scope | None) -> SchemaSnapshot | None:
    """The schema the first up gave, rebuilt in a scratch database (schema only, no data)."""
    data = session.data
    scratch = session.server.create_database(unique_name("rollsafe_first_up"))
    try:
        with Migrator(scratch.dsn, data.catalogue, table=data.table) as migrator:
            migrator.up_to(pair.target)
        conn = _db.connect(_db.parse_target(scratch.dsn), application_name="rollsafe pairs")
        try:
            return snapshot_schema(conn, exclude_tables=(data.table,), scope=scope)
        finally:
            conn.close()
    except RollsafeError:
        return None
    finally:
        with suppress(RollsafeError):
            session.server.drop(scratch)


def _affected(
    queries: Sequence[Query],
    scope: Scope | None,
    before: SchemaSnapshot,
) -> list[Query]:
    """The queries that use a relation the upgrade can change (all, when that is unknown).

    A query that uses none of them prepares on the new schema exactly as it
    did on the old one, so preparing it again would only cost time.  Type and
    function changes can affect any query: then every query is prepared.
    """
    if scope is None or scope.types or scope.functions:
        return list(queries)
    names = {
        o.name.rsplit(".", 1)[-1]
        for o in before.objects
        if o.kind in ("table", "view", "materialized view", "sequence")
    } | scope.relation_names
    chosen: list[Query] = []
    for query in queries:
        used = referenced_relations(query.sql)
        if used is None or used & names:
            chosen.append(query)
    return chosen


def _plural(count: int, word: str) -> str:
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"


def _versions(pair: Pair) -> str:
    return _versions_text(pair.migrations)


def _versions_text(versions: Sequence[int]) -> str:
    return ", ".join(map(str, versions)) or "none"


def _down_files(catalogue: Catalogue, pair: Pair) -> list[str]:
    files = []
    for version in reversed(pair.migrations):
        migration = catalogue.get(version)
        if migration is not None and migration.down_path is not None:
            files.append(migration.down_path)
    return files


def _engine_of(session: _Session) -> str:
    return "CockroachDB" if session.migrator.flavor == "cockroach" else "PostgreSQL"


def _prepare_at_previous(session: _Session, pair: Pair, queries: Sequence[Query]) -> set[str]:
    """Names of ``queries`` that fail on the old schema too (prepared in a throwaway database).

    Only called when some query failed, so the usual run pays nothing for it.
    Preparing needs schema p; the pair's database has moved on, so an empty
    database is migrated to p (schema only, no data: PREPARE reads no rows).
    """
    wanted = list(queries)
    if pair.previous is None:
        return {q.name for q in wanted}
    server = session.server
    scratch = server.create_database(unique_name("rollsafe_prev"))
    try:
        with Migrator(scratch.dsn, session.data.catalogue, table=session.data.table) as migrator:
            migrator.up_to(pair.previous)
        conn = _db.connect(_db.parse_target(scratch.dsn), application_name="rollsafe pairs")
        try:
            return {f.query.name for f in prepare_queries(conn, wanted)}
        finally:
            conn.close()
    except RollsafeError:
        return set()
    finally:
        server.drop(scratch)


# -- reaching p ---------------------------------------------------------------------------------


class PairRunner:
    """Runs pairs in order on one server, keeping the state that makes the run O(N).

    Use as a context manager; `run` takes pairs in ascending order (a pair
    behind the chain rebuilds it from an empty database, which is correct but
    costs a replay).  ``old_queries`` returns the old code's query files
    (``path -> text``) for a pair, read from git at its older row's newest CL.
    """

    def __init__(
        self,
        server: Server,
        catalogue: Catalogue,
        pairs: Sequence[Pair],
        *,
        fixtures: Mapping[int, Fixture],
        old_queries: Callable[[Pair], Mapping[str, str]],
        migrations_table: str = "schema_migrations",
        isolation: Isolation = "chain",
    ) -> None:
        self.server = server
        self.pairs = tuple(pairs)
        self.isolation: Isolation = isolation
        self.data = _Data(catalogue, fixtures, old_queries, migrations_table)
        self._counters = Counters()
        self._db: Database | None = None
        self._session: _Session | None = None
        self._at: int | None = None  # the state the chain database is at
        self._position = 0  # pairs[:position] have run (chain isolation)
        self._notes: list[str] = []  # carried to every later pair
        self._without_data_before: int | None = None
        self._skip_seeds: set[int] = set()  # seeds that failed on their own schema
        self._dead: Finding | None = None
        self._snapshots: dict[int | None, Snapshot] = {}
        self._started = time.perf_counter()

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> PairRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop every database and snapshot this runner made."""
        self._close_session()
        if self._db is not None:
            with suppress(RollsafeError):
                self.server.drop(self._db)
            self._db = None
        for snapshot in self._snapshots.values():
            with suppress(RollsafeError):
                self.server.drop(snapshot)
        self._snapshots.clear()

    @property
    def counters(self) -> Counters:
        migrations = self._counters.migrations
        if self._session is not None:
            migrations += self._session.migrations
        return Counters(migrations, self._counters.copies, self._counters.rebuilds)

    def _count(self, *, migrations: int = 0, copies: int = 0, rebuilds: int = 0) -> None:
        c = self._counters
        self._counters = Counters(
            c.migrations + migrations, c.copies + copies, c.rebuilds + rebuilds
        )

    def _close_session(self) -> None:
        if self._session is not None:
            self._count(migrations=self._session.migrations)
            self._session.close()
            self._session = None

    def _open(self) -> _Session:
        assert self._db is not None
        if self._session is None:
            self._session = _Session(self.server, self._db, self.data)
        return self._session

    # -- the chain --------------------------------------------------------------------------------

    def _fresh(self) -> None:
        """Start the chain over from an empty database."""
        self._close_session()
        if self._db is not None:
            with suppress(RollsafeError):
                self.server.drop(self._db)
        self._db = self.server.create_database(unique_name("rollsafe_chain"))
        self._at = None

    def _seed_chain(self, version: int) -> None:
        """Load a version's seeds on the chain; a seed that fails on its own schema is noted."""
        fixture = self.data.fixtures.get(version)
        if fixture is None or not fixture.has_seed or version in self._skip_seeds:
            return
        if self._without_data_before is not None and version < self._without_data_before:
            return
        failure = seed(self._open().conn, fixture)
        if failure is not None:
            self._skip_seeds.add(version)
            self._notes.append(
                f"seed of version {version} fails on its own schema ({failure.sentence()}): "
                f"it is left out from here on"
            )

    def _advance(self, target: int | None, *, replay: Pair | None = None) -> None:
        """Move the chain from its state up to ``target`` the production way (up, seed)."""
        if self._dead is not None or target is None:
            return
        if self._db is None:
            self._fresh()
        assert self._db is not None
        if self._at is not None and self._at > target:
            self._fresh()
            self._count(rebuilds=1)
        versions = [
            v
            for v in self.data.catalogue.versions
            if (self._at is None or v > self._at) and v <= target
        ]
        for version in versions:
            session = self._open()
            try:
                session.up_to(version)
            except RollsafeError as exc:
                self._break(version, exc)
                if self._dead is not None:
                    return
                continue
            self._at = version
            if replay is not None and version == target:
                for fixture in _seed_versions(self.data, replay):
                    if fixture.version not in self._skip_seeds:
                        seed(session.conn, fixture)
            self._seed_chain(version)

    def _break(self, version: int, exc: RollsafeError) -> None:
        """The chain's data cannot pass ``version``: go on without the data seeded before it."""
        message = exc.what if not isinstance(exc, MigrationFailed) else exc.server_message
        self._fresh()
        self._count(rebuilds=1)
        session = self._open()
        try:
            session.up_to(version)
        except RollsafeError as again:
            self._dead = _migration_finding(
                "cannot-reach",
                f"migration {version} fails even on an empty database: no later state can be "
                f"reached",
                again,
                fix=f"fix migration {version}; every later pair waits for it",
            )
            return
        self._at = version
        self._without_data_before = version
        self._notes.append(
            f"migration {version} failed on the data seeded before it ({message}); "
            f"from here on the database holds only data seeded at {version} and later"
        )
        self._seed_chain(version)

    # -- running pairs ---------------------------------------------------------------------------

    def run(self, pair: Pair) -> PairResult:
        """Run one pair (and, with chain isolation, every earlier one it builds on)."""
        if self.isolation == "clone":
            return self._run_cloned(pair)
        index = self.pairs.index(pair)
        if index < self._position:
            # Going back: rebuild from an empty database and walk again.
            self._close_session()
            self._fresh()
            self._count(rebuilds=1)
            self._position = 0
            self._notes.clear()
            self._skip_seeds.clear()
            self._without_data_before = None
            self._dead = None
        result: PairResult | None = None
        while self._position <= index:
            current = self.pairs[self._position]
            result = self._run_in_chain(current)
            self._position += 1
        assert result is not None
        return result

    def _unreachable(self, pair: Pair, started: float) -> PairResult:
        assert self._dead is not None
        record = _Recorder()
        record.add(1, "failed", findings=[self._dead])
        record.rest("not run", "cannot reach the old schema")
        return PairResult(
            pair, tuple(record.steps), tuple(self._notes), time.perf_counter() - started
        )

    def _run_in_chain(self, pair: Pair) -> PairResult:
        started = time.perf_counter()
        if self._db is None:
            self._fresh()
        self._advance(pair.previous)
        if self._dead is not None:
            return self._unreachable(pair, started)
        notes = tuple(self._notes)
        reach = StepResult(
            1,
            "passed",
            f"database at {_version_text(pair.previous)} with its seeds",
            seconds=time.perf_counter() - started,
        )
        session = self._open()
        try:
            steps, sound = _run_steps(session, pair, skip_seeds=frozenset(self._skip_seeds))
        except (RollsafeError, psycopg.Error) as exc:
            steps, sound = _broken_run(_as_rollsafe(exc)), False
        if sound:
            self._at = pair.target
            self._seed_chain(pair.target)
        else:
            # The database is in doubt: rebuild state n the production way.
            self._rebuild(pair)
        return PairResult(pair, (reach, *steps), notes, time.perf_counter() - started)

    def _rebuild(self, pair: Pair) -> None:
        """State n from an empty database: up and seed every version, old writes at n."""
        self._fresh()
        self._count(rebuilds=1)
        self._advance(pair.target, replay=pair if pair.upgrade == "live" else None)

    def _run_cloned(self, pair: Pair) -> PairResult:
        started = time.perf_counter()
        snapshot = self._snapshots.get(pair.previous)
        if snapshot is None:
            self._advance(pair.previous)
            if self._dead is not None:
                return self._unreachable(pair, started)
            if self._db is None:
                self._fresh()
            assert self._db is not None
            self._close_session()  # a snapshot needs the source without sessions
            snapshot = self.server.snapshot(
                self._db, unique_name(f"rollsafe_state_{_version_text(pair.previous)}")
            )
            self._count(copies=1)
            self._snapshots[pair.previous] = snapshot
        notes = tuple(self._notes)
        clone = self.server.clone(snapshot, unique_name(f"rollsafe_pair_{pair.target}"))
        self._count(copies=1)
        reach = StepResult(
            1,
            "passed",
            f"cloned state {_version_text(pair.previous)}",
            seconds=time.perf_counter() - started,
        )
        session = _Session(self.server, clone, self.data)
        try:
            steps, _ = _run_steps(session, pair, skip_seeds=frozenset(self._skip_seeds))
        except (RollsafeError, psycopg.Error) as exc:
            steps = _broken_run(_as_rollsafe(exc))
        finally:
            self._count(migrations=session.migrations)
            session.close()
            with suppress(RollsafeError):
                self.server.drop(clone)
        return PairResult(pair, (reach, *steps), notes, time.perf_counter() - started)


def _as_rollsafe(exc: RollsafeError | psycopg.Error) -> RollsafeError:
    if isinstance(exc, RollsafeError):
        return exc
    return DatabaseError(f"{exc}", where="upgrade pair", fix="check the server's log")


def _broken_run(exc: RollsafeError) -> list[StepResult]:
    """Steps 2-7 when the database itself failed (lost connection, catalog not readable)."""
    record = _Recorder()
    record.add(
        2,
        "failed",
        findings=[
            Finding(
                kind="cannot-reach",
                summary="the database failed during the pair",
                fix=exc.fix or "check the server's log",
                where=exc.where,
                server=exc.what,
            )
        ],
    )
    record.rest("not run", "the database failed")
    return record.steps


def run_pairs(
    server: Server,
    catalogue: Catalogue,
    pairs: Sequence[Pair],
    *,
    fixtures: Mapping[int, Fixture],
    old_queries: Callable[[Pair], Mapping[str, str]],
    selected: Sequence[Pair] | None = None,
    migrations_table: str = "schema_migrations",
    isolation: Isolation = "chain",
    progress: Callable[[PairResult], None] | None = None,
) -> PairsRun:
    """Run ``selected`` pairs (default: all) of ``pairs``; one result per selected pair."""
    started = time.perf_counter()
    chosen = list(selected) if selected is not None else list(pairs)
    results: list[PairResult] = []
    with PairRunner(
        server,
        catalogue,
        pairs,
        fixtures=fixtures,
        old_queries=old_queries,
        migrations_table=migrations_table,
        isolation=isolation,
    ) as runner:
        for pair in chosen:
            result = runner.run(pair)
            results.append(result)
            if progress is not None:
                progress(result)
        counters = runner.counters
    return PairsRun(
        results=tuple(results),
        engine=server.kind,
        isolation=isolation,
        seconds=time.perf_counter() - started,
        counters=counters,
    )


__all__ = [
    "STEPS",
    "Counters",
    "Finding",
    "Pair",
    "PairResult",
    "PairRunner",
    "PairsRun",
    "StepResult",
    "pairs_from",
    "run_pairs",
    "select_pairs",
]
