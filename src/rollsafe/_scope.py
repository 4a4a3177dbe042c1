"""Which schema objects a set of migration files can change, read from their SQL.

Why: the pair test snapshots the schema before the upgrade and after the down
migration, twice per pair.  Reading the whole schema would make each pair's
cost grow with the history; reading only what the pair's files name keeps it
constant.  That is only sound when the SQL says everything it touches, so
anything whose reach is not in the text (``DROP ... CASCADE``, ``DO`` blocks,
``SET search_path``, calls to user functions in data statements, SQL the
parser rejects) answers "everything" (``None``).

Parsed with PostgreSQL's own parser (pglast).  A migration's scope is cached
by its text: rebuilds and repeated runs in one process ask again for the same
files.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import pglast
from pglast import ast
from pglast.enums import DropBehavior, ObjectType
from pglast.visitors import Visitor

from rollsafe._db import quote_ident


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
    """Collects relation names and the functions a statement calls (schema, name)."""

    def __init__(self) -> None:
        super().__init__()
        self.relations: set[str] = set()
        self.calls: set[tuple[str | None, str]] = set()

    def visit_RangeVar(self, ancestors: object, node: ast.RangeVar) -> None:
        self.relations.add(_qualified(node.schemaname, node.relname))

    def visit_FuncCall(self, ancestors: object, node: ast.FuncCall) -> None:
        self.calls.add(_split_name(_strings(node.funcname)))


@dataclass(frozen=True)
class _FileScope:
    """What one file names, and the functions its data statements call."""

    scope: Scope
    calls: frozenset[tuple[str | None, str]]


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
        found = _file_scope(text)
        if found is None:
            return None
        for schema, name in found.calls:
            if schema not in (None, "pg_catalog") or name not in builtins:
                return None
        relations.update(found.scope.relations)
        types.update(found.scope.types)
        functions.update(found.scope.functions)
    return Scope(tuple(sorted(relations)), tuple(sorted(types)), tuple(sorted(functions)))


@functools.lru_cache(maxsize=4096)
def _file_scope(text: str) -> _FileScope | None:
    """`scope_of` for one file, before the calls are checked; cached by text.

    Parsing into pglast's AST costs more than a pair's catalog reads, and a
    run asks again for the same files (rebuilds, repeated runs in one
    process).  The calls are kept apart so that the cache does not depend on
    the database's list of built-in functions.
    """
    relations: set[str] = set()
    types: set[str] = set()
    functions: set[str] = set()
    calls: set[tuple[str | None, str]] = set()
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
        visitor = _Names()
        visitor(node)
        if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.SelectStmt):
            calls |= visitor.calls
        relations |= visitor.relations
    return _FileScope(
        Scope(tuple(sorted(relations)), tuple(sorted(types)), tuple(sorted(functions))),
        frozenset(calls),
    )
