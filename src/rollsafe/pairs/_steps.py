"""The steps of one upgrade pair on a database at state p: steps 2 to 7 of DESIGN.md.

Why a module of its own: how a pair reaches state p (a chain of states, or a
clone of a snapshot) is the runner's business (`rollsafe.pairs`); what a
pair does once there is the same either way, and is what this module holds:
snapshot the schema, migrate up on the populated database, replay old code's
writes and prepare its queries (live steps), run new code's checks, migrate
down and compare, migrate up again.

Cost: a pair costs three migration runs and a handful of round trips besides.
The schema is read only for the objects the pair's files name
(`rollsafe.pairs._schema.Scope`), in one statement that also counts each table's
rows, on a connection kept for snapshots (`rollsafe.pairs._schema.SchemaReader`).
Seeds, checks and the old queries' ``PREPARE``s go out as one batch each
(`rollsafe.pairs._batch`), and are run one statement at a time only to report a
failure.  Up again (step 7) is compared with the first up only when the down
left a trace, since the same files on a restored schema give the same schema.
Rows generated from the catalog (`rollsafe.pairs._seeding`) add, per pair, one
batch for their replay as old code's writes and one for p's checks before the
upgrade (generated rows need not meet a check of the code's own rules).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

import psycopg

from rollsafe import _db
from rollsafe.engines import Database, Server, unique_name
from rollsafe.errors import DatabaseError, RollsafeError
from rollsafe.migrate import Catalogue, Migrator
from rollsafe.pairs._codecheck import affected_queries as _affected
from rollsafe.pairs._codecheck import new_code_on_target, rollback_check
from rollsafe.pairs._codecheck import plural as _plural
from rollsafe.pairs._codecheck import versions_text as _versions_text
from rollsafe.pairs._fixtures import Fixture, check, seed
from rollsafe.pairs._model import (
    FIXES,
    ROLLBACK_CHECK,
    Pair,
    PairFinding,
    Recorder,
    StepResult,
    fixture_finding,
    migration_finding,
    query_finding,
    version_text,
)
from rollsafe.pairs._queries import Query, parse_query_files, prepare_queries
from rollsafe.pairs._schema import (
    SchemaReader,
    SchemaSnapshot,
    Scope,
    diff_schemas,
    render_diff,
    scope_of,
    snapshot_schema,
)
from rollsafe.pairs._seeding import GeneratedSeeds


@dataclass
class StepData:
    """What the pair steps need besides the database: fixtures, old queries, names."""

    catalogue: Catalogue
    fixtures: Mapping[int, Fixture]
    old_queries: Callable[[Pair], Mapping[str, str]]
    table: str
    #: Function names of pg_catalog: calls to anything else may change the schema.
    builtins: frozenset[str] = frozenset()
    #: The query files of the newer row's newest CL (``path -> text``), for the rollback check.
    new_queries: Callable[[Pair], Mapping[str, str]] | None = None
    #: Rows generated from the catalog at each state (None: generated seeds are off).
    seeds: GeneratedSeeds | None = None
    _scopes: dict[str, Scope | None] = field(default_factory=dict, init=False, repr=False)

    def fill_relations(self, version: int, upgrade: Pair | None = None) -> list[str] | None:
        """The tables generated rows go into at ``version`` (``None``: every table)."""
        assert self.seeds is not None
        migration = self.catalogue.get(version)
        up = migration.up_sql if migration is not None else None
        upgrade_scope = self.scope(upgrade) if upgrade is not None else Scope()
        return self.seeds.relations_at(version, up, upgrade_scope, builtins=self.builtins)

    def scope(self, pair: Pair) -> Scope | None:
        """What the pair's up and down files can change (``None``: anything); once a pair."""
        if pair.id in self._scopes:
            return self._scopes[pair.id]
        texts: list[str] = []
        for version in pair.migrations:
            migration = self.catalogue.get(version)
            if migration is None:
                return None
            texts.append(migration.up_sql)
            if migration.down_sql is not None:
                texts.append(migration.down_sql)
        found = self._scopes[pair.id] = scope_of(texts, builtins=self.builtins)
        return found


def seed_versions(data: StepData, pair: Pair) -> list[Fixture]:
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


def _check_fixture(data: StepData, versions: Sequence[int]) -> Fixture | None:
    """The newest check fixture among ``versions``: what the code of that row reads."""
    candidates = [data.fixtures[v] for v in versions if v in data.fixtures]
    candidates = [f for f in candidates if f.has_check]
    return max(candidates, key=lambda f: f.version) if candidates else None


class StepSession:
    """The three connections a pair uses on one database: migrator, data, schema snapshots.

    Snapshots get a connection of their own (`SchemaReader`): its session
    keeps the setting their prepared statement needs, and psycopg forgets
    every prepared statement of a connection after a ROLLBACK, which the data
    connection sends whenever a check or seed fails.
    """

    def __init__(self, server: Server, db: Database, data: StepData) -> None:
        self.server = server
        self.db = db
        self.data = data
        self.migrations = 0
        self.migrator = Migrator(db.dsn, data.catalogue, table=data.table)
        target = _db.parse_target(db.dsn)
        self._target = target
        opened: list[psycopg.Connection[tuple[object, ...]]] = []
        try:
            self._conn = _db.connect(target, application_name="rollsafe pairs")
            opened.append(self._conn)
            catalog = _db.connect(target, application_name="rollsafe schema")
            opened.append(catalog)
            self.reader = SchemaReader(catalog, exclude_tables=(data.table,))
            if not data.builtins:
                rows = self.conn.execute(
                    "SELECT DISTINCT proname FROM pg_proc "
                    "WHERE pronamespace = 'pg_catalog'::regnamespace"
                ).fetchall()
                data.builtins = frozenset(str(row[0]) for row in rows)
        except (RollsafeError, psycopg.Error):
            for conn in opened:
                conn.close()
            raise

    @property
    def conn(self) -> psycopg.Connection[tuple[object, ...]]:
        """The data connection; opened again when a ``fixture.py`` closed it."""
        if self._conn.closed:
            self._conn = _db.connect(self._target, application_name="rollsafe pairs")
        return self._conn

    def close(self) -> None:
        self.migrator.close()
        for conn in (self._conn, self.reader.conn):
            with suppress(Exception):
                conn.close()

    def schema(self, scope: Scope | None, *, rows: bool = True) -> SchemaSnapshot:
        return self.reader.snapshot(scope, rows=rows)

    def up_to(self, version: int) -> None:
        self.migrations += len(self.migrator.up_to(version))

    def down_to(self, version: int | None) -> None:
        self.migrations += len(self.migrator.down_to(version))

    @property
    def engine(self) -> str:
        return "CockroachDB" if self.migrator.flavor == "cockroach" else "PostgreSQL"


def run_steps(
    session: StepSession, pair: Pair, *, skip_seeds: frozenset[int] = frozenset()
) -> tuple[list[StepResult], bool]:
    """Steps 2-7 on a database at state p; the results and whether the database is still sound.

    "Sound" means: at n, with the schema of the first up and every row it
    had: fit to continue the chain.  Step 1 is the caller's.
    """
    data = session.data
    record = Recorder()

    # Step 2: what p looks like, so the down can be compared with it.  Only the objects the
    # pair's files name are read (when the SQL allows it), so the cost of a pair does not
    # grow with the schema; the same statement counts their rows.
    scope = data.scope(pair)
    before = session.schema(scope)
    shown = "the whole schema" if scope is None else "the objects the migrations name"
    record.add(
        2,
        "passed",
        f"{_plural(len(before.objects), 'object')} ({shown}), "
        f"{_plural(sum(before.rows.values()), 'row')}",
    )
    broken_before = _old_check_fails_before(session, pair)
    if not _step_3(session, pair, record, skip_seeds):
        return record.steps, False
    _step_4(session, pair, record, scope, before, skip_seeds)
    _step_5(session, pair, record)

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
        record.add(ROLLBACK_CHECK, "skipped", reason)
        record.add(7, "skipped", reason)
        return record.steps, True
    new_code = new_code_on_target(session, pair, scope, before)  # at n, for the rollback check
    restored = _step_6(session, pair, record, scope, before, broken_before)
    if restored is None:
        return record.steps, False
    rollback_check(session, pair, record, new_code)
    return record.steps, _step_7(session, pair, record, scope, restored)


def _old_check_fails_before(session: StepSession, pair: Pair) -> bool:
    """Whether p's checks already fail at p, before the upgrade (only with generated rows).

    Hand-written seeds are written to meet the code's checks; generated rows
    meet only what the schema enforces, so a check of an application rule
    (every machine has a provider row) can fail on them at p already.  Only a
    check that returned false counts: an error is the fixture's own.  One batch
    per pair, and only when rows are generated and p has a check.
    """
    data = session.data
    if data.seeds is None or pair.previous is None:
        return False
    old_check = _check_fixture(data, pair.old_migrations)
    failures = check(session.conn, old_check) if old_check is not None else ()
    return any(f.message.startswith("returned") for f in failures)


def _step_3(session: StepSession, pair: Pair, record: Recorder, skip_seeds: frozenset[int]) -> bool:
    """Up to n on the populated database, version by version, seeding versions inside the row.

    The seeds of versions inside the row are loaded on the way, as the chain
    does; the target's own seeds are the runner's (they make state n).
    """
    for version in pair.migrations:
        try:
            session.up_to(version)
        except RollsafeError as exc:
            summary = f"migration {version} fails on the populated database"
            finding = migration_finding("up-fails-on-data", summary, exc)
            seeds = session.data.seeds
            if seeds is not None:
                finding = seeds.with_example(pair, finding)
            record.add(3, "failed", findings=[finding])
            record.rest("not run", "migrate up failed")
            return False
        fixture = session.data.fixtures.get(version)
        inside = version != pair.target and version not in skip_seeds
        if inside and fixture is not None and fixture.has_seed:
            seed(session.conn, fixture)
        seeds = session.data.seeds
        if version != pair.target and seeds is not None:
            relations = session.data.fill_relations(version)
            seeds.fill(session.conn, version, relations, catalog=session.reader.conn)
    record.add(3, "passed", f"applied {', '.join(map(str, pair.migrations))}")
    return True


def _step_4(
    session: StepSession,
    pair: Pair,
    record: Recorder,
    scope: Scope | None,
    before: SchemaSnapshot,
    skip_seeds: frozenset[int],
) -> None:
    """Old code on the new schema (live steps only): its writes replayed, its queries prepared."""
    if pair.upgrade == "offline":
        record.add(
            4,
            "not applicable",
            "offline step: every component stops before the upgrade, so old code never "
            "meets the new schema",
        )
        return
    data, conn = session.data, session.conn
    findings: list[PairFinding] = []
    details: list[str] = []
    seeds = [f for f in seed_versions(data, pair) if f.version not in skip_seeds]
    for fixture in seeds:
        failure = seed(conn, fixture)
        if failure is not None:
            findings.append(
                fixture_finding(
                    "old-write-fails",
                    f"old code's writes (seed of version {fixture.version}) fail on "
                    f"schema {pair.target}",
                    failure,
                )
            )
    generated = ""
    if data.seeds is not None:  # p's generated rows, into the tables the upgrade names
        only = None if scope is None else scope.relation_names
        generated, refused_rows = data.seeds.replay_pair(conn, pair, only)
        findings.extend(refused_rows)
    details.append(
        f"replayed seeds of {', '.join(str(f.version) for f in seeds)}"
        if seeds
        else f"no seed fixture for {_versions_text(pair.old_migrations)}"
        + ("" if generated else ": old writes untested")
    )
    if generated:
        details.append(generated)
    try:
        queries = parse_query_files(data.old_queries(pair))
    except RollsafeError as exc:
        findings.append(
            PairFinding(
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
                    f"{version_text(pair.previous)} either: not counted"
                )
            else:
                findings.append(query_finding(query_failure, pair))
    skipped = len(queries) - len(relevant)
    details.append(
        f"prepared {len(relevant)} of {_plural(len(queries), 'query')} of CL {pair.old_cl}"
        + (f" ({skipped} use nothing this upgrade changes)" if skipped else "")
    )
    record.add(4, "failed" if findings else "passed", "; ".join(details), findings)


def _step_5(session: StepSession, pair: Pair, record: Recorder) -> None:
    """New code reads old data: the newest check fixture of the versions applied."""
    check_fixture = _check_fixture(session.data, pair.migrations)
    if check_fixture is None:
        versions = _versions_text(pair.migrations)
        record.add(5, "not applicable", f"no check fixture for versions {versions}")
        return
    failures = check(session.conn, check_fixture)
    record.add(
        5,
        "failed" if failures else "passed",
        f"ran checks of {check_fixture.version}",
        [
            fixture_finding(
                "check-fails",
                f"new code's check (version {check_fixture.version}) fails on the data "
                f"written before the upgrade",
                failure,
            )
            for failure in failures
        ],
    )


def _step_6(
    session: StepSession,
    pair: Pair,
    record: Recorder,
    scope: Scope | None,
    before: SchemaSnapshot,
    broken_before: bool = False,
) -> tuple[bool, bool] | None:
    """Down to p: the schema must equal step 2's snapshot, with every row, readable.

    None when the down itself failed; otherwise (schema restored, no finding).
    ``broken_before``: p's checks failed before the upgrade already (on rows
    generated from the catalog, which need not meet the code's own rules), so
    their failing after down says nothing about the down.
    """
    data = session.data
    try:
        session.down_to(pair.previous)
    except RollsafeError as exc:
        summary = f"the down migration cannot run on {session.engine}"
        record.add(6, "failed", findings=[migration_finding("down-fails", summary, exc)])
        record.rest("not run", "migrate down failed")
        return None
    findings: list[PairFinding] = []
    after_down = session.schema(scope)
    changes = diff_schemas(before, after_down)
    if changes:
        findings.append(
            PairFinding(
                kind="down-leaves-trace",
                summary=(
                    f"down to {version_text(pair.previous)} leaves the schema different from "
                    f"before the upgrade ({_plural(len(changes), 'difference')})"
                ),
                fix=FIXES["down-leaves-trace"],
                where=", ".join(_down_files(data.catalogue, pair)),
                details=render_diff(changes, expected="before the upgrade", actual="after down"),
            )
        )
    rows_before, rows_after = before.rows, after_down.rows
    lost = [
        f"{table}: {_plural(rows_before[table], 'row')} before the upgrade, "
        f"{rows_after.get(table, 0)} after down"
        for table in sorted(rows_before)
        if rows_after.get(table, rows_before[table]) < rows_before[table]
    ]
    if lost:
        findings.append(
            PairFinding(
                kind="down-loses-rows",
                summary="rows written before the upgrade are gone after down",
                fix=FIXES["down-loses-rows"],
                where=", ".join(_down_files(data.catalogue, pair)),
                details="\n".join(lost),
            )
        )
    old_check = _check_fixture(data, pair.old_migrations) if pair.previous is not None else None
    if old_check is not None and broken_before:
        record_note = f"checks of {old_check.version} fail before the upgrade too: not counted"
        old_check = None
    else:
        record_note = ""
    if old_check is not None and not changes:
        for failure in check(session.conn, old_check):
            findings.append(
                fixture_finding(
                    "old-data-unreadable",
                    f"old code's check (version {old_check.version}) fails after down",
                    failure,
                )
            )
    record.add(
        6,
        "failed" if findings else "passed",
        "schema equals the snapshot, rows kept"
        + (f", checks of {old_check.version} pass" if old_check is not None else "")
        + (f"; {record_note}" if record_note else ""),
        findings,
    )
    return not changes, not findings


def _step_7(
    session: StepSession,
    pair: Pair,
    record: Recorder,
    scope: Scope | None,
    restored: tuple[bool, bool],
) -> bool:
    """Up to n again: a down that leaves debris shows here.  Whether the database is sound."""
    schema_restored, down_clean = restored
    try:
        session.up_to(pair.target)
    except RollsafeError as exc:
        summary = "migrating up again after down fails"
        record.add(7, "failed", findings=[migration_finding("up-again-fails", summary, exc)])
        return False
    if schema_restored:
        # The down restored every object the files can touch exactly, so the same files on
        # the same schema give the schema of the first up: reading it again would only cost
        # time.  After a down that left a trace, the schema is compared with the first up's,
        # rebuilt in a scratch database (rare, so the usual pair does not pay for it).
        record.add(7, "passed", "up again ran on the restored schema")
        return down_clean
    again = session.schema(scope, rows=False)
    first_up = _first_up_schema(session, pair, scope)
    changes = diff_schemas(first_up, again) if first_up is not None else ()
    if changes:
        record.add(
            7,
            "failed",
            findings=[
                PairFinding(
                    kind="up-again-differs",
                    summary="down and up again give a schema different from the first up",
                    fix=FIXES["up-again-differs"],
                    where=", ".join(_down_files(session.data.catalogue, pair)),
                    details=render_diff(
                        changes, expected="after the first up", actual="after down and up"
                    ),
                )
            ],
        )
        return False
    record.add(7, "passed", "schema equals the first up")
    return down_clean


def _first_up_schema(
    session: StepSession, pair: Pair, scope: Scope | None
) -> SchemaSnapshot | None:
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


def _prepare_at_previous(session: StepSession, pair: Pair, queries: Sequence[Query]) -> set[str]:
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


def _down_files(catalogue: Catalogue, pair: Pair) -> list[str]:
    files = []
    for version in reversed(pair.migrations):
        migration = catalogue.get(version)
        if migration is not None and migration.down_path is not None:
            files.append(migration.down_path)
    return files


def as_rollsafe(exc: RollsafeError | psycopg.Error) -> RollsafeError:
    """A database failure during a pair as a `RollsafeError` (psycopg's kept as the message)."""
    if isinstance(exc, RollsafeError):
        return exc
    return DatabaseError(f"{exc}", where="upgrade pair", fix="check the server's log")


def broken_run(exc: RollsafeError) -> list[StepResult]:
    """Steps 2-7 when the database itself failed (lost connection, catalog not readable)."""
    record = Recorder()
    record.add(
        2,
        "failed",
        findings=[
            PairFinding(
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
