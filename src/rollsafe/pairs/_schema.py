"""A database schema read from the catalog, and a readable diff between two of them.

Why: the pair test's step 6 asks whether a down migration really undoes its up
migration.  Comparing ``pg_dump`` text would flag harmless noise (column order
after a down re-adds a dropped column, dump headers, OIDs), so the schema is
read from the catalog into named objects with a few attributes each, in a
stable order, and two snapshots are compared object by object.  A mismatch
reads like a review comment ("column public.machines.provider: nullable
NOT NULL -> NULL"), not like a wall of SQL.

Columns are keyed by name and their position is not compared: golang-migrate
downs that re-add a dropped column put it last, and no query that names its
columns can tell the difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from psycopg import sql

from rollsafe.errors import DatabaseError
from rollsafe.pairs import _catalog
from rollsafe.pairs._scope import Scope, scope_of

#: Kinds of schema objects, in the order a diff lists them (containers first).
KINDS: tuple[str, ...] = (
    "schema",
    "extension",
    "enum",
    "domain",
    "type",
    "sequence",
    "table",
    "view",
    "materialized view",
    "column",
    "constraint",
    "index",
    "trigger",
    "function",
)

_KIND_ORDER = {kind: index for index, kind in enumerate(KINDS)}

#: Schemas that belong to the server, never to the migrations.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "crdb_internal", "pg_extension")

_RELKINDS = {
    "r": "table",
    "p": "table",
    "f": "table",
    "v": "view",
    "m": "materialized view",
}
_CONTYPES = {
    "p": "primary key",
    "u": "unique",
    "f": "foreign key",
    "c": "check",
    "x": "exclusion",
    "t": "trigger",
    "n": "not null",
}
_TYPTYPES = {"e": "enum", "d": "domain", "c": "type"}
_PROKINDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window function"}


@dataclass(frozen=True)
class SchemaObject:
    """One named thing in the schema and the attributes a diff compares.

    ``name`` is qualified (``public.machines.hostname`` for a column) so that
    objects of one kind sort and match by name alone.
    """

    kind: str
    name: str
    attributes: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[int, str, str]:
        """Sort key: kinds in `KINDS` order, then names."""
        return (_KIND_ORDER[self.kind], self.kind, self.name)

    def describe(self) -> str:
        """``kind name (attr value, ...)`` on one line."""
        shown = ", ".join(f"{attr} {value}" for attr, value in self.attributes if value)
        return f"{self.kind} {self.name}" + (f" ({shown})" if shown else "")


@dataclass(frozen=True)
class SchemaSnapshot:
    """Every schema object of a database that the migrations own, in a stable order.

    ``rows`` holds each table's row count when the snapshot was asked for it
    (step 6 of the pair test compares them: a down that recreates a table
    empty keeps the schema but loses the data).  It is not part of equality:
    two snapshots are equal when their schemas are.
    """

    objects: tuple[SchemaObject, ...] = ()
    rows: Mapping[str, int] = field(default_factory=dict, compare=False)

    def by_key(self) -> dict[tuple[str, str], SchemaObject]:
        return {(o.kind, o.name): o for o in self.objects}

    @property
    def tables(self) -> tuple[str, ...]:
        """Qualified names of the tables (not views), for row counts."""
        return tuple(o.name for o in self.objects if o.kind == "table")

    def render(self) -> str:
        """One line per object; what ``rollsafe`` prints when asked for a schema."""
        return "\n".join(o.describe() for o in self.objects)


@dataclass(frozen=True)
class SchemaChange:
    """One difference between an expected and an actual schema."""

    change: Literal["missing", "extra", "changed"]
    kind: str
    name: str
    #: For ``changed``: (attribute, expected value, actual value) of each differing attribute.
    attributes: tuple[tuple[str, str, str], ...] = ()
    #: For ``missing``/``extra``: the object's own description.
    description: str = ""


def _split(value: str, count: int) -> list[str]:
    parts = value.split("\x1f")
    return (parts + [""] * count)[:count]


def _object_from(kind: str, name: str, first: str, second: str) -> SchemaObject:
    """Turn one catalog row (name and two text columns) into a `SchemaObject`."""
    if kind == "schema":
        return SchemaObject("schema", name)
    if kind == "extension":
        return SchemaObject("extension", name, (("version", first),))
    if kind == "relation":
        attr = "options" if first in ("r", "p", "f") else "definition"
        return SchemaObject(_RELKINDS[first], name, ((attr, second),))
    if kind == "column":
        type_name, nullable, default, identity, generated, collation = _split(first, 6)
        attributes: list[tuple[str, str]] = [
            ("type", type_name),
            ("nullable", nullable),
            ("default", default),
        ]
        if identity:
            attributes.append(
                ("identity", {"a": "ALWAYS", "d": "BY DEFAULT"}.get(identity, identity))
            )
        if generated:
            attributes.append(("generated", "STORED" if generated == "s" else generated))
        if collation:
            attributes.append(("collation", collation))
        return SchemaObject("column", name, tuple(attributes))
    if kind == "constraint":
        return SchemaObject(
            "constraint", name, (("type", _CONTYPES.get(first, first)), ("definition", second))
        )
    if kind == "sequence":
        type_name, start, increment, minimum, maximum, cycle = _split(first, 6)
        return SchemaObject(
            "sequence",
            name,
            (
                ("type", type_name),
                ("start", start),
                ("increment", increment),
                ("min", minimum),
                ("max", maximum),
                ("cycle", "CYCLE" if cycle == "true" else ""),
                ("owned by", second),
            ),
        )
    if kind == "type":
        label = _TYPTYPES.get(first, "type")
        attr = {"enum": "labels", "domain": "definition", "type": "attributes"}[label]
        return SchemaObject(label, name, ((attr, second),))
    if kind == "function":
        return SchemaObject(
            "function", name, (("kind", _PROKINDS.get(first, first)), ("body md5", second))
        )
    if kind == "index":
        return SchemaObject("index", name, (("table", first), ("definition", second)))
    return SchemaObject(kind, name, (("definition", second),))


def _excluded(name: str, exclude: Sequence[str]) -> bool:
    """Whether ``name`` (qualified) belongs to an excluded table (``t`` or ``schema.t``)."""
    parts = name.split(".")
    for table in exclude:
        wanted = table.split(".")
        if len(wanted) == 1 and len(parts) >= 2 and parts[1] == wanted[0]:
            return True
        if len(wanted) == 2 and parts[:2] == wanted:
            return True
    return False


def snapshot_schema(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    exclude_tables: Sequence[str] = (),
    scope: Scope | None = None,
    rows: bool = False,
    dialect: _catalog.Dialect | None = None,
) -> SchemaSnapshot:
    """Read the schema objects the migrations own, in a stable order.

    ``scope`` limits the read to the objects a migration names (and what
    hangs off them, see `Scope`), which keeps a snapshot's cost independent
    of the schema's size; ``None`` reads everything.  ``exclude_tables``
    names tables (``t`` or ``schema.t``) that are not part of the schema
    under test, such as golang-migrate's state table; their columns,
    constraints, indexes and owned sequences are left out too.  ``rows``
    also counts the rows of every table of the snapshot (`SchemaSnapshot.rows`):
    on PostgreSQL a scoped snapshot reads them in the same round trip.
    ``dialect`` is normally asked of the server (`rollsafe.pairs._catalog.dialect_of`).
    """
    return _snapshot(conn, exclude_tables, scope, rows=rows, generic=False, dialect=dialect)


class SchemaReader:
    """Schema snapshots over a connection of their own, as the pair test takes them.

    Why: a pair reads its scoped snapshot twice, and on PostgreSQL that is one
    prepared statement that must be planned in a certain way (a generic plan
    made of index lookups, `rollsafe.pairs._catalog.SETTINGS`).  On a connection
    that serves only snapshots, the settings are made once for the session,
    so each snapshot is that one statement, instead of a transaction that
    sets them around every snapshot.  The connection is the reader's: nothing
    but catalog reads should run on it (generated seed rows read their tables here).
    """

    def __init__(
        self,
        conn: psycopg.Connection[tuple[object, ...]],
        *,
        exclude_tables: Sequence[str] = (),
        dialect: _catalog.Dialect | None = None,
    ) -> None:
        self.conn = conn
        self.exclude_tables = tuple(exclude_tables)
        try:
            self.dialect = dialect or _catalog.dialect_of(conn)
            # CockroachDB gets no SET at all (`rollsafe.pairs._catalog.Dialect`).
            for statement in _catalog.session_settings(self.dialect):
                conn.execute(statement)
        except psycopg.Error as exc:
            raise _catalog_error(exc) from exc

    def snapshot(self, scope: Scope | None = None, *, rows: bool = False) -> SchemaSnapshot:
        """`snapshot_schema` on the reader's connection."""
        return _snapshot(
            self.conn, self.exclude_tables, scope, rows=rows, generic=True, dialect=self.dialect
        )


def _catalog_error(exc: psycopg.Error) -> DatabaseError:
    return DatabaseError(
        f"cannot read the schema from the catalog: {exc}",
        where="schema snapshot",
        fix="the engine may not support this catalog query; report it with --debug output",
    )


def _snapshot(
    conn: psycopg.Connection[tuple[object, ...]],
    exclude_tables: Sequence[str],
    scope: Scope | None,
    *,
    rows: bool,
    generic: bool,
    dialect: _catalog.Dialect | None,
) -> SchemaSnapshot:
    counts: dict[str, int] = {}
    try:
        dialect = dialect or _catalog.dialect_of(conn)
        if scope is None:
            raw = _catalog.run_all(conn, _catalog.full_queries(dialect), None)
        elif not dialect.cockroach:
            names = (scope.relations, scope.types, scope.functions)
            try:
                raw = _catalog.scoped_rows_postgres(conn, *names, count=rows, generic=generic)
            except psycopg.errors.FeatureNotSupported:
                if not rows:
                    raise
                # A server built without XML support: count in a query of its own below.
                raw = _catalog.scoped_rows_postgres(conn, *names, count=False, generic=generic)
        else:
            raw = _catalog.scoped_rows_other(
                conn, scope.relations, scope.types, scope.functions, dialect=dialect
            )
    except psycopg.Error as exc:
        raise _catalog_error(exc) from exc
    objects: list[SchemaObject] = []
    for row in raw:
        kind, name, first, second = (str(v) if v is not None else "" for v in row)
        if kind == "rows":
            count = _catalog.count_of(first)
            if count is not None:
                counts[name] = count
            continue
        item = _object_from(kind, name, first, second)
        if item.kind == "index":
            if _excluded(first + ".", exclude_tables):
                continue
        elif item.kind in ("table", "column", "constraint", "trigger"):
            if _excluded(item.name, exclude_tables):
                continue
        elif item.kind == "sequence":
            owner = dict(item.attributes).get("owned by", "")
            if owner and _excluded(owner, exclude_tables):
                continue
        objects.append(item)
    snapshot = SchemaSnapshot(tuple(sorted(objects, key=lambda o: o.key)))
    if not rows:
        return snapshot
    tables = snapshot.tables
    if any(table not in counts for table in tables):
        counts = count_rows(conn, tables)
    return SchemaSnapshot(snapshot.objects, {t: counts[t] for t in tables if t in counts})


def diff_schemas(expected: SchemaSnapshot, actual: SchemaSnapshot) -> tuple[SchemaChange, ...]:
    """Every object missing from, extra in, or changed in ``actual``, in a stable order."""
    want = expected.by_key()
    have = actual.by_key()
    changes: list[tuple[tuple[int, str, str], SchemaChange]] = []
    for key in sorted(set(want) | set(have), key=lambda k: (_KIND_ORDER[k[0]], k[0], k[1])):
        kind, name = key
        sort_key = (_KIND_ORDER[kind], kind, name)
        before, after = want.get(key), have.get(key)
        if after is None and before is not None:
            changes.append(
                (sort_key, SchemaChange("missing", kind, name, description=before.describe()))
            )
        elif before is None and after is not None:
            changes.append(
                (sort_key, SchemaChange("extra", kind, name, description=after.describe()))
            )
        elif before is not None and after is not None and before != after:
            old, new = dict(before.attributes), dict(after.attributes)
            differing = tuple(
                (attr, old.get(attr, ""), new.get(attr, ""))
                for attr in dict.fromkeys([*old, *new])
                if old.get(attr, "") != new.get(attr, "")
            )
            changes.append((sort_key, SchemaChange("changed", kind, name, attributes=differing)))
    return tuple(change for _, change in changes)


def _shown(value: str) -> str:
    return value if value else "(none)"


def render_diff(
    changes: Iterable[SchemaChange],
    *,
    expected: str = "expected",
    actual: str = "actual",
) -> str:
    """A diff a reviewer reads: ``-`` missing, ``+`` extra, ``~`` changed, one object a line.

    ``expected``/``actual`` name the two states ("before the upgrade",
    "after down") so every line says which side has what.
    """
    lines: list[str] = []
    for change in changes:
        if change.change == "missing":
            lines.append(f"- {change.description}: only {expected}")
        elif change.change == "extra":
            lines.append(f"+ {change.description}: only {actual}")
        else:
            parts = "; ".join(
                f"{attr} {_shown(old)} -> {_shown(new)}" for attr, old, new in change.attributes
            )
            lines.append(f"~ {change.kind} {change.name}: {parts}")
    return "\n".join(lines)


def count_rows(
    conn: psycopg.Connection[tuple[object, ...]], tables: Iterable[str]
) -> dict[str, int]:
    """Rows in each of ``tables`` (qualified names), read in one round trip.

    Why: step 6 of the pair test asks whether the rows written before the
    upgrade are still there after the down migration; a down that recreates
    a table empty passes a schema comparison but loses production data.
    """
    names = sorted(tables)
    if not names:
        return {}
    parts = [
        sql.SQL("SELECT {name}, count(*) FROM {table}").format(
            name=sql.Literal(name), table=sql.Identifier(*name.split(".", 1))
        )
        for name in names
    ]
    query = sql.SQL(" UNION ALL ").join(parts)
    try:
        rows = conn.execute(query).fetchall()
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot count rows: {exc}", where="row counts", fix="see the server's message"
        ) from exc
    return {str(name): int(str(count)) for name, count in rows}


def table_names(snapshot: SchemaSnapshot) -> Mapping[str, SchemaObject]:
    """The snapshot's tables by qualified name."""
    return {o.name: o for o in snapshot.objects if o.kind == "table"}


__all__ = [
    "KINDS",
    "SYSTEM_SCHEMAS",
    "SchemaChange",
    "SchemaObject",
    "SchemaReader",
    "SchemaSnapshot",
    "Scope",
    "count_rows",
    "diff_schemas",
    "render_diff",
    "scope_of",
    "snapshot_schema",
    "table_names",
]
