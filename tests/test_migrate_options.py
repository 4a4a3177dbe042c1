"""Tests for rollsafe.migrate._options and the pure parts of rollsafe.migrate._lock.

golang-migrate's URL options are read as its postgres driver reads them, and
an option rollsafe cannot honour is refused in one line; the CockroachDB lock
rows are checked as SQL (no cockroach binary is needed).  tests/interop
proves the same against golang-migrate itself.
"""

from __future__ import annotations

import pytest

from rollsafe.errors import ConfigError
from rollsafe.migrate import lock_id
from rollsafe.migrate._lock import cockroach_lock_ids, cockroach_lock_sql, cockroach_unlock_sql
from rollsafe.migrate._options import TableName, UrlOptions, table_name, url_options


@pytest.mark.parametrize(
    ("text", "quoted", "expected"),
    [
        ("deploy.versions", False, TableName(None, "deploy.versions")),
        ('"deploy"."versions"', False, TableName(None, '"deploy"."versions"')),
        ('"deploy"."versions"', True, TableName("deploy", "versions")),
        ('"versions"', True, TableName(None, "versions")),
        ('"a.b"."c.d"', True, TableName("a.b", "c.d")),
    ],
)
def test_migrations_table_names(text: str, quoted: bool, expected: TableName) -> None:
    assert table_name(text, quoted=quoted) == expected


@pytest.mark.parametrize(
    ("options", "what"),
    [
        ({"x-migrations-table": "v", "x-migrations-table-quoted": "1"}, "must be quoted"),
        ({"x-migrations-table": '"a"."b"."c"', "x-migrations-table-quoted": "t"}, "too many dot"),
        ({"x-migrations-table-quoted": "yes"}, "bad x-migrations-table-quoted value"),
        ({"x-multi-statement": "TRUE"}, "x-multi-statement=true is not supported"),
        ({"x-statement-timeout": "1s"}, "bad x-statement-timeout value"),
        ({"x-force-lock": "1"}, "x-force-lock=true is not supported"),
        ({"x-migration-table": "v"}, "unknown golang-migrate URL option `x-migration-table`"),
    ],
)
def test_url_options_rollsafe_cannot_honour_are_refused(options: dict[str, str], what: str) -> None:
    with pytest.raises(ConfigError, match=what):
        url_options(options)


def test_url_options_that_are_honoured() -> None:
    read = url_options(
        {"x-statement-timeout": "1500", "x-multi-statement": "false", "x-lock-table": "locks"}
    )
    assert read == UrlOptions(table=None, lock_table="locks", statement_timeout=1.5)


def test_cockroach_lock_rows_cover_both_routes_in_one_statement() -> None:
    ids = cockroach_lock_ids("app")
    assert ids == tuple(sorted({lock_id("app"), lock_id("/app")}))
    assert cockroach_lock_sql("schema_lock", ids) == (
        f'INSERT INTO "schema_lock" (lock_id) VALUES ({ids[0]}), ({ids[1]})'
    )
    assert cockroach_unlock_sql("schema_lock", ids) == (
        f'DELETE FROM "schema_lock" WHERE lock_id IN ({ids[0]}, {ids[1]})'
    )
