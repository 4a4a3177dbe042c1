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

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pglast
import psycopg
from pglast import ast
from pglast.enums import DropBehavior, ObjectType
from pglast.visitors import Visitor
from psycopg import sql

from rollsafe._db import quote_ident
from rollsafe.errors import DatabaseError

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

#: Schemas that belong to the server, never to the migrations.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "crdb_internal", "pg_extension")

_NAMESPACES = r"""
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'crdb_internal', 'pg_extension')
      AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp%'
"""

#: The relations a scoped snapshot reads: the ones named in the migrations (an index
#: stands for its table), the tables whose foreign keys reference them (their
#: constraint text names the referenced table), the views on them, and the sequences
#: they own or that own them; and the named types.  A query of its own, so that the
#: snapshot query gets literal oid arrays the planner can use indexes for.
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


def _snapshot_parts(scoped: bool) -> tuple[str, ...]:
    """Queries for every object the migrations own, as ``(kind, name, first, second)`` rows.

    Deparsed definitions (``pg_get_indexdef`` and friends) are compared rather
    than raw catalog columns because they name things (columns, tables, types)
    instead of numbering them, so a down that drops and re-creates an object
    identically compares equal.  ``scoped`` reads only the relations, types and
    functions named by the ``rels``/``types``/``funcs`` parameters (see
    `Scope`); the full queries read everything.  One small query per kind,
    sent together in a pipeline: a single big query costs the planner more
    than it costs to run, and small ones are prepared once per connection.
    """
    if scoped:
        relations = "AND c.oid = ANY(%(rels)s::text[]::oid[])"
        types = "AND t.oid = ANY(%(types)s::text[]::oid[])"
        constraints = (
            "AND (con.conrelid = ANY(%(rels)s::text[]::oid[]) "
            "OR con.contypid = ANY(%(types)s::text[]::oid[]))"
        )
        functions = "AND p.proname = ANY(%(funcs)s::text[]::name[])"
        not_extension = (
            "NOT EXISTS (SELECT 1 FROM pg_depend AS e WHERE e.classid = '{catalog}'::regclass "
            "AND e.objid = {oid} AND e.deptype = 'e')"
        )
        # Executed with parameters: a literal % must be doubled for psycopg.
        head = "WITH ns AS (" + _NAMESPACES.replace("%'", "%%'") + "),"
    else:
        relations = types = constraints = functions = ""
        not_extension = (
            "{oid} NOT IN (SELECT objid FROM pg_depend WHERE deptype = 'e' "
            "AND classid = '{catalog}'::regclass)"
        )
        head = "WITH ns AS (" + _NAMESPACES + "),"
    text = (
        head
        + f"""
rel AS (
    SELECT c.oid, ns.nspname, ns.nspname || '.' || c.relname AS qname, c.relkind,
           c.relpersistence, c.relrowsecurity
    FROM pg_class AS c JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') {relations}
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
WHERE TRUE {constraints}
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
WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND tr.relkind = 'c')) {types}
  AND {not_extension.format(catalog="pg_type", oid="t.oid")}
UNION ALL
SELECT 'trigger', r.qname || '.' || tg.tgname, '', pg_get_triggerdef(tg.oid)
FROM pg_trigger AS tg JOIN rel AS r ON r.oid = tg.tgrelid
WHERE NOT tg.tgisinternal
UNION ALL
SELECT 'function',
       ns.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       p.prokind::text,
       CASE WHEN p.prokind IN ('f', 'p') THEN left(md5(pg_get_functiondef(p.oid)), 12) ELSE '' END
FROM pg_proc AS p JOIN ns ON ns.oid = p.pronamespace
WHERE TRUE {functions}
  AND {not_extension.format(catalog="pg_proc", oid="p.oid")}
"""
    )
    first, *rest = text.split("UNION ALL")
    ctes = first[: first.index("SELECT 'schema'")]
    return (first, *(ctes + part for part in rest))


#: The full snapshot: every object of every user schema.
SNAPSHOT_QUERIES = _snapshot_parts(scoped=False)
#: A snapshot of the objects a migration names (see `Scope`).
SCOPED_QUERIES = _snapshot_parts(scoped=True)

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
        return (KINDS.index(self.kind), self.kind, self.name)

    def describe(self) -> str:
        """``kind name (attr value, ...)`` on one line."""
        shown = ", ".join(f"{attr} {value}" for attr, value in self.attributes if value)
        return f"{self.kind} {self.name}" + (f" ({shown})" if shown else "")


@dataclass(frozen=True)
class SchemaSnapshot:
    """Every schema object of a database that the migrations own, in a stable order."""

    objects: tuple[SchemaObject, ...] = ()

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


@dataclass(frozen=True)
class Scope:
    """The objects a set of migrations can change, so a snapshot can read only those.

    Names are SQL names, quoted where needed (``public."Order"``), resolved in
    the database at each snapshot: a relation that does not exist in one state
    is simply absent from that state's snapshot, which is the truth.  A
    relation brings its columns, constraints, indexes, triggers, the tables
    whose foreign keys reference it, the views on it and its sequences.
    """

    relations: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()

    @property
    def relation_names(self) -> frozenset[str]:
        """Bare relation names (no schema, unquoted), to match queries against."""
        return frozenset(_bare(name) for name in self.relations)


def _bare(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip('"').replace('""', '"')


def _qualified(schema: str | None, name: str | None) -> str:
    parts = [schema, name] if schema else [name]
    return ".".join(quote_ident(part) for part in parts if part)


#: Statements whose effects reach objects they do not name: a scoped snapshot could miss
#: what they change, so their presence means "read everything".
_UNSCOPABLE = (
    ast.DoStmt,
    ast.CallStmt,
    ast.CreateExtensionStmt,
    ast.AlterExtensionStmt,
    ast.AlterExtensionContentsStmt,
    ast.CreateSchemaStmt,
    ast.AlterObjectSchemaStmt,
    ast.VariableSetStmt,
    ast.RuleStmt,
    ast.CopyStmt,
    ast.DropOwnedStmt,
    ast.ReassignOwnedStmt,
    ast.ExecuteStmt,
    ast.AlterDefaultPrivilegesStmt,
    ast.CreateCastStmt,
    ast.DefineStmt,
    ast.CreateOpClassStmt,
    ast.ImportForeignSchemaStmt,
    ast.AlterTypeStmt,
)
#: Statements a scoped snapshot follows through the names they carry.
_SCOPABLE = (
    ast.CreateStmt,
    ast.AlterTableStmt,
    ast.IndexStmt,
    ast.DropStmt,
    ast.RenameStmt,
    ast.ViewStmt,
    ast.CreateTableAsStmt,
    ast.CreateSeqStmt,
    ast.AlterSeqStmt,
    ast.CreateEnumStmt,
    ast.AlterEnumStmt,
    ast.CreateDomainStmt,
    ast.AlterDomainStmt,
    ast.CompositeTypeStmt,
    ast.CreateRangeStmt,
    ast.CreateFunctionStmt,
    ast.AlterFunctionStmt,
    ast.CreateTrigStmt,
    ast.CreatePolicyStmt,
    ast.AlterPolicyStmt,
    ast.CommentStmt,
    ast.GrantStmt,
    ast.AlterOwnerStmt,
    ast.InsertStmt,
    ast.UpdateStmt,
    ast.DeleteStmt,
    ast.SelectStmt,
    ast.MergeStmt,
    ast.TruncateStmt,
    ast.TransactionStmt,
    ast.LockStmt,
    ast.ReindexStmt,
    ast.VacuumStmt,
    ast.ClusterStmt,
    ast.RefreshMatViewStmt,
    ast.CreateStatsStmt,
    ast.NotifyStmt,
    ast.ReplicaIdentityStmt,
    ast.AlterTableMoveAllStmt,
)
_RELATION_OBJECTS = {
    ObjectType.OBJECT_TABLE,
    ObjectType.OBJECT_VIEW,
    ObjectType.OBJECT_MATVIEW,
    ObjectType.OBJECT_INDEX,
    ObjectType.OBJECT_SEQUENCE,
    ObjectType.OBJECT_FOREIGN_TABLE,
}
_TYPE_OBJECTS = {ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN}
_FUNCTION_OBJECTS = {
    ObjectType.OBJECT_FUNCTION,
    ObjectType.OBJECT_PROCEDURE,
    ObjectType.OBJECT_ROUTINE,
    ObjectType.OBJECT_AGGREGATE,
}
#: Objects that hang off a table and are named ``(table..., name)`` in a DROP.
_TABLE_PARTS = {ObjectType.OBJECT_TRIGGER, ObjectType.OBJECT_POLICY, ObjectType.OBJECT_RULE}
#: Renames that only change a relation's own objects (columns, constraints, triggers).
_RELATION_RENAMES = _RELATION_OBJECTS | {
    ObjectType.OBJECT_COLUMN,
    ObjectType.OBJECT_TABCONSTRAINT,
    ObjectType.OBJECT_TRIGGER,
    ObjectType.OBJECT_POLICY,
}


def _strings(node: object) -> list[str]:
    """The parts of a qualified name (a tuple of ``String`` nodes)."""
    items = node if isinstance(node, tuple | list) else (node,)
    return [str(getattr(item, "sval", "")) for item in items if getattr(item, "sval", None)]


def _split_name(parts: Sequence[str]) -> tuple[str | None, str]:
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return None, parts[-1]


class _Names(Visitor):
    """Collects relation names and calls to functions outside pg_catalog."""

    def __init__(self, builtins: Collection[str]) -> None:
        super().__init__()
        self.relations: set[str] = set()
        self.user_calls = False
        self.builtins = builtins

    def visit_RangeVar(self, ancestors: object, node: ast.RangeVar) -> None:
        self.relations.add(_qualified(node.schemaname, node.relname))

    def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:
        schema, name = _split_name(_strings(node.funcname))
        if schema not in (None, "pg_catalog") or name not in self.builtins:
            self.user_calls = True


def scope_of(texts: Iterable[str], *, builtins: Collection[str] = ()) -> Scope | None:
    """The objects SQL ``texts`` can change; ``None`` when that cannot be told from the text.

    Parsed with PostgreSQL's own parser (pglast).  ``None`` (read the whole
    schema) for SQL the parser rejects, ``DROP ... CASCADE`` (its reach is the
    database's dependency graph), ``DO`` blocks, ``SET`` (search_path changes
    what names mean), schema and extension changes, type and function renames,
    and data statements calling a function that is not one of ``builtins``
    (it may change anything).
    """
    relations: set[str] = set()
    types: set[str] = set()
    functions: set[str] = set()
    for text in texts:
        try:
            statements = pglast.parse_sql(text)
        except pglast.parser.ParseError:
            return None
        for raw in statements:
            node = raw.stmt
            if isinstance(node, _UNSCOPABLE) or not isinstance(node, _SCOPABLE):
                return None
            if getattr(node, "behavior", None) == DropBehavior.DROP_CASCADE:
                return None
            if isinstance(node, ast.DropStmt):
                kind = node.removeType
                for item in node.objects or ():
                    if kind in _RELATION_OBJECTS:
                        relations.add(_qualified(*_split_name(_strings(item))))
                    elif kind in _TYPE_OBJECTS:
                        parts = _strings(getattr(item, "names", item))
                        types.add(_qualified(*_split_name(parts)))
                    elif kind in _FUNCTION_OBJECTS:
                        functions.add(_split_name(_strings(item.objname))[1])
                    elif kind in _TABLE_PARTS:
                        relations.add(_qualified(*_split_name(_strings(item)[:-1])))
                    else:
                        return None
            elif isinstance(node, ast.RenameStmt):
                if node.renameType not in _RELATION_RENAMES or node.relation is None:
                    return None
                if node.renameType in _RELATION_OBJECTS and node.newname:
                    relations.add(_qualified(node.relation.schemaname, node.newname))
            elif isinstance(
                node,
                ast.CreateEnumStmt
                | ast.AlterEnumStmt
                | ast.CreateDomainStmt
                | ast.AlterDomainStmt
                | ast.CreateRangeStmt,
            ):
                name_node = getattr(node, "typeName", None) or getattr(node, "domainname", None)
                types.add(_qualified(*_split_name(_strings(name_node))))
            elif isinstance(node, ast.CompositeTypeStmt):
                typevar = node.typevar
                if typevar is not None:
                    types.add(_qualified(typevar.schemaname, typevar.relname))
                continue  # its RangeVar names a type, not a relation
            elif isinstance(node, ast.CreateFunctionStmt):
                functions.add(_split_name(_strings(node.funcname))[1])
            elif isinstance(node, ast.AlterFunctionStmt):
                if node.func is None:
                    return None
                functions.add(_split_name(_strings(node.func.objname))[1])
            visitor = _Names(builtins)
            visitor(node)
            if visitor.user_calls and isinstance(
                node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.SelectStmt
            ):
                return None
            relations |= visitor.relations
    return Scope(tuple(sorted(relations)), tuple(sorted(types)), tuple(sorted(functions)))


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


def _run_all(
    conn: psycopg.Connection[tuple[object, ...]],
    queries: Sequence[str],
    params: Mapping[str, object] | None,
) -> list[tuple[object, ...]]:
    """Every row of ``queries``, sent in one pipeline (one round trip).

    Prepared at once (not after psycopg's usual five runs): a pair test runs
    them a few times per pair on the same connection, and planning them costs
    more than running them.
    """
    with conn.pipeline():
        cursors = [conn.cursor() for _ in queries]
        for cursor, query in zip(cursors, queries, strict=True):
            cursor.execute(query, params, prepare=True)
    rows: list[tuple[object, ...]] = []
    for cursor in cursors:
        rows.extend(cursor.fetchall())
        cursor.close()
    return rows


def _scoped_rows(
    conn: psycopg.Connection[tuple[object, ...]], scope: Scope
) -> list[tuple[object, ...]]:
    """The rows of a scoped snapshot: resolve the scope to oids, then read those objects.

    On PostgreSQL the statements run with generic plans: the planner keeps
    re-planning them otherwise (its estimate for an array parameter makes a
    custom plan look cheaper), and planning costs several times the run.
    Oids are sent as text so the parameter types, and so the prepared
    statements, never change.
    """
    with conn.transaction():
        if conn.info.vendor == "PostgreSQL":
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        names = {"rels": list(scope.relations), "types": list(scope.types)}
        found = conn.execute(SCOPE_QUERY, names, prepare=True).fetchall()
        params = {
            "rels": [str(oid) for kind, oid in found if kind == "r"],
            "types": [str(oid) for kind, oid in found if kind == "t"],
            "funcs": list(scope.functions),
        }
        return _run_all(conn, SCOPED_QUERIES, params)


def snapshot_schema(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    exclude_tables: Sequence[str] = (),
    scope: Scope | None = None,
) -> SchemaSnapshot:
    """Read the schema objects the migrations own, in a stable order.

    ``scope`` limits the read to the objects a migration names (and what
    hangs off them, see `Scope`), which keeps a snapshot's cost independent
    of the schema's size; ``None`` reads everything.  ``exclude_tables``
    names tables (``t`` or ``schema.t``) that are not part of the schema
    under test, such as golang-migrate's state table; their columns,
    constraints, indexes and owned sequences are left out too.
    """
    objects: list[SchemaObject] = []
    try:
        if scope is None:
            rows = _run_all(conn, SNAPSHOT_QUERIES, None)
        else:
            rows = _scoped_rows(conn, scope)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot read the schema from the catalog: {exc}",
            where="schema snapshot",
            fix="the engine may not support this catalog query; report it with --debug output",
        ) from exc
    for row in rows:
        kind, name, first, second = (str(v) if v is not None else "" for v in row)
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
    return SchemaSnapshot(tuple(sorted(objects, key=lambda o: o.key)))


def diff_schemas(expected: SchemaSnapshot, actual: SchemaSnapshot) -> tuple[SchemaChange, ...]:
    """Every object missing from, extra in, or changed in ``actual``, in a stable order."""
    want = expected.by_key()
    have = actual.by_key()
    changes: list[tuple[tuple[int, str, str], SchemaChange]] = []
    for key in sorted(set(want) | set(have), key=lambda k: (KINDS.index(k[0]), k[0], k[1])):
        kind, name = key
        sort_key = (KINDS.index(kind), kind, name)
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
