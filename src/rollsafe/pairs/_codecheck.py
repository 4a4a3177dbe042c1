"""Code of one CL against a schema it was not built for, and the rollback check.

Why a module of its own: step 4 prepares the old code's queries on the new
schema, and the rollback check (between steps 6 and 7) tries the new code's
writes and queries on the old one.  Both need to know which queries a pair
can affect and whether a refused query was broken anyway; the rollback
check also has to leave the chain's database exactly as it found it, ids
included, because later pairs continue on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from rollsafe.errors import RollsafeError
from rollsafe.pairs._fixtures import seed
from rollsafe.pairs._model import (
    FIXES,
    ROLLBACK_CHECK,
    Pair,
    PairFinding,
    Recorder,
    one_line,
    version_text,
)
from rollsafe.pairs._queries import Query, parse_query_files, prepare_queries, referenced_relations

if TYPE_CHECKING:
    from rollsafe.pairs._schema import SchemaSnapshot, Scope
    from rollsafe.pairs._steps import StepSession


@dataclass(frozen=True)
class NewCode:
    """The new code's queries as the rollback check needs them.

    ``ready`` are the queries that use something the pair can change and
    prepare on schema n; ``total`` counts every query of the CL; ``notes``
    say what was set aside (unreadable files, queries broken on n already).
    """

    total: int = 0
    ready: tuple[Query, ...] = ()
    notes: tuple[str, ...] = ()


def new_code_on_target(
    session: StepSession, pair: Pair, scope: Scope | None, before: SchemaSnapshot
) -> NewCode:
    """Read n's queries and prepare the relevant ones on schema n, where the database is now.

    Called before the down (step 6), so that a query the rollback check
    refuses on p is known to be fine on n without building n again in a
    scratch database: one round trip a pair instead of a migration run from
    zero, which would make the pair tests quadratic in history.
    """
    data = session.data
    if data.new_queries is None or not pair.new_commit:
        return NewCode()
    try:
        queries = parse_query_files(data.new_queries(pair))
    except RollsafeError as exc:
        return NewCode(notes=(f"query files of CL {pair.new_last_cl} cannot be read: {exc.what}",))
    relevant = affected_queries(queries, scope, before)
    broken = {f.query.name for f in prepare_queries(session.conn, relevant)} if relevant else set()
    notes = tuple(
        f"query {name} does not prepare on schema {pair.target} either: not counted"
        for name in sorted(broken)
    )
    ready = tuple(q for q in relevant if q.name not in broken)
    return NewCode(total=len(queries), ready=ready, notes=notes)


def rollback_check(session: StepSession, pair: Pair, record: Recorder, new: NewCode) -> None:
    """New code on the old schema: what makes a rollback ``live``.

    After the down, the database is at p with every row: n's seed writes
    are tried (and rolled back, so the chain's state is unchanged) and the
    queries of n's newest CL that prepared on n (`new_code_on_target`) are
    prepared.  A failure is the outcome ``new-query-fails-on-old``; it fails
    the pair only when the migration declares ``-- rollback: live``,
    otherwise it says the rollback is offline.
    """
    data, conn = session.data, session.conn
    findings: list[PairFinding] = []
    details: list[str] = []
    old = version_text(pair.previous)
    declared = pair.rollback_declared and pair.rollback == "live"
    fix = FIXES["new-query-fails-on-old"] if declared else _OFFLINE_ROLLBACK
    seeds = [data.fixtures[v] for v in pair.migrations if v in data.fixtures]
    seeds = [f for f in seeds if f.has_seed]
    sequences = _sequences(conn) if seeds else {}
    for fixture in seeds:
        failure = seed(conn, fixture, keep=False)
        if failure is not None:
            findings.append(
                PairFinding(
                    kind="new-query-fails-on-old",
                    summary=(
                        f"new code's writes (seed of version {fixture.version}) fail on schema "
                        f"{old}"
                    ),
                    fix=fix,
                    where=failure.where,
                    statement=one_line(failure.statement),
                    server=failure.message,
                )
            )
    if seeds:
        _restore_sequences(conn, sequences)
        details.append(f"tried seeds of {', '.join(str(f.version) for f in seeds)} (rolled back)")
    details.extend(new.notes)
    for refusal in prepare_queries(conn, new.ready) if new.ready else ():
        query = refusal.query
        findings.append(
            PairFinding(
                kind="new-query-fails-on-old",
                summary=(
                    f"new code's query {query.name} (CL {pair.new_last_cl}) does not prepare "
                    f"on schema {old}"
                ),
                fix=fix,
                where=f"{query.file}:{refusal.line} at CL {pair.new_last_cl}",
                statement=one_line(query.text),
                server=refusal.error.text,
            )
        )
    if new.total:
        details.append(
            f"prepared {len(new.ready)} of {plural(new.total, 'query')} of CL "
            f"{pair.new_last_cl} on schema {old}"
        )
    if not seeds and not new.total:
        record.add(
            ROLLBACK_CHECK,
            "not applicable",
            f"no seed fixture for {versions_text(pair.migrations)} and no query files: "
            "nothing of the new code to try",
        )
        return
    if findings:
        verdict = (
            "declared `-- rollback: live` disproved"
            if declared
            else "rollback offline: new code does not work on the old schema"
        )
        details.append(verdict)
        record.add(ROLLBACK_CHECK, "failed" if declared else "noted", "; ".join(details), findings)
        return
    details.append(f"new code works on schema {old}")
    record.add(ROLLBACK_CHECK, "passed", "; ".join(details))


#: What a rollback check failure means when no migration declared its rollback live.
_OFFLINE_ROLLBACK = (
    "the rollback of this step is offline: stop every component before migrating down "
    "(declare `-- rollback: offline` to say so in the table)"
)

_SEQUENCES = "SELECT schemaname || '.' || sequencename, last_value, start_value FROM pg_sequences"


def _sequences(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, tuple[object, object]]:
    """Every sequence's last value (None: never used) and start, before writes that roll back.

    A rolled-back insert still advances its sequence; tried writes must not
    change the ids the chain's later seeds and checks get.
    """
    with conn.transaction():
        rows = conn.execute(_SEQUENCES).fetchall()
    return {str(name): (last, start) for name, last, start in rows}


def _restore_sequences(
    conn: psycopg.Connection[tuple[object, ...]], before: Mapping[str, tuple[object, object]]
) -> None:
    """Put back the sequences that tried (rolled-back) writes advanced."""
    if not before:
        return
    with conn.transaction():
        for name, last, start in conn.execute(_SEQUENCES).fetchall():
            was = before.get(str(name))
            if was is None or was[0] == last:
                continue
            if was[0] is None:
                conn.execute("SELECT setval(%s::regclass, %s, false)", (name, start))
            else:
                conn.execute("SELECT setval(%s::regclass, %s, true)", (name, was[0]))


def affected_queries(
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


def plural(count: int, word: str) -> str:
    """``1 row``, ``2 rows``, ``3 queries``: a count in a report."""
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"


def versions_text(versions: Sequence[int]) -> str:
    """``3, 4`` or ``none``: versions in a report."""
    return ", ".join(map(str, versions)) or "none"
