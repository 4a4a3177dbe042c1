"""The upgrade pair test: for each pair of adjacent rows p -> n, the seven steps of DESIGN.md.

Why: the release table says which upgrades are ``live`` and which are
``offline``, but only running them proves it.  For each pair the database
is brought to p the way production got there (every version migrated up and
seeded with what the code of that time wrote), then migrated to n on that
populated database, old code's writes and queries are tried on the new
schema (live steps), new code's checks read the old data, and the down
migration must restore p's schema and keep its rows, with up again as the
test for debris.

Every outcome is a `StepResult` with `PairFinding`s that say which pair, which
step, which statement and what to do; one pair failing never stops the
others.

This module is the public face of the pair test and its runner: how a pair
reaches state p, and what a run costs.  The pairs and the vocabulary of
their results live in `rollsafe.pairs._model` (plain data, no database, so
listing pairs stays cheap), and what a pair does once at p, steps 2 to 7,
in `rollsafe.pairs._steps`; every public name is importable from here.

Cost: a whole run is O(N) migration runs, and a pair's cost does not grow
with the schema: the schema is read only for the objects the pair's up and
down files name (`rollsafe.pairs._schema.Scope`; everything when the SQL cannot be
followed), and up again (step 7) is compared with the first up only when the
down left a trace, since the same files on a restored schema give the same
schema.  Beyond its three migration runs a pair costs two one-statement
snapshots and one batch for each seed, check and set of old queries (see
`rollsafe.pairs._steps`).  Two ways to reach p:

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

import bisect
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress

import psycopg

from rollsafe.engines import Database, Server, Snapshot, unique_name
from rollsafe.errors import DatabaseError, EngineUnavailable, MigrationFailed, RollsafeError
from rollsafe.migrate import Catalogue
from rollsafe.pairs._fixtures import Fixture, seed
from rollsafe.pairs._generate import DEFAULT_ROWS
from rollsafe.pairs._model import (
    FIXES,
    STEPS,
    Compat,
    Counters,
    FindingKind,
    Isolation,
    Pair,
    PairFinding,
    PairResult,
    PairsRun,
    PairStatus,
    Recorder,
    StepResult,
    StepStatus,
    fixture_finding,
    migration_finding,
    pairs_from,
    select_pairs,
    version_text,
    with_findings,
)
from rollsafe.pairs._seeding import GeneratedSeeds
from rollsafe.pairs._states import ChainState, StateCache, base_key, state_keys
from rollsafe.pairs._steps import (
    StepData,
    StepSession,
    as_rollsafe,
    broken_run,
    run_steps,
    seed_versions,
)

# -- reaching p ---------------------------------------------------------------------------------


class PairRunner:
    """Runs pairs in order on one server, keeping the state that makes the run O(N).

    Use as a context manager; `run` takes pairs in ascending order (a pair
    behind the chain rebuilds it from an empty database, which is correct but
    costs a replay).  ``old_queries`` returns the old code's query files
    (``path -> text``) for a pair, read from git at its older row's newest CL;
    ``new_queries`` those of its newer row's newest CL, for the rollback check.
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
        new_queries: Callable[[Pair], Mapping[str, str]] | None = None,
        state_cache: StateCache | None = None,
        state_extra: Mapping[str, object] | None = None,
        seed_rows: int = DEFAULT_ROWS,
    ) -> None:
        self.server = server
        self.pairs = tuple(pairs)
        self._index = {p.id: i for i, p in enumerate(self.pairs)}
        self._versions = catalogue.versions
        self.isolation: Isolation = isolation
        self.data = StepData(
            catalogue, fixtures, old_queries, migrations_table, new_queries=new_queries
        )
        if seed_rows > 0:
            self.data.seeds = GeneratedSeeds(
                tuple(self._versions), rows=seed_rows, exclude=(migrations_table,)
            )
        self._upgrade_from = {p.previous: p for p in self.pairs}
        self._counters = Counters()
        self._db: Database | None = None
        self._session: StepSession | None = None
        self._at: int | None = None  # the state the chain database is at
        self._position = 0  # pairs[:position] have run (chain isolation)
        self._notes: list[str] = []  # carried to every later pair
        self._without_data_before: int | None = None
        self._skip_seeds: set[int] = set()  # seeds that failed on their own schema
        self._fixture_findings: list[tuple[int, PairFinding]] = []  # not yet given to a pair
        self._dead: PairFinding | None = None
        self._snapshots: dict[int | None, Snapshot] = {}
        self._started = time.perf_counter()
        self._cache = state_cache if isolation == "chain" else None
        self._state_extra = dict(state_extra or {})
        self._keys: list[str] | None = None
        self._consulted = False  # a walk was needed: save the state the run ends in
        self._settled = True  # no pair is half run (an interrupted one is never saved)

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> PairRunner:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None and self._consulted and self._settled:
            self._save_state()
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
        c = self._counters
        return Counters(migrations, c.copies, c.rebuilds, c.restores)

    def generated_statements(self) -> dict[int, tuple[str, ...]]:
        """Every generated INSERT by the version it filled: the same history gives the same."""
        return self.data.seeds.statements() if self.data.seeds is not None else {}

    def _count(
        self, *, migrations: int = 0, copies: int = 0, rebuilds: int = 0, restores: int = 0
    ) -> None:
        c = self._counters
        self._counters = Counters(
            c.migrations + migrations,
            c.copies + copies,
            c.rebuilds + rebuilds,
            c.restores + restores,
        )

    def _close_session(self) -> None:
        if self._session is not None:
            self._count(migrations=self._session.migrations)
            self._session.close()
            self._session = None

    def _open(self) -> StepSession:
        assert self._db is not None
        if self._session is None:
            self._session = StepSession(self.server, self._db, self.data)
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
        """A version's hand-written seeds on the chain, then its generated rows."""
        self._seed_fixture(version)
        seeds = self.data.seeds
        if seeds is None:
            return
        relations = self.data.fill_relations(version, self._upgrade_from.get(version))
        try:
            session = self._open()
            seeds.fill(session.conn, version, relations, catalog=session.reader.conn)
        except psycopg.Error as exc:
            self.data.seeds = None
            self._notes.append(
                f"rows cannot be generated from the catalog at {version} ({exc}): generated "
                f"seeds are off from here on"
            )

    def _seed_fixture(self, version: int) -> None:
        """Load a version's seeds on the chain; a seed that fails on its own schema is noted."""
        fixture = self.data.fixtures.get(version)
        if fixture is None or not fixture.has_seed or version in self._skip_seeds:
            return
        if self._without_data_before is not None and version < self._without_data_before:
            return
        failure = seed(self._open().conn, fixture)
        if failure is not None:
            # The test suite's defect: it fails the pair running now, once; later pairs note it.
            self._fixture_findings.append(
                (
                    version,
                    fixture_finding(
                        "fixture-fails",
                        f"seed of version {version} fails on its own schema",
                        failure,
                    ),
                )
            )
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
        # The catalogue's versions are sorted: slice instead of filtering every version.
        start = 0 if self._at is None else bisect.bisect_right(self._versions, self._at)
        versions = self._versions[start : bisect.bisect_right(self._versions, target)]
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
                for fixture in seed_versions(self.data, replay):
                    if fixture.version not in self._skip_seeds:
                        seed(session.conn, fixture)
                if self.data.seeds is not None:
                    scope = self.data.scope(replay)
                    only = None if scope is None else scope.relation_names
                    self.data.seeds.replay(session.conn, replay.previous, only)
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
            self._dead = migration_finding(
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
        index = self._index.get(pair.id, -1)
        if index < 0 or self.pairs[index] != pair:
            index = self.pairs.index(pair)  # ValueError for a pair of another history
        walked = False
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
        if self._cache is not None and index > self._position:
            self._consulted = True
            self._restore_state(index)
            walked = self._position < index
        result: PairResult | None = None
        self._settled = False
        while self._position <= index:
            if self._position == index and self._cache is not None and walked:
                self._save_state()
            current = self.pairs[self._position]
            result = self._run_in_chain(current)
            self._position += 1
        self._settled = True
        assert result is not None
        return result

    # -- the state cache ---------------------------------------------------------------------

    def _state_keys(self) -> list[str] | None:
        if self._cache is not None and self._keys is None:
            try:
                identity = self.server.identity()
            except RollsafeError:
                self._cache = None
                return None
            seeds = self.data.seeds
            extra = {**self._state_extra, "seed_rows": seeds.rows if seeds is not None else 0}
            base = base_key(engine=identity, migrations_table=self.data.table, extra=extra)
            self._keys = state_keys(base, self.data.catalogue, self.pairs, self.data.fixtures)
        return self._keys

    def _restore_state(self, index: int) -> None:
        """Jump the chain to the latest saved state at or before ``pairs[index]``, if any.

        A state that cannot be read or restored is deleted and the next older
        one tried; with none, the chain walks as it would without a cache.
        """
        keys = self._state_keys()
        if keys is None or self._cache is None:
            return
        for position in range(index, self._position, -1):
            loaded = self._cache.load(keys[position])
            if loaded is None:
                continue
            state, dump = loaded
            try:
                db = self.server.restore(dump, unique_name("rollsafe_chain"))
            except (DatabaseError, EngineUnavailable):
                self._cache.discard(keys[position])
                continue
            self._close_session()
            if self._db is not None:
                with suppress(RollsafeError):
                    self.server.drop(self._db)
            self._db, self._at, self._position = db, state.at, position
            self._notes = list(state.notes)
            self._skip_seeds = set(state.skip_seeds)
            self._without_data_before = state.without_data_before
            self._dead = None
            self._count(restores=1)
            if self.data.seeds is not None and state.generated:
                with suppress(psycopg.Error):
                    self.data.seeds.restore(state.generated, self._open().reader.conn)
            return

    def _save_state(self) -> None:
        """Save the chain's current state (before ``pairs[position]``) unless already saved."""
        keys = self._state_keys()
        if keys is None or self._cache is None or self._db is None or self._dead is not None:
            return
        key = keys[self._position]
        if self._cache.has(key):
            return
        try:
            dump = self.server.dump(self._db)
        except (DatabaseError, EngineUnavailable):
            self._cache = None  # this server cannot dump: run on without a cache
            return
        state = ChainState(
            at=self._at,
            notes=tuple(self._notes),
            skip_seeds=tuple(sorted(self._skip_seeds)),
            without_data_before=self._without_data_before,
            generated=self.data.seeds.saved(self._at) if self.data.seeds is not None else {},
        )
        self._cache.save(key, state, dump)

    def _unreachable(self, pair: Pair, started: float) -> PairResult:
        assert self._dead is not None
        record = Recorder()
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
            f"database at {version_text(pair.previous)} with its seeds",
            seconds=time.perf_counter() - started,
        )
        session = self._open()
        try:
            steps, sound = run_steps(session, pair, skip_seeds=frozenset(self._skip_seeds))
        except (RollsafeError, psycopg.Error) as exc:
            steps, sound = broken_run(as_rollsafe(exc)), False
        if sound:
            self._at = pair.target
            self._seed_chain(pair.target)
        else:
            # The database is in doubt: rebuild state n the production way.
            self._rebuild(pair)
        return self._result(pair, (reach, *steps), notes, started)

    def _result(
        self, pair: Pair, steps: Sequence[StepResult], notes: tuple[str, ...], started: float
    ) -> PairResult:
        """The pair's result, failed by the seeds that failed on their own schema meanwhile.

        A seed of a version up to the old row fails step 1 (reaching it), a
        later one step 3 (the way up to the new row).
        """
        for version, finding in self._fixture_findings:
            reached = pair.previous is not None and version <= pair.previous
            steps = with_findings(steps, 1 if reached else 3, [finding])
        self._fixture_findings.clear()
        seeds = self.data.seeds
        generated, skipped = seeds.result_of(pair) if seeds is not None else (None, ())
        seconds = time.perf_counter() - started
        return PairResult(pair, tuple(steps), notes + skipped, seconds, generated)

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
                self._db, unique_name(f"rollsafe_state_{version_text(pair.previous)}")
            )
            self._count(copies=1)
            self._snapshots[pair.previous] = snapshot
        notes = tuple(self._notes)
        clone = self.server.clone(snapshot, unique_name(f"rollsafe_pair_{pair.target}"))
        self._count(copies=1)
        reach = StepResult(
            1,
            "passed",
            f"cloned state {version_text(pair.previous)}",
            seconds=time.perf_counter() - started,
        )
        session = StepSession(self.server, clone, self.data)
        try:
            steps, _ = run_steps(session, pair, skip_seeds=frozenset(self._skip_seeds))
        except (RollsafeError, psycopg.Error) as exc:
            steps = broken_run(as_rollsafe(exc))
        finally:
            self._count(migrations=session.migrations)
            session.close()
            with suppress(RollsafeError):
                self.server.drop(clone)
        return self._result(pair, (reach, *steps), notes, started)


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
    new_queries: Callable[[Pair], Mapping[str, str]] | None = None,
    seed_rows: int = DEFAULT_ROWS,
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
        new_queries=new_queries,
        seed_rows=seed_rows,
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
    "FIXES",
    "STEPS",
    "Compat",
    "Counters",
    "FindingKind",
    "Isolation",
    "Pair",
    "PairFinding",
    "PairResult",
    "PairRunner",
    "PairStatus",
    "PairsRun",
    "StepResult",
    "StepStatus",
    "pairs_from",
    "run_pairs",
    "select_pairs",
]
