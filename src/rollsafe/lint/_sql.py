"""SQL rules over one migration file, parsed once with PostgreSQL's own parser (pglast).

Why: whether old code keeps working on a new schema can be read off the DDL
offline — a dropped column, a new ``NOT NULL`` without a default, a renamed
table — so `rollsafe.lint` infers ``live``/``offline`` without a database.
This module is the pure part: SQL text in, rule hits (rule id, line, message)
out.  It knows nothing about files, severities or directives; those belong to
`rollsafe.lint`, which owns the rule registry.

The parse tree is libpg_query's JSON (``pglast.parser.parse_sql_json``): one C
call and one ``json.loads`` per file, with byte offsets for every statement,
which is several times faster than building pglast's Python node objects and
keeps linting a thousand files well under a second.  Results are cached by
SQL text, so the table, lint and the pair tests share one parse per file.

Objects a file creates are tracked in statement order: dropping, renaming or
indexing a table created earlier in the same file is not a hazard (no old code
knows it), while ``DROP TABLE t; CREATE TABLE t (...)`` still drops ``t``.
Names are compared without their schema (``public.t`` and ``t`` are the same
table), which is right for the single-schema services this tool targets.
"""

from __future__ import annotations

from functools import lru_cache

from rollsafe.lint._sqlparse import (
    _CONSTRAINT_KINDS,
    _RELATIONS,
    _SERIALS,
    _TYPES,
    Analysis,
    Hit,
    Node,
    _last,
    _object_name,
    _State,
    _statements,
    _strings,
    _walk_strings,
    walk_nodes,
)


def _misread_columns(elements: list[Node], line: int, state: _State) -> None:
    """CockroachDB's inline ``INDEX name (cols)`` / ``FAMILY f (cols)`` parsed as a column.

    PostgreSQL's grammar reads ``INDEX racks_room_idx (room)`` as a column
    named ``index`` of type ``racks_room_idx(room)``; a column reference is
    never a valid type modifier, so such a "column" is CockroachDB syntax the
    parser misread, and the statement counts as not analysed.
    """
    for element in elements:
        column = element.get("ColumnDef")
        if column is None:
            continue
        typmods = column.get("typeName", {}).get("typmods", ())
        if any("ColumnRef" in mod for mod in typmods):
            name = column.get("colname", "?").upper()
            state.hit(
                "not-analysed",
                state.node_line(column, line),
                f"statement not analysed (CockroachDB's inline {name} definition, which "
                "PostgreSQL reads as a column)",
                ("statement", str(line)),
            )


def _column_default(column: Node) -> tuple[bool, bool]:
    """(NOT NULL, value supplied by the database) for a column definition."""
    not_null = False
    supplied = _last(column.get("typeName", {}).get("names")) in _SERIALS
    for item in column.get("constraints", ()):
        contype = item.get("Constraint", {}).get("contype")
        if contype in ("CONSTR_NOTNULL", "CONSTR_PRIMARY"):
            not_null = True
        elif contype in ("CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"):
            supplied = True
    return not_null, supplied


def _alter_table(node: Node, line: int, state: _State) -> None:
    """Column and constraint changes; only tables that existed before the file count."""
    if node.get("objtype") not in ("OBJECT_TABLE", "OBJECT_FOREIGN_TABLE"):
        return
    table = node["relation"]["relname"]
    existing = table not in state.tables
    for wrapped in node.get("cmds", ()):
        cmd = wrapped.get("AlterTableCmd", {})
        subtype = cmd.get("subtype")
        name = cmd.get("name", "")
        column = (table, name)
        subject = ("column", f"{table}.{name}")
        definition = cmd.get("def", {})
        if subtype == "AT_AddColumn":
            coldef = definition.get("ColumnDef", {})
            colname = coldef.get("colname", "?")
            not_null, supplied = _column_default(coldef)
            state.columns[(table, colname)] = supplied
            state.created.add(("column", f"{table}.{colname}"))
            if existing and not_null:
                state.new_not_null.add(f"{table}.{colname}")
            if existing and not_null and not supplied:
                state.hit(
                    "add-not-null-column",
                    state.node_line(coldef, line),
                    f"adds NOT NULL column {table}.{colname} without a default",
                    ("column", f"{table}.{colname}"),
                )
            if existing:
                _inline_constraints(table, coldef, line, state)
        elif subtype == "AT_DropColumn":
            if existing and column not in state.columns:
                state.hit("drop-column", line, f"drops column {table}.{name}", subject)
            state.columns.pop(column, None)
        elif subtype == "AT_ColumnDefault":
            if column in state.columns and definition:
                state.columns[column] = True
        elif subtype == "AT_SetNotNull":
            _set_not_null(table, name, line, existing, state)
        elif subtype == "AT_AlterColumnType":
            new_type = _last(definition.get("ColumnDef", {}).get("typeName", {}).get("names"))
            if existing and column not in state.columns and new_type not in state.recreated:
                state.hit(
                    "change-column-type",
                    line,
                    f"changes the type of {table}.{name} to {new_type}",
                    subject,
                )
        elif subtype == "AT_AddConstraint":
            constraint = definition.get("Constraint", {})
            _add_constraint(table, constraint, line, existing, state)


#: Functions whose value differs per row: a default calling one is computed for every row.
_VOLATILE = {"nextval", "random", "gen_random_uuid", "uuid_generate_v4", "clock_timestamp"}


def _inline_constraints(table: str, coldef: Node, line: int, state: _State) -> None:
    """What an ``ADD COLUMN`` on an existing table costs beyond the column itself.

    Old code never writes the new column, so inline constraints break
    nothing; but ``UNIQUE`` and ``PRIMARY KEY`` build an index under a lock
    that blocks writes, ``REFERENCES`` locks the referenced table while the
    rows are checked, and a value computed per row (``serial``, identity,
    ``DEFAULT nextval(...)``) rewrites the whole table.
    """
    colname = coldef.get("colname", "?")
    subject = ("column", f"{table}.{colname}")
    where = state.node_line(coldef, line)
    per_row = (
        "a serial type" if _last(coldef.get("typeName", {}).get("names")) in _SERIALS else None
    )
    for item in coldef.get("constraints", ()):
        constraint = item.get("Constraint", {})
        contype = constraint.get("contype")
        if contype == "CONSTR_IDENTITY":
            per_row = "an identity"
        elif contype == "CONSTR_GENERATED":
            per_row = "a stored generated value"
        elif contype == "CONSTR_DEFAULT" and _calls_volatile(constraint.get("raw_expr")):
            per_row = "a default computed per row"
        elif contype in ("CONSTR_UNIQUE", "CONSTR_PRIMARY"):
            kind = _CONSTRAINT_KINDS[contype]
            state.hit(
                "constraint-validates-rows",
                where,
                f"inline {kind} on new column {table}.{colname} builds its index on {table} "
                "under a lock that blocks writes",
                subject,
            )
        elif contype == "CONSTR_FOREIGN":
            target = constraint.get("pktable", {}).get("relname", "?")
            state.hit(
                "constraint-validates-rows",
                where,
                f"inline REFERENCES {target} on new column {table}.{colname} locks {target} "
                f"against writes while every row of {table} is checked",
                subject,
            )
    if per_row is not None:
        state.hit(
            "add-column-rewrites-table",
            where,
            f"new column {table}.{colname} takes {per_row}: every existing row of {table} is "
            "rewritten under a lock that blocks reads and writes",
            subject,
        )


def _calls_volatile(expr: Node | None) -> bool:
    """Whether a default expression calls a function whose value differs per row."""
    return any(
        _last(node["FuncCall"].get("funcname")) in _VOLATILE
        for node in walk_nodes(expr)
        if isinstance(node.get("FuncCall"), dict)
    )


def _columns_in(constraint: Node) -> set[str]:
    """The columns of the constrained table a CHECK or FOREIGN KEY names."""
    if constraint.get("contype") == "CONSTR_FOREIGN":
        return set(_strings(constraint.get("fk_attrs")))
    return {
        _last(node["ColumnRef"].get("fields"))
        for node in walk_nodes(constraint.get("raw_expr"))
        if isinstance(node.get("ColumnRef"), dict)
    }


def _set_not_null(table: str, name: str, line: int, existing: bool, state: _State) -> None:
    """SET NOT NULL: old code may write NULL, or omit a column added in this file."""
    if not existing:
        return
    column = (table, name)
    subject = ("column", f"{table}.{name}")
    if column not in state.columns:
        state.hit("set-not-null", line, f"sets NOT NULL on existing column {table}.{name}", subject)
    elif not state.columns[column]:
        state.hit(
            "set-not-null",
            line,
            f"sets NOT NULL on {table}.{name}, added earlier in this file without a default "
            "(old code's inserts omit it)",
            subject,
        )


def _add_constraint(table: str, constraint: Node, line: int, existing: bool, state: _State) -> None:
    """CHECK/UNIQUE/FK/PK/EXCLUDE on an existing table: old writes can violate it."""
    contype = constraint.get("contype", "")
    if contype == "CONSTR_NOTNULL":
        for key in _strings(constraint.get("keys")):
            _set_not_null(table, key, line, existing, state)
        return
    kind = _CONSTRAINT_KINDS.get(contype)
    if kind is None or not existing:
        return
    line = state.node_line(constraint, line)
    name = constraint.get("conname") or f"{kind.lower()} on {table}"
    subject = ("constraint", f"{table}.{name}")
    if constraint.get("indexname"):
        # USING INDEX: the unique index already enforces the rule (it was
        # reported when it was created); promoting it scans nothing.
        return
    not_valid = bool(constraint.get("skip_validation"))
    if contype in ("CONSTR_CHECK", "CONSTR_FOREIGN"):
        columns = _columns_in(constraint)
        if columns and all((table, column) in state.columns for column in columns):
            # Every column it names was added earlier in this file: old code never
            # writes them, so it cannot violate the constraint.  What stays is the
            # cost: a foreign key locks the table it references while rows are
            # checked; a CHECK over columns that hold only NULL passes every row.
            fresh_nulls = not any(state.columns[(table, column)] for column in columns)
            if not not_valid and (contype == "CONSTR_FOREIGN" or not fresh_nulls):
                state.hit(
                    "constraint-validates-rows",
                    line,
                    f"{kind} constraint {name} on columns added in this file still checks "
                    f"every row of {table} under a lock that blocks writes",
                    subject,
                )
            return
    if not_valid:
        detail = (
            "added NOT VALID: existing rows are not checked, but old code's writes can "
            "still violate it"
        )
    else:
        detail = (
            "existing rows that violate it fail the migration, and old code's writes can violate it"
        )
    state.hit(
        "add-constraint", line, f"adds {kind} constraint {name} on {table}: {detail}", subject
    )
    if not not_valid:
        how = (
            "validates every existing row"
            if contype in ("CONSTR_CHECK", "CONSTR_FOREIGN")
            else "builds its index"
        )
        state.hit(
            "constraint-validates-rows",
            line,
            f"{kind} constraint {name} {how} on {table} under a lock that blocks writes",
            subject,
        )


def _drop(node: Node, line: int, state: _State) -> None:
    remove = node.get("removeType", "")
    objects = node.get("objects", ())
    if remove in _RELATIONS or remove == "OBJECT_SCHEMA":
        kind = _RELATIONS.get(remove, "schema")
        for obj in objects:
            name = _object_name(obj)
            if name in state.tables:
                state.tables.discard(name)
                continue
            hit = Hit("drop-table", line, f"drops {kind} {name}", ("table", name))
            if remove in ("OBJECT_VIEW", "OBJECT_MATVIEW"):
                # DROP VIEW v; CREATE VIEW v ... replaces a view: decided at the end.
                state.deferred.append((hit, f"view:{name}"))
            else:
                state.hits.append(hit)
    elif remove in _TYPES:
        for obj in objects:
            name = _object_name(obj)
            if name in state.types:
                state.types.discard(name)
                continue
            state.vacated.add(name)
            hit = Hit("drop-type", line, f"drops {_TYPES[remove]} {name}", ("type", name))
            state.deferred.append((hit, f"type:{name}"))
    elif remove == "OBJECT_INDEX" and not node.get("concurrent"):
        for obj in objects:
            name = _object_name(obj)
            if name in state.indexes:
                state.indexes.discard(name)
                continue
            state.hit(
                "index-not-concurrent",
                line,
                f"drops index {name} without CONCURRENTLY",
                ("index", name),
            )


def _rename(node: Node, line: int, state: _State) -> None:
    kind = node.get("renameType", "")
    new = node.get("newname", "?")
    if kind in _RELATIONS:
        old = node["relation"]["relname"]
        if old in state.tables:
            state.tables.add(new)
            return
        hit = Hit(
            "rename-table", line, f"renames {_RELATIONS[kind]} {old} to {new}", ("table", old)
        )
        # ALTER TABLE t RENAME TO u; CREATE VIEW t AS SELECT ... FROM u keeps old code working.
        state.deferred.append((hit, f"compat-view:{old}"))
    elif kind == "OBJECT_COLUMN":
        table = node["relation"]["relname"]
        old = node.get("subname", "?")
        if table in state.tables:
            return
        if (table, old) in state.columns:
            state.columns[(table, new)] = state.columns.pop((table, old))
            return
        state.hit(
            "rename-column",
            line,
            f"renames column {table}.{old} to {new}",
            ("column", f"{table}.{old}"),
        )
    elif kind in _TYPES:
        old = _object_name(node.get("object", {}))
        if old in state.types:
            state.types.add(new)
            return
        state.vacated.add(old)
        state.type_renames[new] = old
        hit = Hit("drop-type", line, f"renames type {old} to {new}", ("type", old))
        state.deferred.append((hit, f"type:{old}"))


def _create_enum(node: Node, line: int, state: _State) -> None:
    name = _last(node.get("typeName"))
    if name in state.vacated:
        labels = ", ".join(repr(v) for v in _strings(node.get("vals")))
        state.recreated.add(name)
        state.hit(
            "drop-enum-value",
            line,
            f"re-creates enum type {name} ({labels}) in place of the existing one: every "
            "label missing from the new list is dropped",
            ("enum", name),
        )
    state.types.add(name)
    state.created.add(("type", name))


def _alter_enum(node: Node, line: int, state: _State) -> None:
    name = _last(node.get("typeName"))
    if name in state.types:
        return
    new = node.get("newVal")
    old = node.get("oldVal")
    if old:
        state.hit(
            "drop-enum-value",
            line,
            f"renames value {old!r} of enum type {name} to {new!r}: {old!r} no longer exists",
            ("enum", name),
        )
    elif new:
        state.new_labels[new] = (name, line, state.index)
        state.created.add(("enum", name))


def _pg_enum_write(node: Node, line: int, state: _State, verb: str) -> None:
    if node.get("relation", {}).get("relname") == "pg_enum":
        state.hit(
            "drop-enum-value",
            line,
            f"{verb} pg_enum directly (drops or renames enum labels behind PostgreSQL's back)",
            ("enum", "pg_enum"),
        )


def _check_labels(stmt: Node, line: int, state: _State) -> None:
    """A label added earlier in this file used again before the file's transaction commits."""
    for value in sorted(set(_walk_strings(stmt))):
        added = state.new_labels.get(value)
        if added is not None and added[2] < state.index:
            state.hit(
                "enum-value-same-transaction",
                line,
                f"uses enum value {value!r} added to {added[0]} on line {added[1]} in the "
                "same transaction",
                ("enum-label", f"{added[0]}.{value}"),
            )


def _statement(stmt: Node, line: int, state: _State) -> None:
    """Apply the rules to one statement and record what it creates."""
    ((kind, node),) = stmt.items()
    if state.new_labels:
        _check_labels(node, line, state)
    if kind == "CreateStmt":
        name = node["relation"]["relname"]
        state.tables.add(name)
        state.created.add(("table", name))
        _misread_columns(node.get("tableElts", ()), line, state)
    elif kind == "CreateTableAsStmt":
        name = node["into"]["rel"]["relname"]
        state.tables.add(name)
        state.created.add(("table", name))
    elif kind == "ViewStmt":
        name = node["view"]["relname"]
        state.tables.add(name)
        state.views.add(name)
        state.created.add(("table", name))
    elif kind == "IndexStmt":
        _index(node, line, state)
    elif kind == "DropStmt":
        _drop(node, line, state)
    elif kind == "RenameStmt":
        _rename(node, line, state)
    elif kind == "AlterTableStmt":
        _alter_table(node, line, state)
    elif kind == "CreateEnumStmt":
        _create_enum(node, line, state)
    elif kind == "AlterEnumStmt":
        _alter_enum(node, line, state)
    elif kind in ("CompositeTypeStmt", "CreateDomainStmt", "CreateRangeStmt"):
        name = (
            node["typevar"]["relname"]
            if kind == "CompositeTypeStmt"
            else _last(node.get("domainname") or node.get("typeName"))
        )
        state.types.add(name)
        state.created.add(("type", name))
    elif kind == "DeleteStmt":
        _pg_enum_write(node, line, state, "deletes from")
    elif kind == "UpdateStmt":
        _pg_enum_write(node, line, state, "updates")
    elif kind == "TransactionStmt" and node.get("kind") == "TRANS_STMT_COMMIT":
        state.new_labels.clear()  # an explicit COMMIT makes the new labels usable
    elif kind == "DoStmt":
        state.hit(
            "not-analysed",
            line,
            "DO block not analysed (statements inside procedural code are not read)",
            ("statement", str(line)),
        )


def _index(node: Node, line: int, state: _State) -> None:
    table = node["relation"]["relname"]
    name = node.get("idxname") or f"index on {table}"
    state.indexes.add(name)
    state.created.add(("index", name))
    if table in state.tables:
        return
    if not node.get("concurrent"):
        state.hit(
            "index-not-concurrent",
            line,
            f"creates index {name} on existing table {table} without CONCURRENTLY",
            ("index", name),
        )
    if node.get("unique"):
        state.hit(
            "add-constraint",
            line,
            f"creates unique index {name} on existing table {table}: duplicates in existing "
            "rows fail the migration, and old code's writes can violate it",
            ("index", name),
        )


def _resolve(state: _State) -> None:
    """Keep or drop the hits whose safety depended on later statements."""
    for hit, key in state.deferred:
        kind, _, name = key.partition(":")
        if kind == "view" and name in state.views:
            continue  # dropped and re-created: the view is replaced, not removed
        if kind == "compat-view" and name in state.views:
            continue  # a view under the old name keeps old code reading and writing
        if kind == "type":
            # The rename-and-recreate of an enum is reported once, as drop-enum-value.
            original = state.type_renames.get(name, name)
            if name in state.recreated or original in state.recreated:
                continue
        state.hits.append(hit)


@lru_cache(maxsize=8192)
def analyse(sql: str) -> Analysis:
    """Run every SQL rule over one file's text (cached by text: the rules are pure)."""
    data = sql.encode()
    state = _State(data=data)
    count = 0
    for index, stmt, offset, base in _statements(sql, data, state):
        state.index, state.base, count = index, base, count + 1
        _statement(stmt, state.line_at(offset), state)
    _resolve(state)
    hits = tuple(sorted(state.hits, key=lambda h: h.line))
    return Analysis(
        hits=hits,
        created=frozenset(state.created),
        statements=count,
        new_not_null=frozenset(state.new_not_null),
    )
