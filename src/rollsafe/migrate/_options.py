"""golang-migrate's ``x-`` URL options and state-table naming, read as its postgres driver does.

Why: the same URL must name the same state table and run files the same
way in a Go component and here.  golang-migrate's postgres driver reads
``x-migrations-table`` as one table name in the current schema, dots
included, unless ``x-migrations-table-quoted`` is true, when it reads
``"schema"."table"``; an option rollsafe cannot honour is refused with one
line, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rollsafe.errors import ConfigError

#: Go's ``strconv.ParseBool``.
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
#: The postgres driver's ``"(.*?)"`` over the quoted table option.
_QUOTED_PART = re.compile(r'"(.*?)"')

KNOWN_OPTIONS = (
    "x-migrations-table",
    "x-migrations-table-quoted",
    "x-statement-timeout",
    "x-multi-statement",
    "x-multi-statement-max-size",
    "x-lock-table",
    "x-force-lock",
)


@dataclass(frozen=True)
class TableName:
    """The state table: its schema (None: ``current_schema()``) and its name."""

    schema: str | None
    name: str


@dataclass(frozen=True)
class UrlOptions:
    """What the ``x-`` options of a golang-migrate URL ask for."""

    table: TableName | None = None
    lock_table: str | None = None
    statement_timeout: float | None = None  # seconds; None: no limit


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"bad {key} value `{value}`", fix="give true or false (as Go's ParseBool)")


def _integer(key: str, value: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise ConfigError(f"bad {key} value `{value}`", fix="give a whole number")
    return int(value)


def table_name(text: str, *, quoted: bool) -> TableName:
    """golang-migrate's reading of a migrations-table name.

    Unquoted, the text is one identifier, dots and all (``a.b`` is the table
    ``"a.b"`` in the current schema).  Quoted, ``"schema"."table"`` or
    ``"table"``; more parts are refused as golang-migrate refuses them.
    """
    if not quoted:
        return TableName(schema=None, name=text)
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise ConfigError(
            f"x-migrations-table must be quoted when x-migrations-table-quoted is on: `{text}`",
            fix='write it as "schema"."table" (URL-encoded in a URL)',
        )
    parts = _QUOTED_PART.findall(text)
    if len(parts) > 2:
        raise ConfigError(
            f"migrations table `{text}` contains too many dot characters",
            fix='give "schema"."table" or "table"',
        )
    return TableName(schema=parts[0] if len(parts) == 2 else None, name=parts[-1])


def url_options(options: Mapping[str, str]) -> UrlOptions:
    """Read and check the ``x-`` options of a URL (`rollsafe._db.Target.options`)."""
    unknown = sorted(set(options) - set(KNOWN_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown golang-migrate URL option `{unknown[0]}`",
            fix=f"remove it; known: {', '.join(KNOWN_OPTIONS)}",
        )
    if _bool("x-multi-statement", options.get("x-multi-statement") or "false"):
        raise ConfigError(
            "x-multi-statement=true is not supported: golang-migrate then cuts the file at every "
            "`;` (inside strings and function bodies too) and commits each piece alone",
            fix="drop the option (the file then runs as one query, as golang-migrate's default), "
            "or declare `-- transaction: per-statement` in the file",
        )
    if options.get("x-multi-statement-max-size"):
        # Only read by golang-migrate with x-multi-statement on, which is refused above.
        _integer("x-multi-statement-max-size", options["x-multi-statement-max-size"])
    if _bool("x-force-lock", options.get("x-force-lock") or "false"):
        raise ConfigError(
            "x-force-lock=true is not supported: it would migrate while another migrator holds "
            "the lock",
            fix="drop the option; delete a stale lock row by hand after checking none runs",
        )
    quoted = _bool("x-migrations-table-quoted", options.get("x-migrations-table-quoted") or "false")
    table = options.get("x-migrations-table") or None
    timeout = options.get("x-statement-timeout") or ""
    milliseconds = _integer("x-statement-timeout", timeout) if timeout else 0
    return UrlOptions(
        table=table_name(table, quoted=quoted) if table else None,
        lock_table=options.get("x-lock-table") or None,
        statement_timeout=milliseconds / 1000 if milliseconds > 0 else None,
    )
