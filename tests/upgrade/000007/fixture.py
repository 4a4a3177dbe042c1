"""Schema 7's code: FinishWork counts failed attempts (a Python fixture, for parameters)."""

from __future__ import annotations

from typing import Any

import psycopg

FINISH_WORK = """
UPDATE work_items
SET state = %s,
    attempts = attempts + CASE WHEN %s = 'failed'::work_state THEN 1 ELSE 0 END
WHERE id = %s
"""


def seed(conn: psycopg.Connection[Any]) -> None:
    """Enqueue one item and fail it twice, as the retry loop of schema 7 does."""
    row = conn.execute(
        "INSERT INTO work_items (session_id, payload) "
        'SELECT max(id), \'{"job": "flaky"}\' FROM sessions RETURNING id'
    ).fetchone()
    assert row is not None
    for _ in range(2):
        conn.execute(FINISH_WORK, ("failed", "failed", row[0]))


def check(conn: psycopg.Connection[Any]) -> None:
    """Items written before attempts existed read as 0 attempts; none is negative."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE attempts = 0), count(*) FILTER (WHERE attempts < 0) "
        "FROM work_items"
    ).fetchone()
    assert row is not None
    untouched, negative = row
    assert untouched >= 1, "no work item with 0 attempts: old rows did not get the default"
    assert negative == 0, f"{negative} work items with negative attempts"
