"""Seed rows generated from the catalog: a value for every column, no hand-written fixture.

Why: a pair test is only as good as the data in the database when the
migration runs, and most repositories never write a seed fixture for every
version.  On empty tables a ``NOT NULL`` column without a default, a unique
index over duplicates or a type change that cannot cast existing values all
pass.  Rows generated from what the catalog says about each table (types,
``NOT NULL``, defaults, keys, foreign keys, checks) make every state of the
chain populated without anyone writing them.

This module is the pure part: tables as read from the catalog (`Table`), and
the rows a table gets (`rows_for`), as ``INSERT`` statements a user can copy
into a fixture.  Reading the catalog and sending the rows is
`rollsafe.pairs._seeding`'s.

Deterministic: a row's values come from its serial number ``k`` alone (and
the attempt, see below), never from a clock or a random source, so the same
schema and history give the same rows and a failure reproduces.  Rules:

* identity, generated and sequence-backed (``nextval``) columns are left to
  the server;
* row ``i % 3 == 1`` takes the column's default where it has one, row
  ``i % 3 == 2`` NULL where the column is nullable (keys excepted): real
  tables hold both;
* distinct ``k`` give distinct values, so primary keys and unique
  constraints hold across rows, states and replays;
* a foreign key takes the generated key of a parent row of the same batch,
  or else a row already in the parent table (a subquery), or NULL when the
  key is nullable and the parent comes later (a cycle);
* a check constraint is first met with the literals it names (``status IN
  ('a', 'b')``); when the server refuses a row, the columns of the
  constraint it names get the next *attempt*: other values for them alone.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: How many times a table refused by a constraint is tried with other values.
ATTEMPTS = 5

#: Rows per table and state unless configured (``seed_rows``).
DEFAULT_ROWS = 3


def quote_ident(name: str) -> str:
    """``name`` as a SQL identifier, quoted only when it must be."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Column:
    """One column and what its values must be: the catalog's words, resolved to a base type."""

    name: str
    type: str  # format_type: character varying(20), public.mood, integer[]
    base: str  # the base type's name (a domain's base type): varchar, int4, mood
    category: str  # pg_type.typcategory of the base type: N, S, D, E, A, B, U, ...
    typmod: int = -1
    elem: str | None = None  # element type of an array
    elem_category: str | None = None
    labels: tuple[str, ...] = ()  # enum labels (of the type, or of an array's elements)
    not_null: bool = False
    default: str | None = None
    identity: str = ""
    generated: str = ""
    checks: tuple[str, ...] = ()  # a domain's CHECK definitions

    @property
    def by_server(self) -> bool:
        """Identity, generated and sequence columns: the server fills them, always."""
        return bool(self.identity or self.generated) or (
            self.default is not None and "nextval(" in self.default
        )


@dataclass(frozen=True)
class Constraint:
    """A primary key, unique constraint or index, foreign key or check of a table."""

    kind: str  # p, u, f, c
    columns: tuple[str, ...]
    name: str = ""
    definition: str = ""
    ref_table: str | None = None  # qualified and quoted, for foreign keys
    ref_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """A table of the schema, as generation needs it."""

    schema: str
    name: str
    columns: tuple[Column, ...]
    constraints: tuple[Constraint, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def keys(self) -> frozenset[str]:
        """Columns of a primary key or unique constraint: never a default, never NULL."""
        return frozenset(c for k in self.constraints if k.kind in ("p", "u") for c in k.columns)

    def foreign_keys(self) -> tuple[Constraint, ...]:
        return tuple(k for k in self.constraints if k.kind == "f" and k.ref_table)


@dataclass(frozen=True)
class Insert:
    """One generated row: an ``INSERT`` of literal values (or DEFAULT, NULL, a parent lookup)."""

    table: str
    columns: tuple[str, ...]
    values: tuple[str, ...]

    @property
    def sql(self) -> str:
        if not self.columns:
            return f"INSERT INTO {self.table} DEFAULT VALUES"
        names = ", ".join(quote_ident(c) for c in self.columns)
        return f"INSERT INTO {self.table} ({names}) VALUES ({', '.join(self.values)})"


@dataclass(frozen=True)
class TableRows:
    """A table's generated rows, and the literal key values children may reference."""

    table: Table
    inserts: tuple[Insert, ...]
    #: The attempt of each column that is not at 0.
    attempts: Mapping[str, int] = field(default_factory=dict, compare=False)
    #: Per row: column -> literal, for the columns a child's foreign key can copy.
    literals: tuple[Mapping[str, str], ...] = field(default=(), compare=False)


def dependency_order(tables: Sequence[Table]) -> list[Table]:
    """Parents before children (foreign keys among ``tables``), deterministically.

    A key that must hold a value (NOT NULL) orders its tables strictly; a
    nullable key only where it can, so a cycle is broken at a nullable key
    (which takes NULL, `rows_for`'s ``later``).  A self reference is
    `rows_for`'s business.
    """
    by_name = {t.qualified: t for t in tables}

    def required(table: Table, fk: Constraint) -> bool:
        return any(c.not_null for c in table.columns if c.name in fk.columns)

    def walk(order: Sequence[Table], hard_only: bool) -> list[Table]:
        done: set[str] = set()
        visiting: set[str] = set()
        result: list[Table] = []

        def visit(table: Table) -> None:
            if table.qualified in done or table.qualified in visiting:
                return
            visiting.add(table.qualified)
            for fk in table.foreign_keys():
                parent = by_name.get(fk.ref_table or "")
                wanted = not hard_only or required(table, fk)
                if parent is not None and parent is not table and wanted:
                    visit(parent)
            visiting.discard(table.qualified)
            done.add(table.qualified)
            result.append(table)

        for table in order:
            visit(table)
        return result

    return walk(walk(tables, hard_only=False), hard_only=True)


# -- values ---------------------------------------------------------------------------------------

_INT_LIMITS = {"int2": 32767, "int4": 2147483647, "int8": 9223372036854775807}
_STRING = re.compile(r"'((?:[^']|'')*)'")
_NUMBER = re.compile(r"(?<![\w.$])(-?\d+(?:\.\d+)?)(?![\w.])")


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()


def _check_literals(table: Table, column: Column) -> tuple[list[str], list[str]]:
    """String and number literals of the checks on ``column``: values those checks accept."""
    texts = [*column.checks]
    texts += [k.definition for k in table.constraints if k.kind == "c" and column.name in k.columns]
    strings: list[str] = []
    numbers: list[str] = []
    for text in texts:
        for match in _STRING.finditer(text):
            value = match.group(1).replace("''", "'")
            if value not in strings:
                strings.append(value)
        for match in _NUMBER.finditer(_STRING.sub("''", text)):
            if match.group(1) not in numbers:
                numbers.append(match.group(1))
    return strings, numbers


def _integer(k: int, strategy: int, limit: int) -> int:
    """An integer for row ``k``: strategy 0 the serial itself, then large, small, zero, negative."""
    choices = (k + 1, 100_000 + k if limit > 100_000 else 10_000 + k, k % 9 + 1, 0, -(k + 1))
    return max(-limit, min(limit, choices[strategy % len(choices)]))


def _numeric(k: int, strategy: int, typmod: int) -> str:
    if typmod < 4:
        return f"{_integer(k, strategy, 10**15)}.5"
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    whole_digits = max(precision - scale, 0)
    limit = 10**whole_digits - 1
    whole = _integer(k, strategy, limit) % (limit + 1) if limit > 0 else 0
    return f"{whole}.{'5'.ljust(scale, '0')}" if scale else str(whole)


def _length(column: Column) -> int | None:
    return column.typmod - 4 if column.base in ("varchar", "bpchar") and column.typmod > 4 else None


def _text(column: Column, k: int, strategy: int) -> str:
    choices = (f"{column.name}-{k}", f"{k}", f"{column.name.upper()}{k}", f"x{k}", "")
    value = choices[strategy % len(choices)]
    limit = _length(column)
    if limit is not None and len(value) > limit:
        value = f"{k}"[-limit:] if strategy % len(choices) != 4 else ""
    return value


def _scalar(column: Column, base: str, category: str, k: int, strategy: int) -> str | None:
    """The SQL literal of a value of ``base`` for row ``k``, or None for a type it cannot make."""
    if base in _INT_LIMITS:
        return str(_integer(k, strategy, _INT_LIMITS[base]))
    if base == "numeric":
        return _numeric(k, strategy, column.typmod)
    if base in ("float4", "float8"):
        return f"{_integer(k, strategy, 10**6)}.25"
    if base == "money":
        return quote_literal(f"{_integer(k, strategy, 10**6)}.00")
    if base == "bool":
        return "TRUE" if (k + strategy) % 2 == 0 else "FALSE"
    if base == "uuid":
        raw = _digest(column.name, k, strategy)[:16].hex()
        return quote_literal(f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-8{raw[17:20]}-{raw[20:32]}")
    day, minute = (k + 1000 * strategy) % 3650, (k * 7 + strategy) % 1440
    date = _date(day)
    if base == "date":
        return quote_literal(date)
    if base in ("timestamp", "timestamptz"):
        zone = "+00" if base == "timestamptz" else ""
        return quote_literal(f"{date} {minute // 60:02d}:{minute % 60:02d}:00{zone}")
    if base in ("time", "timetz"):
        return quote_literal(f"{minute // 60:02d}:{minute % 60:02d}:{k % 60:02d}")
    if base == "interval":
        return quote_literal(f"{_integer(k, strategy, 10**6)} minutes")
    if base in ("json", "jsonb"):
        return quote_literal(f'{{"{column.name}": {k}, "generated": true}}')
    if base == "bytea":
        return quote_literal("\\x" + _digest(column.name, k, strategy)[:8].hex())
    if base in ("inet", "cidr"):
        return quote_literal(f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}/32")
    if base in ("macaddr", "macaddr8"):
        parts = 6 if base == "macaddr" else 8
        octets = _digest(column.name, k, strategy)[:parts]
        return quote_literal(":".join(f"{b:02x}" for b in octets))
    if base in ("bit", "varbit"):
        width = column.typmod if column.typmod > 0 else 8
        return quote_literal(format(k, "b").zfill(width)[-width:])
    if base == "xml":
        return quote_literal(f"<{column.name}>{k}</{column.name}>")
    if base == "tsvector":
        return quote_literal(f"word{k}")
    if category == "S" or base in ("text", "varchar", "bpchar", "name", "citext"):
        return quote_literal(_text(column, k, strategy))
    if category == "N":
        return str(_integer(k, strategy, 32767))
    return None


def _date(day: int) -> str:
    """2024-01-01 plus ``day`` days: a fixed epoch, so values never depend on the clock."""
    return (datetime.date(2024, 1, 1) + datetime.timedelta(days=day)).isoformat()


def value_of(table: Table, column: Column, k: int, row: int, attempt: int) -> str | None:
    """The SQL of ``column``'s value in row ``k`` at ``attempt`` (None: no value can be made).

    An enum gets its labels in turn; a column a check names first gets the
    literals that check names (two attempts), then the generic values.
    """
    strings, numbers = _check_literals(table, column)
    unique = column.name in table.keys
    if column.category == "E" and column.labels:
        return quote_literal(column.labels[(k + attempt) % len(column.labels)])
    if column.category == "A":
        element = Column(
            column.name,
            column.elem or "text",
            column.elem or "text",
            column.elem_category or "S",
            labels=column.labels,
        )
        if element.category == "E" and element.labels:
            inner = element.labels[(k + attempt) % len(element.labels)]
        else:
            text = _scalar(element, element.base, element.category, k, attempt)
            if text is None:
                return None
            inner = text[1:-1].replace("''", "'") if text.startswith("'") else text
        escaped = inner.replace("\\", "\\\\").replace('"', '\\"')
        return quote_literal('{"' + escaped + '"}')
    enough = not unique or len(strings) >= 2
    if column.category == "S" and strings and attempt < 2 and enough:
        return quote_literal(strings[(row + attempt) % len(strings)])
    if column.category == "N" and numbers and attempt < 2:
        # Just inside a bound the check names: above it first (> 0, BETWEEN 1 AND 10), then
        # below it (< 100).
        bound = float(numbers[0])
        near = bound + 1 + row if attempt == 0 else bound - 1 - row
        if column.base in _INT_LIMITS or bound.is_integer():
            return str(int(near))
        return repr(near)
    strategy = attempt - 2 if (strings or numbers) else attempt
    return _scalar(column, column.base, column.category, k, max(strategy, 0))


# -- rows ---------------------------------------------------------------------------------------


def _lookup(fk: Constraint, column: str, offset: int) -> str:
    """A parent's key taken from the rows already there (the parent has no literal keys).

    Newest keys first: with sequence keys, those are the rows generated just before.
    """
    ref = fk.ref_columns[fk.columns.index(column)]
    order = ", ".join(f"{quote_ident(c)} DESC" for c in fk.ref_columns)
    skip = f" OFFSET {offset} % (SELECT greatest(count(*), 1) FROM {fk.ref_table})"
    return (
        f"(SELECT {quote_ident(ref)} FROM {fk.ref_table} ORDER BY {order} LIMIT 1"
        f"{skip if offset else ''})"
    )


def rows_for(
    table: Table,
    *,
    count: int,
    first: int,
    attempts: Mapping[str, int] | None = None,
    parents: Mapping[str, TableRows] | None = None,
    later: frozenset[str] = frozenset(),
) -> TableRows | str:
    """``count`` rows for ``table``, serial numbers from ``first``; or why none can be made.

    ``attempts`` gives columns other values than the first ones (a column
    name to its attempt).  ``parents`` holds the rows generated for other
    tables of the same batch
    (their literal keys are copied into foreign keys); ``later`` names the
    tables inserted after this one (a foreign key into them, a cycle, takes
    NULL when it may).
    """
    parents = parents or {}
    attempts = attempts or {}
    keys = table.keys
    fk_of: dict[str, Constraint] = {}
    for key in table.foreign_keys():
        for name in key.columns:
            fk_of.setdefault(name, key)
    inserts: list[Insert] = []
    literals: list[dict[str, str]] = []
    for row in range(count):
        k = first + row
        names: list[str] = []
        values: list[str] = []
        own: dict[str, str] = {}
        for column in table.columns:
            if column.by_server:
                continue
            is_key = column.name in keys
            attempt = attempts.get(column.name, 0)
            fk = fk_of.get(column.name)
            if fk is not None:
                # Children spread over the parent rows (by serial number, so a later state
                # picks other parents); a one-to-one key moves on at each attempt, any other
                # key falls back to the newest parent.
                offset = k + attempt * count if is_key else (k if attempt == 0 else 0)
                value = _foreign_value(
                    table, fk, column, (row, offset), own, literals, parents, later
                )
            elif column.default is not None and not is_key and row % 3 == 1:
                continue
            elif not column.not_null and not is_key and row % 3 == 2:
                value = "NULL"
            else:
                made = value_of(table, column, k, row, attempt)
                if made is None:
                    if column.default is not None:
                        continue
                    if not column.not_null:
                        value = "NULL"
                    else:
                        return f"no value can be generated for column {column.name} ({column.type})"
                else:
                    value = made
                    own[column.name] = made
            names.append(column.name)
            values.append(value)
        inserts.append(Insert(table.qualified, tuple(names), tuple(values)))
        literals.append(own)
    return TableRows(table, tuple(inserts), dict(attempts), tuple(literals))


def _foreign_value(
    table: Table,
    fk: Constraint,
    column: Column,
    position: tuple[int, int],
    own: Mapping[str, str],
    previous: Sequence[Mapping[str, str]],
    parents: Mapping[str, TableRows],
    later: frozenset[str],
) -> str:
    """A foreign key column's value: a parent row's key, a lookup (at an offset), or NULL."""
    row, offset = position
    nullable = all(not c.not_null for c in table.columns if c.name in fk.columns) and not any(
        c in table.keys for c in fk.columns
    )
    ref = fk.ref_columns[fk.columns.index(column.name)]
    if fk.ref_table == table.qualified:
        # A self reference: the previous row of this batch; the first row NULL, or itself.
        if row == 0:
            return "NULL" if nullable else own.get(ref) or _lookup(fk, column.name, 0)
        if ref in previous[row - 1]:
            return previous[row - 1][ref]
        return _self_previous(fk, column.name)
    if nullable and row % 3 == 2:
        return "NULL"
    if fk.ref_table in later:
        return "NULL" if nullable else _lookup(fk, column.name, 0)
    parent = parents.get(fk.ref_table or "")
    if parent is not None and parent.literals:
        chosen = parent.literals[row % len(parent.literals)]
        if all(r in chosen for r in fk.ref_columns):
            return chosen[ref]
    return _lookup(fk, column.name, offset)


def _self_previous(fk: Constraint, column: str) -> str:
    """The key of a row inserted before this one in the table (this batch's or older)."""
    ref = fk.ref_columns[fk.columns.index(column)]
    order = ", ".join(f"{quote_ident(c)} DESC" for c in fk.ref_columns)
    return f"(SELECT {quote_ident(ref)} FROM {fk.ref_table} ORDER BY {order} LIMIT 1)"
