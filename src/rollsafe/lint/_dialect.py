"""CockroachDB-only SQL in a migration file: which construct, on which line.

Why: a migration folder written for CockroachDB (``STRING`` columns, ``@``
index hints, ``INDEX`` inside ``CREATE TABLE``) fails on PostgreSQL at its
first file, and every upgrade pair then reports that file as broken when
only the engine is wrong.  Recognising the dialect from the text lets lint
mark such files and lets the pair tests stop before they start a server,
with one line that names the file, the line and the engine to use.

Two sources, as PostgreSQL's own parser (pglast) sees the file:

* statements the parser reads: type names PostgreSQL does not have
  (``STRING``, ``BYTES``, ``BLOB``, ``INT64``), and CockroachDB's inline
  ``INDEX name (cols)`` / ``FAMILY name (cols)``, which PostgreSQL's grammar
  misreads as a column named ``index`` whose type modifier is a column;
* statements the parser refuses: the tokens of a short list of constructs
  (``UPSERT``, ``table@index`` hints, ``INDEX``/``UNIQUE INDEX``/
  ``INVERTED INDEX``/``FAMILY`` as an element of ``CREATE TABLE``,
  ``STORING (...)`` or ``COVERING (...)``, the type names above).  A refused statement that
  matches none of them is a plain syntax error, not CockroachDB: it is not
  reported here (lint's ``not-analysed`` covers it).

``INT8``, ``INT4``, ``FLOAT8`` and ``BOOL`` are PostgreSQL names too and are
not reported.  (That a bare ``INT`` is 64 bits on CockroachDB and 32 on
PostgreSQL changes values, not whether the SQL runs.)

Sources (cockroachdb/docs and cockroachdb/cockroach): ``src/current/v23.1/string.md``
(``STRING``), ``src/current/v24.1/bytes.md`` (``BYTES``, aliases ``BYTEA``
and ``BLOB``), ``v2.1/int.md`` (``INT64`` among ``INT``'s aliases),
``_includes/v21.1/misc/force-index-selection.md`` (``table@idx`` and
``table@{FORCE_INDEX=idx}``), cockroach ``docs/RFCS/select_from_index.md``
(``INDEX`` inside ``CREATE TABLE``), ``src/current/v25.2/column-families.md``
(``FAMILY``), ``v21.1/create-index.md`` (``STORING`` / ``COVERING``),
``v21.1/upsert.md``.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pglast.parser import ParseError, parse_sql_json, scan

from rollsafe._sqltext import mentions_word
from rollsafe.lint._sqlparse import _DATA_ONLY, _first_word, _statement_slices, walk_nodes
from rollsafe.migrate import Migration

#: CockroachDB type names PostgreSQL does not know (lower case) -> how they are shown.
COCKROACH_TYPES = {"string": "STRING", "bytes": "BYTES", "blob": "BLOB", "int64": "INT64"}


#: A file with none of these words and no ``@`` holds no construct this module reports
#: (a superset: words in strings and comments count; column definitions need CREATE or
#: ALTER), so a bulk load of INSERTs is not parsed.
_DIALECT_WORDS = (*COCKROACH_TYPES, "upsert", "storing", "covering", "create", "alter")

_NAME_KINDS = ("NO_KEYWORD", "UNRESERVED_KEYWORD", "COL_NAME_KEYWORD", "TYPE_FUNC_NAME_KEYWORD")
_OPEN, _CLOSE, _COMMA = "ASCII_40", "ASCII_41", "ASCII_44"


@dataclass(frozen=True)
class DialectUse:
    """One CockroachDB-only construct: the 1-based line of the file and what it is."""

    line: int
    construct: str


def _from_tree(stmts: Sequence[Any], data: bytes, first_line: int) -> list[DialectUse]:
    """Constructs in statements PostgreSQL parsed (``data`` is the text they were parsed from)."""
    found: list[DialectUse] = []

    newlines: list[int] | None = None

    def line(location: object) -> int:
        # Newlines found once per text, then bisected: a count from the top for every
        # node made a file of 75,000 statements quadratic.
        nonlocal newlines
        if newlines is None:
            newlines = [match.start() for match in re.finditer(b"\n", data)]
        offset = location if isinstance(location, int) and location >= 0 else 0
        return first_line + bisect_left(newlines, offset)

    for node in walk_nodes(stmts):
        # A TypeName is inline under ColumnDef/TypeCast ("typeName"), wrapped elsewhere.
        type_name = node.get("typeName", node.get("TypeName"))
        if isinstance(type_name, dict):
            names = [n["String"]["sval"] for n in type_name.get("names", ()) if "String" in n]
            qualified = len(names) > 1 and names[0] == "pg_catalog"
            if names and not qualified and names[-1].lower() in COCKROACH_TYPES:
                shown = COCKROACH_TYPES[names[-1].lower()]
                found.append(DialectUse(line(type_name.get("location")), f"{shown} type"))
        column = node.get("ColumnDef")
        if isinstance(column, dict):
            typmods = column.get("typeName", {}).get("typmods", ())
            if any(isinstance(mod, dict) and "ColumnRef" in mod for mod in typmods):
                name = str(column.get("colname", "?")).upper()
                where = line(column.get("location"))
                found.append(DialectUse(where, f"{name} inside CREATE TABLE"))
    return found


def _from_tokens(text: str, first_line: int) -> list[DialectUse]:
    """Constructs in a statement PostgreSQL refused, recognised from its tokens."""
    try:
        tokens = [t for t in scan(text) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    except ParseError:
        return []
    words = [text[t.start : t.end + 1] for t in tokens]
    lower = [w.lower() for w in words]
    found: list[DialectUse] = []

    def at(index: int, construct: str) -> None:
        found.append(DialectUse(first_line + text.count("\n", 0, tokens[index].start), construct))

    def is_name(index: int) -> bool:
        return 0 <= index < len(tokens) and tokens[index].kind in _NAME_KINDS

    create_table = len(tokens) > 1 and lower[0] == "create" and "table" in lower[1:5]
    depth = 0
    for i, token in enumerate(tokens):
        if token.name == _OPEN:
            depth += 1
        elif token.name == _CLOSE:
            depth -= 1
        word = lower[i]
        after = lower[i + 1] if i + 1 < len(tokens) else ""
        if i == 0 and word == "upsert":
            at(i, "UPSERT statement")
        elif token.name == "Op" and word == "@" and is_name(i - 1) and i + 1 < len(tokens):
            at(i, "@ index hint")
        elif word in ("storing", "covering") and after == "(":
            at(i, "STORING clause")
        elif word in COCKROACH_TYPES and (
            is_name(i - 1) or (i > 0 and tokens[i - 1].name == "TYPECAST")
        ):
            at(i, f"{COCKROACH_TYPES[word]} type")
        elif (
            create_table
            and depth == 1
            and i > 0
            and tokens[i - 1].name in (_OPEN, _COMMA)
            and _table_element(lower, tokens, i) is not None
        ):
            at(i, f"{_table_element(lower, tokens, i)} inside CREATE TABLE")
    return found


def _table_element(lower: list[str], tokens: Sequence[Any], i: int) -> str | None:
    """``INDEX``, ``UNIQUE INDEX``, ``INVERTED INDEX`` or ``FAMILY`` starting a table element.

    A column may be named ``index`` or ``family`` on PostgreSQL, so the word
    only counts when an index or family shape follows: ``(`` or a plain
    identifier and ``(``.
    """
    head = lower[i]
    j = i + 1
    if head in ("unique", "inverted") and j < len(lower) and lower[j] == "index":
        head, j = f"{head} index", j + 1
    if head not in ("index", "unique index", "inverted index", "family"):
        return None
    if j < len(lower) and lower[j] == "(":
        return head.upper()
    plain = j < len(tokens) and tokens[j].name == "IDENT"
    if plain and j + 1 < len(lower) and lower[j + 1] == "(":
        return head.upper()
    return None


@lru_cache(maxsize=1024)
def cockroach_sql(sql: str) -> tuple[DialectUse, ...]:
    """Every CockroachDB-only construct of a file, in file order (empty: plain PostgreSQL).

    The file is split into statements (by PostgreSQL's parser, else its
    scanner) and each is read by the parser or, when refused, by its tokens.
    Data statements (INSERT, SELECT, VALUES) without an ``@`` or a
    CockroachDB type name cannot hold a construct and are not parsed, so a
    5 MB bulk load costs the split.
    """
    if "@" not in sql and not mentions_word(sql, _DIALECT_WORDS):
        return ()  # every construct found below needs one of these
    types = mentions_word(sql, COCKROACH_TYPES)
    try:
        slices = _statement_slices(sql, with_parser=True)
    except ParseError:
        try:
            slices = _statement_slices(sql, with_parser=False)
        except ParseError:
            return ()
    found: list[DialectUse] = []
    first_line, counted = 1, 0  # lines counted from the previous piece on: one pass
    for piece in slices:
        text = sql[piece.start : piece.stop]
        plain = "@" not in text and not (types and mentions_word(text, COCKROACH_TYPES))
        if plain and _first_word(text) in _DATA_ONLY:
            continue
        first_line, counted = first_line + sql.count("\n", counted, piece.start), piece.start
        try:
            stmts = json.loads(parse_sql_json(text)).get("stmts", ())
        except ParseError:
            found.extend(_from_tokens(text, first_line))
        else:
            found.extend(_from_tree(stmts, text.encode(), first_line))
    return tuple(sorted(found, key=_order))


def _order(use: DialectUse) -> tuple[int, str]:
    return (use.line, use.construct)


def files_needing_cockroach(
    migration: Migration,
) -> Iterator[tuple[str, tuple[DialectUse, ...]]]:
    """``(path, uses)`` of the up file, then the down file, where they use CockroachDB."""
    for path, sql in (
        (migration.up_path, migration.up_sql),
        (migration.down_path, migration.down_sql),
    ):
        if path is not None and sql is not None:
            uses = cockroach_sql(sql)
            if uses:
                yield path, uses


def summary(uses: Sequence[DialectUse]) -> str:
    """``STRING type (line 3), @ index hint (line 9)``: each construct once, first line first."""
    first: dict[str, int] = {}
    for use in uses:
        first.setdefault(use.construct, use.line)
    return ", ".join(f"{construct} (line {line})" for construct, line in first.items())


__all__ = ["COCKROACH_TYPES", "DialectUse", "cockroach_sql", "files_needing_cockroach", "summary"]
