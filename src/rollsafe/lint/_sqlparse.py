"""One migration file parsed with pglast: its statements with their lines, and what lint collects.

Why: every SQL rule walks the same parse; parsing once, with each
statement's line and the statements the parser refuses, keeps the rules
small and makes unread SQL visible instead of silently safe.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pglast.parser import ParseError, parse_sql_json, split

#: A JSON node of libpg_query's parse tree.
Node = dict[str, Any]


#: Relation kinds that old code reads and writes by name.
_RELATIONS = {
    "OBJECT_TABLE": "table",
    "OBJECT_VIEW": "view",
    "OBJECT_MATVIEW": "materialized view",
    "OBJECT_FOREIGN_TABLE": "foreign table",
}


_TYPES = {"OBJECT_TYPE": "type", "OBJECT_DOMAIN": "domain"}


#: Column types that carry their own default (a sequence), so NOT NULL is satisfied.
_SERIALS = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}


_CONSTRAINT_KINDS = {
    "CONSTR_CHECK": "CHECK",
    "CONSTR_UNIQUE": "UNIQUE",
    "CONSTR_PRIMARY": "PRIMARY KEY",
    "CONSTR_FOREIGN": "FOREIGN KEY",
    "CONSTR_EXCLUSION": "EXCLUDE",
}


@dataclass(frozen=True)
class Hit:
    """One rule firing on one statement.

    ``subject`` names the object concerned (``("column", "machines.arch")``)
    so a down file's hits on objects its up file created can be recognised as
    the expected undo.
    """

    rule: str
    line: int
    message: str
    subject: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class Analysis:
    """What the rules found in one file, and which objects the file creates."""

    hits: tuple[Hit, ...]
    created: frozenset[tuple[str, str]]
    statements: int
    #: ``table.column`` of NOT NULL columns added to tables that existed before the file:
    #: code built for the new schema writes and reads them (a default only spares old
    #: code), so it fails once the migration is undone.
    new_not_null: frozenset[str] = frozenset()


@dataclass
class _State:
    """What earlier statements of the file did, in order."""

    data: bytes
    tables: set[str] = field(default_factory=set)
    views: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    indexes: set[str] = field(default_factory=set)
    #: (table, column) -> the column has a default (so old inserts that omit it still work).
    columns: dict[tuple[str, str], bool] = field(default_factory=dict)
    #: Existing types whose name was freed in this file (dropped or renamed away).
    vacated: set[str] = field(default_factory=set)
    #: New name -> old name of existing types renamed in this file.
    type_renames: dict[str, str] = field(default_factory=dict)
    #: Enum types re-created under a vacated name (the rename-and-recreate pattern).
    recreated: set[str] = field(default_factory=set)
    #: Enum labels added to existing types: label -> (type, line, statement index).
    new_labels: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    #: 0-based index of the statement being checked.
    index: int = 0
    #: Byte offset that node locations of the current statement are relative to
    #: (non-zero when the file was parsed statement by statement).
    base: int = 0
    #: Objects whose undo in a down file is expected.
    created: set[tuple[str, str]] = field(default_factory=set)
    #: NOT NULL columns added to existing tables (``Analysis.new_not_null``).
    new_not_null: set[str] = field(default_factory=set)
    hits: list[Hit] = field(default_factory=list)
    #: Hits dropped at the end when a later statement shows the safe pattern.
    deferred: list[tuple[Hit, str]] = field(default_factory=list)
    #: Byte offsets of every newline, found once: a line lookup is then a
    #: bisection, so a file of 75,000 statements costs one pass, not one a statement.
    newlines: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.newlines = [match.start() for match in re.finditer(b"\n", self.data)]

    def line_at(self, offset: int) -> int:
        """1-based line of a byte offset."""
        return bisect_left(self.newlines, offset) + 1

    def node_line(self, node: Node, default: int) -> int:
        """Line of a node that carries a ``location``, else ``default``."""
        location = node.get("location")
        return self.line_at(self.base + location) if isinstance(location, int) else default

    def hit(self, rule: str, line: int, message: str, subject: tuple[str, str]) -> None:
        self.hits.append(Hit(rule, line, message, subject))


def _skip_noise(data: bytes, pos: int) -> int:
    """First byte at or after ``pos`` that is not whitespace or a comment.

    A statement's location starts right after the previous ``;``, so it
    includes the comment block above it; findings should point at the
    statement itself.
    """
    end = len(data)
    while pos < end:
        char = data[pos : pos + 1]
        if char.isspace():
            pos += 1
        elif data.startswith(b"--", pos):
            newline = data.find(b"\n", pos)
            pos = end if newline < 0 else newline + 1
        elif data.startswith(b"/*", pos):
            depth, pos = 1, pos + 2
            while pos < end and depth:
                if data.startswith(b"/*", pos):
                    depth, pos = depth + 1, pos + 2
                elif data.startswith(b"*/", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
        else:
            break
    return pos


def _strings(items: list[Node] | None) -> list[str]:
    """The ``sval`` of a list of ``String`` nodes (a qualified name)."""
    return [item["String"]["sval"] for item in items or () if "String" in item]


def _last(items: list[Node] | None) -> str:
    names = _strings(items)
    return names[-1] if names else "?"


def _object_name(node: Node) -> str:
    """The unqualified name of a DropStmt/RenameStmt object (List, TypeName or String)."""
    if "List" in node:
        return _last(node["List"].get("items"))
    if "TypeName" in node:
        return _last(node["TypeName"].get("names"))
    if "String" in node:
        return str(node["String"]["sval"])
    return "?"


def walk_nodes(node: object) -> Iterator[Node]:
    """Every dict of a JSON parse tree, depth first (rules and scopes search the whole tree)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _walk_strings(node: Any) -> Iterator[str]:
    """Every string constant in a subtree (to spot uses of a new enum label)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            const = item.get("A_Const")
            if isinstance(const, dict) and "sval" in const:
                yield str(const["sval"].get("sval", ""))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


_NON_ASCII = re.compile(rb"[\x80-\xff]")


@dataclass(frozen=True)
class _Slice:
    """Where one statement of a text is: character offsets, and the byte offset of its start."""

    start: int
    stop: int
    byte_start: int


@lru_cache(maxsize=64)
def _statement_slices(sql: str, *, with_parser: bool) -> tuple[_Slice, ...]:
    """The statements of ``sql`` as found by PostgreSQL's parser (or scanner), in one pass.

    Why not ``pglast.split(..., only_slices=True)`` directly: it maps byte
    offsets to characters with a search over every multibyte character, so a
    large file with non-ASCII text costs the square of its size.  PostgreSQL
    reads every byte above 0x7F as a letter of an identifier (or as part of
    the literal or comment around it), so splitting an ASCII stand-in with
    each such byte replaced by ``x`` finds the same statements at the same
    byte offsets; characters are then counted once, front to back.  Raises
    pglast's ``ParseError``.
    """
    if sql.isascii():
        pieces = split(sql, with_parser=with_parser, only_slices=True)
        return tuple(_Slice(piece.start, piece.stop, piece.start) for piece in pieces)
    data = sql.encode()
    stand_in = _NON_ASCII.sub(b"x", data).decode("ascii")
    result: list[_Slice] = []
    chars = done = 0
    for piece in split(stand_in, with_parser=with_parser, only_slices=True):
        chars += len(data[done : piece.start].decode())
        done = piece.start
        length = len(data[piece.start : piece.stop].decode())
        result.append(_Slice(chars, chars + length, piece.start))
    return tuple(result)


#: Statements no rule reads unless an enum label was added earlier in the file
#: (``enum-value-same-transaction`` looks at their string constants).  Bulk data
#: loads are made of them, so skipping their parse trees keeps a 5 MB file of
#: INSERTs as cheap as the split.
_DATA_ONLY = frozenset({"insert", "select", "values"})


_FIRST_WORD = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*([A-Za-z]+)", re.S)


def _first_word(text: str) -> str:
    match = _FIRST_WORD.match(text)
    return match.group(1).lower() if match else ""


def _statements(sql: str, data: bytes, state: _State) -> Iterator[tuple[int, Node, int, int]]:
    """Parsed statements, in order: (index, statement, byte offset of its first token, base).

    ``base`` is the byte offset its node locations are relative to.  The file
    is split with PostgreSQL's parser, else with its scanner, and each
    statement is parsed on its own, so one line of CockroachDB-only syntax
    costs one ``not-analysed`` finding, not the file, and statements no rule
    reads (``_DATA_ONLY``) are never turned into trees.  A generator, because
    whether a data statement is read depends on the statements before it.
    """
    try:
        slices = _statement_slices(sql, with_parser=True)
        by_parser = True
    except ParseError:
        by_parser = False
        try:
            slices = _statement_slices(sql, with_parser=False)
        except ParseError as exc:
            start = _skip_noise(data, 0)
            state.hit(
                "not-analysed",
                state.line_at(start),
                f"the file cannot be split into statements ({exc.args[0]}); none of it is analysed",
                ("statement", "file"),
            )
            return
    for index, piece in enumerate(slices):
        text, base = sql[piece.start : piece.stop], piece.byte_start
        if by_parser and not state.new_labels and _first_word(text) in _DATA_ONLY:
            continue
        try:
            parsed = json.loads(parse_sql_json(text))
        except ParseError as exc:
            line = state.line_at(_skip_noise(data, base))
            state.hit(
                "not-analysed",
                line,
                f"statement not analysed ({exc.args[0]})",
                ("statement", str(line)),
            )
            continue
        for raw in parsed.get("stmts", ()):
            if "stmt" in raw:
                offset = base + raw.get("stmt_location", 0)
                yield index, raw["stmt"], _skip_noise(data, offset), base


def _strip_locations(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _strip_locations(value)
            for key, value in node.items()
            if key not in ("location", "stmt_location", "stmt_len")
        }
    if isinstance(node, list):
        return [_strip_locations(item) for item in node]
    return node


@lru_cache(maxsize=1024)
def statements_key(sql: str) -> str | None:
    """The file's statements without comments and layout; None when it does not parse.

    Two texts with the same key run the same statements, so an edit that only
    touched comments, directives or whitespace changes nothing in a database.
    """
    try:
        parsed = json.loads(parse_sql_json(sql))
    except ParseError:
        return None
    return json.dumps(_strip_locations(parsed.get("stmts", [])), sort_keys=True)
