"""Generated seed rows on the chain: read the tables of a state, write their rows, replay them.

Why a module of its own: `rollsafe.pairs._generate` decides values without a
database; this module holds the two round trips a state pays for them (one
catalog read, one batch of inserts) and what the runner and the steps
remember between states: which rows each version got (to replay them as old
code's writes, and to show them when a migration fails on them).

Which tables a state fills: the tables that version's up file names (new or
changed tables) and the tables the next upgrade names, read as they are at
that state.  The other tables still hold the rows generated when a migration
last named them, so every table of the chain is populated while the cost of
a state does not grow with the schema.  A file whose reach cannot be known
from its text (`rollsafe.pairs._scope`) fills every table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from rollsafe.pairs._batch import run_batch
from rollsafe.pairs._generate import (
    ATTEMPTS,
    Column,
    Constraint,
    Insert,
    Table,
    TableRows,
    dependency_order,
    quote_ident,
    rows_for,
)
from rollsafe.pairs._model import FIXES, Generated, Pair, PairFinding, version_text
from rollsafe.pairs._scope import Scope, scope_of

Connection = psycopg.Connection[tuple[Any, ...]]

#: Every user table (``$1`` NULL) or the named ones, with what generation needs, one row each.
TABLES_QUERY = r"""
WITH rels AS (
    SELECT c.oid, n.nspname, c.relname
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal', 'pg_extension')
      AND n.nspname NOT LIKE 'pg\_%'
      AND ($1::text[] IS NULL OR c.oid = ANY (ARRAY(
          SELECT to_regclass(x)::oid FROM unnest($1::text[]) AS x)))
      AND NOT EXISTS (SELECT 1 FROM pg_depend AS e WHERE e.classid = 'pg_class'::regclass
                      AND e.objid = c.oid AND e.deptype = 'e')
)
SELECT r.nspname::text, r.relname::text,
  (SELECT json_agg(json_build_object(
      'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
      'base', bt.typname, 'category', bt.typcategory,
      'elem', et.typname, 'elem_category', et.typcategory,
      'typmod', CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
      'labels', (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum AS e
                 WHERE e.enumtypid = coalesce(et.oid, bt.oid)),
      'not_null', a.attnotnull OR t.typnotnull,
      'default', coalesce(pg_get_expr(d.adbin, d.adrelid),
                          CASE WHEN t.typtype = 'd' THEN t.typdefault END),
      'identity', a.attidentity, 'generated', a.attgenerated,
      'checks', (SELECT json_agg(pg_get_constraintdef(k.oid)) FROM pg_constraint AS k
                 WHERE t.typtype = 'd' AND k.contypid = t.oid)
    ) ORDER BY a.attnum)
   FROM pg_attribute AS a JOIN pg_type AS t ON t.oid = a.atttypid
   JOIN pg_type AS bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
   LEFT JOIN pg_type AS et ON et.oid = bt.typelem AND bt.typcategory = 'A'
   LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT json_agg(json_build_object(
      'kind', k.contype,
      'columns', (SELECT json_agg(a.attname ORDER BY u.i)
                  FROM unnest(k.conkey) WITH ORDINALITY AS u (n, i)
                  JOIN pg_attribute AS a ON a.attrelid = k.conrelid AND a.attnum = u.n),
      'ref_schema', rn.nspname, 'ref_table', rc.relname,
      'ref_columns', (SELECT json_agg(a.attname ORDER BY u.i)
                      FROM unnest(k.confkey) WITH ORDINALITY AS u (n, i)
                      JOIN pg_attribute AS a ON a.attrelid = k.confrelid AND a.attnum = u.n),
      'definition', pg_get_constraintdef(k.oid), 'name', k.conname) ORDER BY k.conname)
   FROM pg_constraint AS k
   LEFT JOIN pg_class AS rc ON rc.oid = k.confrelid
   LEFT JOIN pg_namespace AS rn ON rn.oid = rc.relnamespace
   WHERE k.conrelid = r.oid AND k.contype IN ('p', 'u', 'f', 'c')),
  (SELECT json_agg((SELECT json_agg(a.attname) FROM unnest(i.indkey::int2[]) AS u (n)
                    JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = u.n))
   FROM pg_index AS i
   WHERE i.indrelid = r.oid AND i.indisunique AND i.indexprs IS NULL
     AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid
                     AND k.conrelid = r.oid))
FROM rels AS r
ORDER BY r.nspname, r.relname
"""


def read_tables(
    conn: Connection, relations: Sequence[str] | None, *, exclude: Sequence[str] = ()
) -> tuple[Table, ...]:
    """The tables named (``None``: every user table), as `Table`s, in one round trip.

    ``exclude`` names tables (``t`` or ``schema.t``) that are not the
    application's, such as golang-migrate's state table.
    """
    params = [None if relations is None else list(relations)]
    rows = psycopg.RawCursor(conn).execute(TABLES_QUERY, params, prepare=True).fetchall()
    tables: list[Table] = []
    for schema, name, columns, constraints, indexes in rows:
        if any(x in (name, f"{schema}.{name}") for x in exclude):
            continue
        tables.append(_table(str(schema), str(name), columns or [], constraints or [], indexes))
    return tuple(tables)


def _table(
    schema: str, name: str, columns: list[Any], constraints: list[Any], indexes: Any
) -> Table:
    cols = tuple(
        Column(
            name=c["name"],
            type=c["type"],
            base=c["base"],
            category=c["category"],
            typmod=int(c["typmod"]),
            elem=c["elem"],
            elem_category=c["elem_category"],
            labels=tuple(c["labels"] or ()),
            not_null=bool(c["not_null"]),
            default=c["default"],
            identity=c["identity"] or "",
            generated=c["generated"] or "",
            checks=tuple(c["checks"] or ()),
        )
        for c in columns
    )
    found = [
        Constraint(
            kind=k["kind"],
            columns=tuple(k["columns"] or ()),
            definition=k["definition"] or "",
            ref_table=(
                f"{quote_ident(k['ref_schema'])}.{quote_ident(k['ref_table'])}"
                if k["ref_table"]
                else None
            ),
            ref_columns=tuple(k["ref_columns"] or ()),
            name=k["name"],
        )
        for k in constraints
    ]
    found += [Constraint("u", tuple(i)) for i in indexes or () if i]
    return Table(schema, name, cols, tuple(found))


@dataclass(frozen=True)
class Skipped:
    """A table that could not be filled, and why (the server's words, or the generator's)."""

    table: str
    reason: str
    statement: str = ""


@dataclass(frozen=True)
class Filled:
    """What one state's generation wrote."""

    version: int
    tables: tuple[TableRows, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    @property
    def rows(self) -> int:
        return sum(len(t.inserts) for t in self.tables)


@dataclass(frozen=True)
class WriteFailure:
    """A generated row the server refused: the statement and its message."""

    table: str
    statement: str
    message: str
    constraint: str | None = None


def _plan(
    tables: Sequence[Table],
    count: int,
    first: int,
    attempts: Mapping[str, Mapping[str, int]],
) -> tuple[list[TableRows], list[Skipped]]:
    """Rows for every table, parents first, each column at its attempt (table -> column ->)."""
    ordered = dependency_order(tables)
    made: dict[str, TableRows] = {}
    skipped: list[Skipped] = []
    for index, table in enumerate(ordered):
        later = frozenset(t.qualified for t in ordered[index + 1 :])
        rows = rows_for(
            table,
            count=count,
            first=first,
            attempts=attempts.get(table.qualified, {}),
            parents=made,
            later=later,
        )
        if isinstance(rows, str):
            skipped.append(Skipped(table.qualified, rows))
        else:
            made[table.qualified] = rows
    return list(made.values()), skipped


def _statements(planned: Iterable[TableRows]) -> list[str]:
    return [insert.sql for rows in planned for insert in rows.inserts]


def _run_one_table(conn: Connection, rows: TableRows) -> WriteFailure | None:
    """Insert one table's rows in a transaction of their own; the first refused row, if any."""
    if run_batch(conn, [i.sql for i in rows.inserts], end="COMMIT").ok:
        return None
    failure: WriteFailure | None = None
    try:
        with conn.transaction():
            for insert in rows.inserts:
                try:
                    conn.execute(insert.sql)
                except psycopg.Error as exc:
                    failure = WriteFailure(
                        insert.table, insert.sql, _message(exc), exc.diag.constraint_name
                    )
                    raise
    except psycopg.Error:
        pass
    return failure


def _message(exc: psycopg.Error) -> str:
    diag = exc.diag
    return diag.message_primary or str(exc).strip().splitlines()[0]


def fill(
    conn: Connection, version: int, tables: Sequence[Table], *, count: int, first: int
) -> Filled:
    """Write ``count`` rows into each table: one round trip when every row is accepted.

    When the batch is refused (a check the first values miss, a clash with a
    hand-written row), the tables are written one by one, each tried with
    `ATTEMPTS` sets of values; a table refused every time is skipped with the
    server's reason, and its children are planned again without it.
    """
    planned, skipped = _plan(tables, count, first, {})
    if not planned:
        return Filled(version, (), tuple(skipped))
    if run_batch(conn, _statements(planned), end="COMMIT").ok:
        return Filled(version, tuple(planned), tuple(skipped))
    attempts: dict[str, dict[str, int]] = {}
    done: dict[str, TableRows] = {}
    lost: dict[str, Skipped] = {s.table: s for s in skipped}
    for table in dependency_order([t for t in tables if t.qualified not in lost]):
        failure = _fill_table(conn, table, tables, done, attempts, count=count, first=first)
        if failure is not None:
            lost[table.qualified] = Skipped(
                table.qualified,
                f"{failure.message} (after {ATTEMPTS} sets of values)",
                failure.statement,
            )
    return Filled(version, tuple(done.values()), tuple(lost.values()))


def _fill_table(
    conn: Connection,
    table: Table,
    tables: Sequence[Table],
    done: dict[str, TableRows],
    attempts: dict[str, dict[str, int]],
    *,
    count: int,
    first: int,
) -> WriteFailure | None:
    """Write one table's rows, giving the columns of each refusing constraint other values."""
    mine = attempts.setdefault(table.qualified, {})
    named = {k.name: k.columns for k in table.constraints}
    insertable = [c.name for c in table.columns if not c.by_server]
    others = [t for t in tables if t.qualified in done or t.qualified == table.qualified]
    failure: WriteFailure | None = None
    for _ in range(ATTEMPTS * 3):
        planned, _skipped = _plan(others, count, first, attempts)
        rows = next((r for r in planned if r.table.qualified == table.qualified), None)
        if rows is None:
            return failure or WriteFailure(table.qualified, "", "no rows could be planned")
        failure = _run_one_table(conn, rows)
        if failure is None:
            done[table.qualified] = rows
            return None
        columns = named.get(failure.constraint or "") or insertable
        for column in columns:
            mine[column] = mine.get(column, 0) + 1
        if any(mine[c] >= ATTEMPTS for c in columns):
            break
    return failure


def write_again(
    conn: Connection, filled: Filled, *, count: int, first: int, only: frozenset[str] | None
) -> tuple[int, int, list[WriteFailure]]:
    """Old code's writes: ``filled``'s tables, their columns then, new serial numbers.

    Each table gets the values of the attempt it was filled with; tables
    skipped at that state are not replayed.  ``only`` keeps the tables an
    upgrade names (bare names; ``None``: all).  Tables, rows written, and
    each refused row.
    """
    tables = [
        t.table
        for t in filled.tables
        if only is None or t.table.name in only or t.table.qualified in only
    ]
    attempts = {t.table.qualified: t.attempts for t in filled.tables}
    planned, _ = _plan(tables, count, first, attempts)
    if not planned:
        return 0, 0, []
    if run_batch(conn, _statements(planned), end="COMMIT").ok:
        return len(planned), sum(len(p.inserts) for p in planned), []
    failures: list[WriteFailure] = []
    written = rows = 0
    for table_rows in planned:
        failure = _run_one_table(conn, table_rows)
        if failure is None:
            written += 1
            rows += len(table_rows.inserts)
        else:
            failures.append(failure)
    return written, rows, failures


_RELATION = re.compile(r'(?:relation|table) "([^"]+)"')


@dataclass
class GeneratedSeeds:
    """What generation remembers along one run: rows per version, counts, examples.

    Serial numbers are a function of the version's place in the catalogue and
    of the purpose (filling a state, replaying it as old code's writes), so a
    pair gets the same rows whichever pairs ran before it.
    """

    versions: tuple[int, ...]
    rows: int = 3
    exclude: tuple[str, ...] = ()
    filled: dict[int, Filled] = field(default_factory=dict)
    #: Rows replayed as old code's writes, by pair id.
    replayed: dict[str, int] = field(default_factory=dict)
    _scopes: dict[int, Scope | None] = field(default_factory=dict, repr=False)

    def relations_at(
        self,
        version: int,
        up_sql: str | None,
        upgrade: Scope | None,
        *,
        builtins: frozenset[str] = frozenset(),
    ) -> list[str] | None:
        """The tables to fill at ``version`` (``None``: every table).

        The tables its up file names (new or changed) and those the upgrade
        starting there names (``upgrade``; ``None``: anything).
        """
        if version not in self._scopes:
            self._scopes[version] = (
                None if up_sql is None else scope_of([up_sql], builtins=builtins)
            )
        names: list[str] = []
        for scope in (self._scopes[version], upgrade):
            if scope is None:
                return None
            names.extend(n for n in scope.relations if n not in names)
        return names

    def first(self, version: int, purpose: int) -> int:
        ordinal = self.versions.index(version) if version in self.versions else len(self.versions)
        return (ordinal * 2 + purpose) * self.rows

    def fill(
        self,
        conn: Connection,
        version: int,
        relations: Sequence[str] | None,
        *,
        catalog: Connection | None = None,
    ) -> Filled:
        """Fill the named tables (``None``: all) at ``version``; remembered for replay.

        ``catalog`` is the connection to read the tables on (default ``conn``):
        the schema snapshots' own, whose session plans catalog reads once
        (`rollsafe.pairs._schema.SchemaReader`), which halves the read.
        """
        if relations is not None and not relations:
            filled = Filled(version)
        else:
            tables = read_tables(catalog or conn, relations, exclude=self.exclude)
            filled = fill(conn, version, tables, count=self.rows, first=self.first(version, 0))
        self.filled[version] = filled
        return filled

    def replay(
        self, conn: Connection, version: int | None, only: frozenset[str] | None
    ) -> tuple[int, int, list[WriteFailure]]:
        """Write ``version``'s generated rows again (on a newer schema): old code's writes."""
        filled = self.filled.get(version) if version is not None else None
        if filled is None or version is None:
            return 0, 0, []
        return write_again(conn, filled, count=self.rows, first=self.first(version, 1), only=only)

    def example(self, texts: Iterable[str], versions: Iterable[int | None]) -> Insert | None:
        """A generated row of the table ``texts`` name, from the newest of ``versions``.

        ``texts`` are the server's message (``relation "accounts"``) and the
        failing statement: the first table either names that has generated
        rows gives the example.
        """
        wanted: list[str] = []
        for text in texts:
            wanted += _RELATION.findall(text)
            wanted += re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", _RELATION.sub(" ", text))
        ordered = sorted((v for v in versions if v is not None), reverse=True)
        for name in dict.fromkeys(wanted):
            for version in ordered:
                filled = self.filled.get(version)
                for rows in filled.tables if filled is not None else ():
                    if name in (rows.table.name, rows.table.qualified) and rows.inserts:
                        return rows.inserts[0]
        return None

    def saved(self, version: int | None) -> dict[str, Any]:
        """What a saved chain state must keep of ``version``'s generated rows (JSON)."""
        filled = self.filled.get(version) if version is not None else None
        if filled is None:
            return {}
        return {
            "version": version,
            "attempts": {t.table.qualified: dict(t.attempts) for t in filled.tables},
            "skipped": [[s.table, s.reason, s.statement] for s in filled.skipped],
        }

    def restore(self, saved: Mapping[str, Any], catalog: Connection) -> None:
        """Remember a restored state's generated rows: its tables read again, rows planned again.

        The plan is deterministic, so the rows are the ones the state holds; a
        saved record that does not read as expected is ignored (the pair then
        replays no generated rows).
        """
        try:
            version = int(saved["version"])
            attempts = {
                str(t): {str(c): int(n) for c, n in cols.items()}
                for t, cols in saved["attempts"].items()
            }
            skipped = tuple(Skipped(str(a), str(b), str(c)) for a, b, c in saved["skipped"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return
        tables = read_tables(catalog, list(attempts), exclude=self.exclude) if attempts else ()
        planned, _ = _plan(tables, self.rows, self.first(version, 0), attempts)
        self.filled[version] = Filled(version, tuple(planned), skipped)

    def statements(self) -> dict[int, tuple[str, ...]]:
        """Every generated INSERT by the version it filled."""
        return {
            version: tuple(i.sql for rows in filled.tables for i in rows.inserts)
            for version, filled in sorted(self.filled.items())
        }

    def result_of(self, pair: Pair) -> tuple[Generated, tuple[str, ...]]:
        """What a pair's summary says was generated (at p, replayed at n), and skip notes."""
        filled = self.filled.get(pair.previous) if pair.previous is not None else None
        filled = filled or Filled(0)
        skipped = tuple(f"{s.table}: {s.reason}" for s in filled.skipped)
        generated = Generated(
            tables=len(filled.tables),
            rows=filled.rows,
            replayed_rows=self.replayed.get(pair.id, 0),
            skipped=skipped,
        )
        notes = tuple(
            f"generated rows: table {text}; no rows generated for it at this state"
            for text in skipped
        )
        return generated, notes

    def replay_pair(
        self, conn: Connection, pair: Pair, only: frozenset[str] | None
    ) -> tuple[str, list[PairFinding]]:
        """Step 4's replay of p's generated rows on schema n: its detail and a finding a row."""
        if pair.previous is None:
            return "", []
        tables, rows, failures = self.replay(conn, pair.previous, only)
        self.replayed[pair.id] = rows
        findings = [_write_finding(failure, pair) for failure in failures]
        if not tables and not failures:
            return "", findings
        return (
            f"replayed {rows} generated row{'s' * (rows != 1)} of {pair.previous} in "
            f"{tables} table{'s' * (tables != 1)}",
            findings,
        )

    def with_example(self, pair: Pair, finding: PairFinding) -> PairFinding:
        """``finding`` with a generated row of the table it names, when there is one."""
        if not finding.server:
            return finding
        versions = [v for v in self.filled if pair.previous is not None and v <= pair.previous]
        texts = [finding.server, finding.statement or ""]
        example = self.example(texts, [*versions, *pair.migrations])
        if example is None:
            return finding
        text = (
            f"the table holds rows generated from the catalog (no fixture wrote them), such as:\n"
            f"  {example.sql};"
        )
        return replace(finding, details="\n".join(x for x in (finding.details, text) if x))


def _write_finding(failure: WriteFailure, pair: Pair) -> PairFinding:
    """Old code's write refused: the generated INSERT, said to be generated, ready to keep."""
    return PairFinding(
        kind="old-write-fails",
        summary=(
            f"old code's writes (rows generated at {version_text(pair.previous)}, with its "
            f"columns) fail on schema {pair.target}"
        ),
        fix=FIXES["old-write-fails"],
        where=f"{failure.table} (generated from the catalog, no fixture)",
        statement=failure.statement,
        server=failure.message,
        details=(
            "this row was generated from the catalog of schema "
            f"{version_text(pair.previous)}; to keep it as a fixture, put the statement in "
            f"tests/upgrade/<version>/seed.sql"
        ),
    )
