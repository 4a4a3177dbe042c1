"""Which schema objects a set of migration files can change, read from their SQL.

Why: the pair test snapshots the schema before the upgrade and after the down
migration, twice per pair.  Reading the whole schema would make each pair's
cost grow with the history; reading only what the pair's files name keeps it
constant.  That is only sound when the SQL says everything it touches, so
anything whose reach is not in the text (``DROP ... CASCADE``, ``DO`` blocks,
``SET search_path``, calls to user functions in data statements, SQL the
parser rejects) answers "everything" (``None``).

Parsed with PostgreSQL's own parser (pglast), read as the JSON tree its
parser writes rather than as pglast's Python objects: building those costs
ten times the parse, and a run reads two files a pair.  A migration's scope
is cached by its text: rebuilds and repeated runs in one process ask again
for the same files.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pglast import parser

from rollsafe._db import quote_ident
from rollsafe.lint import walk_nodes

#: A node of PostgreSQL's parse tree as libpg_query writes it in JSON.
Node = dict[str, Any]


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
_UNSCOPABLE = frozenset(
    {
        "DoStmt",
        "CallStmt",
        "CreateExtensionStmt",
        "AlterExtensionStmt",
        "AlterExtensionContentsStmt",
        "CreateSchemaStmt",
        "AlterObjectSchemaStmt",
        "VariableSetStmt",
        "RuleStmt",
        "CopyStmt",
        "DropOwnedStmt",
        "ReassignOwnedStmt",
        "ExecuteStmt",
        "AlterDefaultPrivilegesStmt",
        "CreateCastStmt",
        "DefineStmt",
        "CreateOpClassStmt",
        "ImportForeignSchemaStmt",
        "AlterTypeStmt",
    }
)
#: Statements a scoped snapshot follows through the names they carry.
_SCOPABLE = frozenset(
    {
        "CreateStmt",
        "AlterTableStmt",
        "IndexStmt",
        "DropStmt",
        "RenameStmt",
        "ViewStmt",
        "CreateTableAsStmt",
        "CreateSeqStmt",
        "AlterSeqStmt",
        "CreateEnumStmt",
        "AlterEnumStmt",
        "CreateDomainStmt",
        "AlterDomainStmt",
        "CompositeTypeStmt",
        "CreateRangeStmt",
        "CreateFunctionStmt",
        "AlterFunctionStmt",
        "CreateTrigStmt",
        "CreatePolicyStmt",
        "AlterPolicyStmt",
        "CommentStmt",
        "GrantStmt",
        "AlterOwnerStmt",
        "InsertStmt",
        "UpdateStmt",
        "DeleteStmt",
        "SelectStmt",
        "MergeStmt",
        "TruncateStmt",
        "TransactionStmt",
        "LockStmt",
        "ReindexStmt",
        "VacuumStmt",
        "ClusterStmt",
        "RefreshMatViewStmt",
        "CreateStatsStmt",
        "NotifyStmt",
        "ReplicaIdentityStmt",
        "AlterTableMoveAllStmt",
    }
)
#: Data statements: a call to a function that is not built in may change anything.
_DATA = frozenset({"InsertStmt", "UpdateStmt", "DeleteStmt", "SelectStmt"})
#: Statements that name a type (a list of name parts in the field given).
_TYPE_STATEMENTS = {
    "CreateEnumStmt": "typeName",
    "AlterEnumStmt": "typeName",
    "CreateDomainStmt": "domainname",
    "AlterDomainStmt": "typeName",
    "CreateRangeStmt": "typeName",
}
_RELATION_OBJECTS = frozenset(
    {
        "OBJECT_TABLE",
        "OBJECT_VIEW",
        "OBJECT_MATVIEW",
        "OBJECT_INDEX",
        "OBJECT_SEQUENCE",
        "OBJECT_FOREIGN_TABLE",
    }
)
_TYPE_OBJECTS = frozenset({"OBJECT_TYPE", "OBJECT_DOMAIN"})
_FUNCTION_OBJECTS = frozenset(
    {"OBJECT_FUNCTION", "OBJECT_PROCEDURE", "OBJECT_ROUTINE", "OBJECT_AGGREGATE"}
)
#: Objects that hang off a table and are named ``(table..., name)`` in a DROP.
_TABLE_PARTS = frozenset({"OBJECT_TRIGGER", "OBJECT_POLICY", "OBJECT_RULE"})
#: Renames that only change a relation's own objects (columns, constraints, triggers).
_RELATION_RENAMES = _RELATION_OBJECTS | {
    "OBJECT_COLUMN",
    "OBJECT_TABCONSTRAINT",
    "OBJECT_TRIGGER",
    "OBJECT_POLICY",
}


def parse_tree(text: str) -> list[Node] | None:
    """The statements of ``text`` as ``{node type: fields}`` dicts; None when it does not parse.

    libpg_query's JSON: a field typed as one node kind holds that node's
    fields directly (``"relation": {"relname": ...}``), a field that may hold
    any node wraps it in its type (``{"RangeVar": {...}}``); false, zero and
    empty fields are left out.
    """
    try:
        tree = json.loads(parser.parse_sql_json(text))
    except parser.ParseError:
        return None
    return [entry.get("stmt", {}) for entry in tree.get("stmts", [])]


def names_in(node: object) -> tuple[set[tuple[str | None, str]], set[tuple[str | None, str]]]:
    """The relations a parse tree names and the functions it calls, as (schema, name).

    A relation is a ``RangeVar`` (the only node with ``relname`` and
    ``relpersistence``), wrapped or not; a call is a ``FuncCall``.
    """
    relations: set[tuple[str | None, str]] = set()
    calls: set[tuple[str | None, str]] = set()
    for item in walk_nodes(node):
        if "relname" in item and "relpersistence" in item:
            relations.add((item.get("schemaname"), str(item["relname"])))
        call = item.get("FuncCall")
        if isinstance(call, dict):
            calls.add(_split_name(_strings(call.get("funcname"))))
    return relations, calls


def _strings(node: object) -> list[str]:
    """The parts of a qualified name (a list of ``String`` nodes)."""
    items = node if isinstance(node, list) else [node]
    parts: list[str] = []
    for item in items:
        value = item.get("String", {}).get("sval") if isinstance(item, dict) else None
        if value:
            parts.append(str(value))
    return parts


def _split_name(parts: Sequence[str]) -> tuple[str | None, str]:
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return None, parts[-1] if parts else ""


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

    The calls are kept apart so that the cache does not depend on the
    database's list of built-in functions.
    """
    statements = parse_tree(text)
    if statements is None:
        return None
    relations: set[str] = set()
    types: set[str] = set()
    functions: set[str] = set()
    calls: set[tuple[str | None, str]] = set()
    for statement in statements:
        for kind, node in statement.items():
            if kind in _UNSCOPABLE or kind not in _SCOPABLE or not isinstance(node, dict):
                return None
            if not _name_objects(kind, node, relations, types, functions):
                return None
            if kind == "CompositeTypeStmt":
                continue  # its RangeVar names a type, not a relation
            named, called = names_in(node)
            relations.update(_qualified(schema, name) for schema, name in named)
            if kind in _DATA:
                calls |= called
    return _FileScope(
        Scope(tuple(sorted(relations)), tuple(sorted(types)), tuple(sorted(functions))),
        frozenset(calls),
    )


def _name_objects(
    kind: str, node: Node, relations: set[str], types: set[str], functions: set[str]
) -> bool:
    """Add what one statement names besides its relations; False when its reach is unknown."""
    if node.get("behavior") == "DROP_CASCADE":
        return False
    if kind == "DropStmt":
        removed = node.get("removeType")
        for item in node.get("objects") or ():
            if removed in _RELATION_OBJECTS:
                relations.add(_qualified(*_split_name(_strings(_list_items(item)))))
            elif removed in _TYPE_OBJECTS:
                names = (
                    item.get("TypeName", {}).get("names", item) if isinstance(item, dict) else item
                )
                types.add(_qualified(*_split_name(_strings(names))))
            elif removed in _FUNCTION_OBJECTS:
                function = item.get("ObjectWithArgs", {}) if isinstance(item, dict) else {}
                functions.add(_split_name(_strings(function.get("objname")))[1])
            elif removed in _TABLE_PARTS:
                relations.add(_qualified(*_split_name(_strings(_list_items(item))[:-1])))
            else:
                return False
    elif kind == "RenameStmt":
        relation = node.get("relation")
        if node.get("renameType") not in _RELATION_RENAMES or not isinstance(relation, dict):
            return False
        if node.get("renameType") in _RELATION_OBJECTS and node.get("newname"):
            relations.add(_qualified(relation.get("schemaname"), node["newname"]))
    elif kind in _TYPE_STATEMENTS:
        types.add(_qualified(*_split_name(_strings(node.get(_TYPE_STATEMENTS[kind])))))
    elif kind == "CompositeTypeStmt":
        typevar = node.get("typevar")
        if isinstance(typevar, dict):
            types.add(_qualified(typevar.get("schemaname"), typevar.get("relname")))
    elif kind == "CreateFunctionStmt":
        functions.add(_split_name(_strings(node.get("funcname")))[1])
    elif kind == "AlterFunctionStmt":
        function = node.get("func")
        if not isinstance(function, dict):
            return False
        functions.add(_split_name(_strings(function.get("objname")))[1])
    return True


def _list_items(item: object) -> object:
    """The items of a ``List`` node (a dotted name in a DROP), or the node itself."""
    if isinstance(item, dict) and "List" in item:
        return item["List"].get("items", [])
    return item
