"""The catalog queries behind a schema snapshot, and how they are sent.

Why a module of its own: the queries are the expensive part of the pair
test's steps 2 and 6 (each pair reads the schema twice), so how they are
written decides what a pair costs.  `rollsafe.pairs._schema` turns their rows into
objects and diffs; this module only knows SQL and round trips.

Three forms of one set of queries:

* the full snapshot (`FULL_QUERIES`): every object of every user schema,
  one small query per kind, sent together in one pipeline;
* the scoped snapshot for PostgreSQL (`SCOPED_STATEMENT`): one statement
  that resolves the scope's names itself and reads only those objects, plus
  the row count of each table it finds.  One round trip, prepared once per
  connection and run with a generic plan, and written so that every catalog
  it reads is reached through an index from the scope's few oids, so its
  cost does not grow with the schema;
* the scoped snapshot for other engines (`SCOPE_QUERY` then
  `SCOPED_QUERIES`): names resolved first, then one query per kind, without
  the PostgreSQL-only tricks (``query_to_xml`` for row counts, plan cache
  settings); CockroachDB's catalog emulation is served by the plainest SQL.

Every form returns ``(kind, name, first, second)`` rows; the scoped
statement adds ``('rows', table, <count as XML>, '')`` rows when asked.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import psycopg

#: A connection with rows as tuples.
Connection = psycopg.Connection[tuple[Any, ...]]

_NAMESPACES = r"""
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal', 'pg_extension')
      AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
"""

#: The relations a scoped snapshot reads: the ones named in the migrations (an index
#: stands for its table), the tables whose foreign keys reference them (their
#: constraint text names the referenced table), the views on them, and the sequences
#: they own or that own them; and the named types.  Used on engines other than
#: PostgreSQL, before `SCOPED_QUERIES`.
SCOPE_QUERY = r"""
WITH named AS (
    SELECT coalesce(i.indrelid, n.oid) AS oid
    FROM (SELECT to_regclass(name) AS oid FROM unnest(%(rels)s::text[]) AS name) AS n
    LEFT JOIN pg_index AS i ON i.indexrelid = n.oid
    WHERE n.oid IS NOT NULL
)
SELECT 'r', oid FROM named
UNION
SELECT 'r', conrelid FROM pg_constraint
WHERE confrelid IN (SELECT oid FROM named) AND conrelid <> 0
UNION
SELECT 'r', rw.ev_class FROM pg_depend AS d JOIN pg_rewrite AS rw ON rw.oid = d.objid
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM named)
  AND d.classid = 'pg_rewrite'::regclass
UNION
SELECT 'r', d.objid FROM pg_depend AS d
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM named)
  AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
UNION
SELECT 'r', d.refobjid FROM pg_depend AS d
WHERE d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM named)
  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
UNION
SELECT 't', t.oid FROM (SELECT to_regtype(name) AS oid FROM unnest(%(types)s::text[]) AS name) AS t
WHERE t.oid IS NOT NULL
"""

#: The same scope, resolved inside the PostgreSQL statement.  Every lookup is a
#: LATERAL subquery fenced with ``OFFSET 0``: the planner then runs it once per named
#: relation with that oid as a constant, through pg_depend's and pg_index's indexes.
#: Without the fence a generic plan hashes whole catalogs (it cannot know the array
#: holds two names), and a pair's cost would grow with the schema.  A foreign key is
#: found through its pg_depend row on the referenced table (pg_constraint has no
#: index on ``confrelid``).
_SCOPE_CTES = r"""
scope_named AS MATERIALIZED (
    SELECT DISTINCT coalesce(ix.indrelid, n.oid) AS oid
    FROM unnest(%(rels)s::text[]) AS x (name)
    CROSS JOIN LATERAL (SELECT to_regclass(x.name)::oid AS oid) AS n
    LEFT JOIN LATERAL (
        SELECT i.indrelid FROM pg_index AS i WHERE i.indexrelid = n.oid OFFSET 0
    ) AS ix ON TRUE
    WHERE n.oid IS NOT NULL
),
scope_rels AS MATERIALIZED (
    SELECT s.oid FROM scope_named AS s
    UNION
    SELECT found.oid FROM scope_named AS s CROSS JOIN LATERAL (
        SELECT con.conrelid AS oid
        FROM pg_depend AS d JOIN pg_constraint AS con ON con.oid = d.objid
        WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = s.oid
          AND d.classid = 'pg_constraint'::regclass
          AND con.confrelid = s.oid AND con.conrelid <> 0
        UNION ALL
        SELECT rw.ev_class
        FROM pg_depend AS d JOIN pg_rewrite AS rw ON rw.oid = d.objid
        WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = s.oid
          AND d.classid = 'pg_rewrite'::regclass
        UNION ALL
        SELECT d.objid FROM pg_depend AS d
        WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = s.oid
          AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        UNION ALL
        SELECT d.refobjid FROM pg_depend AS d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        OFFSET 0
    ) AS found
),
scope_types AS MATERIALIZED (
    SELECT t.oid FROM unnest(%(types)s::text[]) AS x (name)
    CROSS JOIN LATERAL (SELECT to_regtype(x.name)::oid AS oid) AS t
    WHERE t.oid IS NOT NULL
),
scope_constraints AS MATERIALIZED (
    SELECT k.oid FROM scope_rels AS s CROSS JOIN LATERAL (
        SELECT con.oid FROM pg_constraint AS con WHERE con.conrelid = s.oid OFFSET 0
    ) AS k
    UNION ALL
    SELECT k.oid FROM scope_types AS s CROSS JOIN LATERAL (
        SELECT con.oid FROM pg_constraint AS con WHERE con.contypid = s.oid OFFSET 0
    ) AS k
),"""


class _Filters(NamedTuple):
    """Where the scoped forms narrow the full queries (empty strings: read everything)."""

    relations: str = ""
    types: str = ""
    constraints: str = ""
    functions: str = ""
    not_extension: str = (
        "{oid} NOT IN (SELECT objid FROM pg_depend WHERE deptype = 'e' "
        "AND classid = '{catalog}'::regclass)"
    )


_NOT_EXTENSION_SCOPED = (
    "NOT EXISTS (SELECT 1 FROM pg_depend AS e WHERE e.classid = '{catalog}'::regclass "
    "AND e.objid = {oid} AND e.deptype = 'e')"
)


def _body(filters: _Filters, *, triggerdef: bool = True) -> str:
    """The ``rel`` CTE and one ``SELECT`` per kind, joined by ``UNION ALL``.

    Deparsed definitions (``pg_get_indexdef`` and friends) are compared rather
    than raw catalog columns because they name things (columns, tables, types)
    instead of numbering them, so a down that drops and re-creates an object
    identically compares equal.  Without ``triggerdef`` (a server that lacks
    ``pg_get_triggerdef``) triggers are compared by name only.
    """
    not_extension = filters.not_extension
    trigger_definition = "pg_get_triggerdef(tg.oid)" if triggerdef else "''"
    return f"""
rel AS (
    SELECT c.oid, ns.nspname, ns.nspname || '.' || c.relname AS qname, c.relkind,
           c.relpersistence, c.relrowsecurity
    FROM pg_class AS c JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') {filters.relations}
      AND {not_extension.format(catalog="pg_class", oid="c.oid")}
)
SELECT 'schema', nspname, '', '' FROM ns
UNION ALL
SELECT 'extension', extname, extversion, '' FROM pg_extension WHERE extname <> 'plpgsql'
UNION ALL
SELECT 'relation', r.qname, r.relkind::text,
       concat_ws(' ',
           CASE r.relpersistence WHEN 'u' THEN 'unlogged' END,
           CASE WHEN r.relrowsecurity THEN 'row-level-security' END,
           CASE WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid) END)
FROM rel AS r WHERE r.relkind <> 'S'
UNION ALL
SELECT 'column', r.qname || '.' || a.attname,
       concat_ws(chr(31),
           format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attnotnull THEN 'NOT NULL' ELSE 'NULL' END,
           coalesce(pg_get_expr(d.adbin, d.adrelid), ''),
           a.attidentity::text,
           a.attgenerated::text,
           CASE WHEN a.attcollation <> t.typcollation
                THEN (SELECT collname FROM pg_collation WHERE oid = a.attcollation) END),
       ''
FROM rel AS r
JOIN pg_attribute AS a ON a.attrelid = r.oid
JOIN pg_type AS t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE r.relkind <> 'S' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', ns.nspname || '.' || coalesce(c.relname, t.typname) || '.' || con.conname,
       con.contype::text, pg_get_constraintdef(con.oid)
FROM pg_constraint AS con
JOIN ns ON ns.oid = con.connamespace
LEFT JOIN pg_class AS c ON c.oid = con.conrelid
LEFT JOIN pg_type AS t ON t.oid = con.contypid
WHERE TRUE {filters.constraints}
UNION ALL
SELECT 'index', r.nspname || '.' || ic.relname, r.qname, pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
JOIN rel AS r ON r.oid = i.indrelid
JOIN pg_class AS ic ON ic.oid = i.indexrelid
WHERE NOT EXISTS (SELECT 1 FROM pg_constraint AS k
                  WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid
                    AND k.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT 'sequence', r.qname,
       concat_ws(chr(31), format_type(s.seqtypid, NULL), s.seqstart::text,
                 s.seqincrement::text, s.seqmin::text, s.seqmax::text, s.seqcycle::text),
       coalesce(tn.nspname || '.' || tc.relname || '.' || ta.attname, '')
FROM rel AS r
JOIN pg_sequence AS s ON s.seqrelid = r.oid
LEFT JOIN pg_depend AS dep
       ON dep.classid = 'pg_class'::regclass AND dep.objid = r.oid
      AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
LEFT JOIN pg_class AS tc ON tc.oid = dep.refobjid
LEFT JOIN pg_namespace AS tn ON tn.oid = tc.relnamespace
LEFT JOIN pg_attribute AS ta ON ta.attrelid = dep.refobjid AND ta.attnum = dep.refobjsubid
UNION ALL
SELECT 'type', ns.nspname || '.' || t.typname, t.typtype::text,
       CASE t.typtype
           WHEN 'e' THEN (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
                          FROM pg_enum AS e WHERE e.enumtypid = t.oid)
           WHEN 'd' THEN concat_ws(' ', format_type(t.typbasetype, t.typtypmod),
                                   CASE WHEN t.typnotnull THEN 'NOT NULL' END,
                                   'DEFAULT ' || t.typdefault)
           ELSE (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod),
                                   ', ' ORDER BY a.attname)
                 FROM pg_attribute AS a
                 WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
       END
FROM pg_type AS t
JOIN ns ON ns.oid = t.typnamespace
LEFT JOIN pg_class AS tr ON tr.oid = t.typrelid
WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND tr.relkind = 'c')) {filters.types}
  AND {not_extension.format(catalog="pg_type", oid="t.oid")}
UNION ALL
SELECT 'trigger', r.qname || '.' || tg.tgname, '', {trigger_definition}
FROM pg_trigger AS tg JOIN rel AS r ON r.oid = tg.tgrelid
WHERE NOT tg.tgisinternal
UNION ALL
SELECT 'function',
       ns.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       p.prokind::text,
       CASE WHEN p.prokind IN ('f', 'p') THEN left(md5(pg_get_functiondef(p.oid)), 12) ELSE '' END
FROM pg_proc AS p JOIN ns ON ns.oid = p.pronamespace
WHERE TRUE {filters.functions}
  AND {not_extension.format(catalog="pg_proc", oid="p.oid")}
"""


def _split_parts(head: str, body: str) -> tuple[str, ...]:
    """One query per kind, each with the CTEs it needs.

    Small queries sent together in a pipeline: one big query costs the
    planner more than it costs to run, and small ones are prepared once per
    connection.
    """
    first, *rest = (head + body).split("UNION ALL")
    ctes = first[: first.index("SELECT 'schema'")]
    return (first, *(ctes + part for part in rest))


#: The full snapshot: every object of every user schema.
FULL_QUERIES = _split_parts("WITH ns AS (" + _NAMESPACES + "),", _body(_Filters()))

_SCOPED_FILTERS = _Filters(
    relations="AND c.oid = ANY(%(rels)s::text[]::oid[])",
    types="AND t.oid = ANY(%(types)s::text[]::oid[])",
    constraints=(
        "AND (con.conrelid = ANY(%(rels)s::text[]::oid[]) "
        "OR con.contypid = ANY(%(types)s::text[]::oid[]))"
    ),
    functions="AND p.proname = ANY(%(funcs)s::text[]::name[])",
    not_extension=_NOT_EXTENSION_SCOPED,
)

#: The scoped snapshot after `SCOPE_QUERY` (engines other than PostgreSQL); executed
#: with parameters, so a literal % is doubled for psycopg.
SCOPED_QUERIES = _split_parts(
    "WITH ns AS (" + _NAMESPACES.replace("%'", "%%'") + "),", _body(_SCOPED_FILTERS)
)

#: PostgreSQL's scoped snapshot in one statement: scope resolution, the objects, and
#: (when ``count`` is true) each table's rows, counted by ``query_to_xml`` so that no
#: second round trip has to name the tables.
SCOPED_STATEMENT = (
    "WITH ns AS MATERIALIZED ("
    + _NAMESPACES.replace("%'", "%%'")
    + "),"
    + _SCOPE_CTES
    + _body(
        _Filters(
            relations="AND c.oid = ANY (ARRAY(SELECT oid FROM scope_rels))",
            types="AND t.oid = ANY (ARRAY(SELECT oid FROM scope_types))",
            constraints="AND con.oid = ANY (ARRAY(SELECT oid FROM scope_constraints))",
            functions="AND p.proname = ANY (%(funcs)s::text[]::name[])",
            not_extension=_NOT_EXTENSION_SCOPED,
        )
    )
    + """UNION ALL
SELECT 'rows', r.qname,
       query_to_xml(format('SELECT count(*) AS n FROM %%s', r.oid::regclass),
                    false, true, '')::text,
       ''
FROM rel AS r
WHERE %(count)s::boolean AND r.relkind IN ('r', 'p', 'f')
"""
)

#: How the scoped statement must be planned.  A generic plan: PostgreSQL would otherwise
#: re-plan it at every run (its estimate for an array parameter makes a custom plan look
#: cheaper), and planning this statement costs more than running it.  Index lookups
#: costed as what they are for a catalog that is always in memory: with the default
#: random_page_cost a small catalog is scanned whole, and such scans grow with the schema.
SETTINGS = ("plan_cache_mode = force_generic_plan", "random_page_cost = 1.1")


@dataclass(frozen=True)
class Dialect:
    """What the server at the other end of a connection understands, asked once per connection.

    ``cockroach``: the server is CockroachDB, which speaks PostgreSQL's
    protocol and catalog but has neither ``query_to_xml`` (no XML type) nor
    the planner settings of `SETTINGS` (``random_page_cost`` is in its list
    of unsupported variables, ``pkg/sql/unsupported_vars.go``), so its
    snapshots use the plain queries (`SCOPE_QUERY`, `SCOPED_QUERIES`).
    ``triggerdef``: the server has ``pg_get_triggerdef(oid)``; released
    CockroachDB versions do not (``pkg/sql/sem/builtins/pg_builtins.go`` has
    ``pg_get_functiondef``, ``pg_get_indexdef``, ``pg_get_viewdef``,
    ``pg_get_constraintdef`` but no trigger counterpart), and one unknown
    function fails the whole snapshot.
    """

    cockroach: bool = False
    triggerdef: bool = True


#: PostgreSQL: every function and setting the snapshot uses.
POSTGRES = Dialect()

_DIALECTS: weakref.WeakKeyDictionary[Connection, Dialect] = weakref.WeakKeyDictionary()

#: Whether ``pg_get_triggerdef(oid)`` exists; ``to_regprocedure`` answers NULL rather than
#: failing, on PostgreSQL and on CockroachDB (``initPGBuiltins`` in
#: ``pkg/sql/sem/builtins/pg_builtins.go`` defines ``to_regprocedure``).
TRIGGERDEF_PROBE = "SELECT to_regprocedure('pg_catalog.pg_get_triggerdef(oid)') IS NOT NULL"


def dialect_of(conn: Connection) -> Dialect:
    """The connection's `Dialect`, from the server itself, once per connection.

    CockroachDB reports ``crdb_version`` in the ParameterStatus messages it
    sends at connection start (``statusReportParams`` in
    ``pkg/sql/pgwire/conn.go``; psycopg's ``CrdbConnection.is_crdb`` reads the
    same), so telling it apart costs no round trip; psycopg's plain
    ``conn.info.vendor`` says "PostgreSQL" for both.  Only on CockroachDB is
    the trigger function probed (one query, then cached with the connection).
    """
    known = _DIALECTS.get(conn)
    if known is None:
        known = POSTGRES
        if conn.pgconn.parameter_status(b"crdb_version"):
            row = conn.execute(TRIGGERDEF_PROBE).fetchone()
            known = Dialect(cockroach=True, triggerdef=bool(row and row[0]))
        _DIALECTS[conn] = known
    return known


@lru_cache(maxsize=4)
def full_queries(dialect: Dialect) -> tuple[str, ...]:
    """`FULL_QUERIES` as the dialect can run them."""
    if dialect.triggerdef:
        return FULL_QUERIES
    return _split_parts("WITH ns AS (" + _NAMESPACES + "),", _body(_Filters(), triggerdef=False))


@lru_cache(maxsize=4)
def scoped_queries(dialect: Dialect) -> tuple[str, ...]:
    """`SCOPED_QUERIES` as the dialect can run them."""
    if dialect.triggerdef:
        return SCOPED_QUERIES
    return _split_parts(
        "WITH ns AS (" + _NAMESPACES.replace("%'", "%%'") + "),",
        _body(_SCOPED_FILTERS, triggerdef=False),
    )


def session_settings(dialect: Dialect) -> tuple[str, ...]:
    """The ``SET`` statements a snapshot connection gets (none on CockroachDB)."""
    return () if dialect.cockroach else tuple(f"SET {setting}" for setting in SETTINGS)


def statements_for(dialect: Dialect) -> tuple[str, ...]:
    """Every statement a schema snapshot may send to a server of this dialect.

    Why: what is sent to CockroachDB cannot be tried here (no binary), so it
    is built by the same functions the snapshot uses and can be read, and
    tested, without a server.
    """
    probe = (TRIGGERDEF_PROBE,) if dialect.cockroach else ()
    settings = session_settings(dialect)
    if dialect.cockroach:
        scoped: tuple[str, ...] = (SCOPE_QUERY, *scoped_queries(dialect))
    else:
        scoped = (_SCOPED_RAW, *(f"SET LOCAL {setting}" for setting in SETTINGS))
    return (*probe, *settings, *full_queries(dialect), *scoped)


#: `SCOPED_STATEMENT` with PostgreSQL's own placeholders, for a raw cursor.
_SCOPED_RAW = (
    SCOPED_STATEMENT.replace("%(rels)s", "$1")
    .replace("%(types)s", "$2")
    .replace("%(funcs)s", "$3")
    .replace("%(count)s", "$4")
    .replace("%%", "%")
)

_COUNT = re.compile(r"<n>(\d+)</n>")
_IDLE = psycopg.pq.TransactionStatus.IDLE


def count_of(xml: str) -> int | None:
    """The count in ``query_to_xml``'s text for ``SELECT count(*) AS n`` (None: not found)."""
    match = _COUNT.search(xml)
    return int(match.group(1)) if match is not None else None


def run_all(
    conn: Connection, queries: Sequence[str], params: Mapping[str, object] | None
) -> list[tuple[Any, ...]]:
    """Every row of ``queries``, sent in one pipeline (one round trip).

    Prepared at once (not after psycopg's usual five runs): a pair test runs
    them a few times per pair on the same connection, and planning them costs
    more than running them.
    """
    with conn.pipeline():
        cursors = [conn.cursor() for _ in queries]
        for cursor, query in zip(cursors, queries, strict=True):
            cursor.execute(query, params, prepare=True)
    rows: list[tuple[Any, ...]] = []
    for cursor in cursors:
        rows.extend(cursor.fetchall())
        cursor.close()
    return rows


def scoped_rows_postgres(
    conn: Connection,
    relations: Sequence[str],
    types: Sequence[str],
    functions: Sequence[str],
    *,
    count: bool,
    generic: bool = False,
) -> list[tuple[Any, ...]]:
    """The rows of `SCOPED_STATEMENT`: one round trip, one prepared generic plan.

    The statement must run with `SETTINGS`.  ``generic`` says the connection's
    session has them already (a connection of its own, see
    `rollsafe.pairs._schema.SchemaReader`).  Otherwise they are made for the
    statement's own transaction only, sent in the same pipeline (BEGIN, SET
    LOCAL, the statement, COMMIT), and the caller's session keeps its
    settings; a caller already inside a transaction gets PostgreSQL's default
    planning rather than settings that would outlive the statement.
    """
    params = [list(relations), list(types), list(functions), count]
    # A raw cursor: the statement is sent as written, with $n placeholders, instead of
    # being parsed for %(name)s placeholders at every run (psycopg caches that parse only
    # for short statements).
    cursor = psycopg.RawCursor(conn)
    if generic:
        with cursor:
            return cursor.execute(_SCOPED_RAW, params, prepare=True).fetchall()
    idle = conn.pgconn.transaction_status == _IDLE
    try:
        with conn.pipeline():
            if idle:
                conn.execute("BEGIN")
                for setting in SETTINGS:
                    conn.execute(f"SET LOCAL {setting}")
            cursor.execute(_SCOPED_RAW, params, prepare=True)
            if idle:
                conn.execute("COMMIT")
    except psycopg.Error:
        # The COMMIT never ran: end the failed transaction this function began.
        if idle and not conn.closed and conn.pgconn.transaction_status != _IDLE:
            conn.execute("ROLLBACK")
        raise
    rows = cursor.fetchall()
    cursor.close()
    return rows


def scoped_rows_other(
    conn: Connection,
    relations: Sequence[str],
    types: Sequence[str],
    functions: Sequence[str],
    *,
    dialect: Dialect = POSTGRES,
) -> list[tuple[Any, ...]]:
    """The rows of the scoped snapshot on an engine other than PostgreSQL (two round trips)."""
    names = {"rels": list(relations), "types": list(types)}
    with conn.transaction():
        found = conn.execute(SCOPE_QUERY, names, prepare=True).fetchall()
        params = {
            "rels": [str(oid) for kind, oid in found if kind == "r"],
            "types": [str(oid) for kind, oid in found if kind == "t"],
            "funcs": list(functions),
        }
        return run_all(conn, scoped_queries(dialect), params)
