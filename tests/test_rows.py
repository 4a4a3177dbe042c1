"""Rows from history, in memory: landing order, baseline, release records, open row.

Why: the rows decide what release engineers read in DEPLOYING.md and what
the upgrade plans and pair tests run; every rule is pure, so it is tested on
hand-built histories without git.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rollsafe.history import CodeVersion, History
from rollsafe.history._model import Strategy
from rollsafe.table._cells import Compat
from rollsafe.table._rows import (
    Row,
    files_as_landed,
    leading_without_schema,
    out_of_order_for,
    row_index,
    rows_from,
)

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class V:
    """A compat verdict as lint gives it."""

    compat: Compat = "live"
    inferred: bool = False
    reasons: tuple[str, ...] = ()


#: (CL number, schema) or (CL number, schema, versions present in the folder).
Spec = tuple[int | None, int | None] | tuple[int | None, int | None, Iterable[int]]


def version(
    number: int | None, schema: int | None, position: int, present: Iterable[int] | None = None
) -> CodeVersion:
    """A code version whose folder holds migrations 1..schema (or ``present``)."""
    if present is None:
        present = range(1, schema + 1) if schema is not None else ()
    migrations = {f"migrations/{v}_m{v}.up.sql": f"{v:040x}" for v in present}
    return CodeVersion(
        cl=str(number) if number is not None else f"v1.{position}.0",
        number=number,
        commit=f"{position + 1:040x}",
        date=EPOCH + timedelta(hours=position),
        subject=f"change {number}",
        position=position,
        schema=schema,
        migrations=migrations,
        changes=(),
    )


def history_of(*specs: Spec, strategy: Strategy = "gerrit") -> History:
    """A history of the given CLs in landing order."""
    versions = []
    for position, spec in enumerate(specs):
        present = spec[2] if len(spec) == 3 else None
        versions.append(version(spec[0], spec[1], position, present))
    return History(
        folder="migrations",
        branch="main",
        tip=versions[-1].commit if versions else "0" * 40,
        strategy=strategy,
        versions=tuple(versions),
        skipped=0,
        commits=len(versions),
    )


def live(*versions: int) -> dict[int, V]:
    return {v: V() for v in versions}


def cls(row: Row) -> list[str]:
    return [v.cl for v in row.versions]


def sentences(row: Row) -> list[str]:
    return [entry.sentence() for entry in row.out_of_order]


def test_rows_follow_schema_changes_in_landing_order() -> None:
    history = history_of((1, None), (2, 1), (3, 1), (4, 2), (5, 3), (6, 3))
    rows = rows_from(history, live(1, 2, 3), {1: "first", 3: "third"})
    assert [r.schema for r in rows] == [1, 2, 3]
    assert [cls(r) for r in rows] == [["2", "3"], ["4"], ["5", "6"]]
    assert [r.previous for r in rows] == [None, 1, 2]
    assert [r.migrations for r in rows] == [(1,), (2,), (3,)]
    assert [r.upgrade for r in rows] == [None, "live", "live"]
    assert rows[0].notes == ("first",) and rows[2].notes == ("third",)
    assert [r.id for r in rows] == [0, 1, 2]


def test_commits_before_the_first_migration_are_not_a_row() -> None:
    history = history_of((1, None), (2, None), (3, 1))
    rows = rows_from(history, live(1), {})
    assert len(rows) == 1 and cls(rows[0]) == ["3"]
    assert leading_without_schema(history) == 2


def test_no_migration_at_all_gives_no_rows() -> None:
    history = history_of((1, None), (2, None))
    assert rows_from(history, {}, {}) == ()


def test_newest_row_is_open_and_prints_an_open_range() -> None:
    history = history_of((1, 1), (2, 1), (7, 2), (8, 2))
    rows = rows_from(history, live(1, 2), {})
    assert [r.open for r in rows] == [False, True]
    assert rows[0].cl_range() == "1-2"
    assert rows[1].cl_range() == "7 and later"
    assert rows[1].numeric_range == (7, None)


def test_commits_without_schema_change_leave_closed_rows_and_the_open_range_alone() -> None:
    before = rows_from(history_of((1, 1), (2, 2)), live(1, 2), {})
    after = rows_from(history_of((1, 1), (2, 2), (3, 2), (4, 2)), live(1, 2), {})
    assert before[0] == after[0]
    assert after[1].cl_range() == before[1].cl_range() == "2 and later"


def test_out_of_order_cls_across_a_row_boundary() -> None:
    # Row 0 (schema 1): 1549, 1567 (uploaded late, landed early), 1552, 1560.
    # Row 1 (schema 2): 1565, 1556 (uploaded early, landed late), 1570.
    # Row 2 (schema 3, open): 1580.
    history = history_of(
        (1549, 1),
        (1567, 1),
        (1552, 1),
        (1560, 1),
        (1565, 2),
        (1556, 2),
        (1570, 2),
        (1580, 3),
    )
    rows = rows_from(history, live(1, 2, 3), {})
    assert rows[0].cl_range() == "1549-1567"
    assert rows[1].cl_range() == "1556-1570"
    assert sentences(rows[0]) == [
        "CL 1556 landed after 1565: it ships the newer schema (row 1, schema 2)",
        "CL 1565 brought the newer schema (row 1, schema 2)",
    ]
    assert sentences(rows[1]) == [
        "CL 1560 landed before 1565: it ships the older schema (row 0, schema 1)",
        "CL 1567 landed before 1565: it ships the older schema (row 0, schema 1)",
    ]
    assert sentences(rows[2]) == []
    which = out_of_order_for(rows, history.find("1556"))
    assert [entry.row for entry in which] == [1]


def test_open_row_range_lists_older_cls_with_higher_numbers() -> None:
    history = history_of((10, 1), (30, 1), (20, 2), (25, 2))
    rows = rows_from(history, live(1, 2), {})
    # Open row 1 covers 20 and above: CL 30 landed before 20 and ships schema 1.
    assert sentences(rows[1]) == [
        "CL 30 landed before 20: it ships the older schema (row 0, schema 1)"
    ]
    # CL 25 landed in the open row; row 0's range (10-30) holds it.
    assert [e.version.cl for e in rows[0].out_of_order] == ["20", "25"]


def test_baseline_folds_old_migrations_into_row_zero() -> None:
    history = history_of((1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (6, 5))
    rows = rows_from(history, live(1, 2, 3, 4, 5), {1: "a", 4: "d"}, baseline=3)
    assert [r.schema for r in rows] == [3, 4, 5]
    assert cls(rows[0]) == ["1", "2", "3", "4"]
    assert rows[0].migrations == (1, 2, 3)
    assert rows[0].baseline == 3
    assert rows[0].schema_range() == "up to 3 (baseline)"
    assert rows[0].notes == ("Baseline: migrations up to 3 are folded into row 0.",)
    assert rows[1].previous == 3 and rows[1].migrations == (4,) and rows[1].notes == ("d",)


def test_baseline_below_the_first_schema_changes_nothing() -> None:
    history = history_of((1, 5), (2, 6))
    plain = rows_from(history, live(1, 2, 3, 4, 5, 6), {})
    based = rows_from(history, live(1, 2, 3, 4, 5, 6), {}, baseline=2)
    assert based == plain


def test_release_records_limit_rows_to_released_cls() -> None:
    history = history_of((1, 1), (2, 1), (3, 2), (4, 3), (5, 3), (6, 4))
    compat = {1: V(), 2: V("offline"), 3: V(), 4: V()}
    rows = rows_from(history, compat, {}, released={"2", "5"})
    assert [cls(r) for r in rows] == [["2"], ["5"]]
    # Schema 2 was never released: row 1 introduces 2 and 3 and is offline because of 2.
    assert rows[1].migrations == (2, 3)
    assert rows[1].upgrade == "offline"
    # With records no row is open: the table changes only when a record is written.
    assert not any(r.open for r in rows)
    assert row_index(rows) == {history.find("2").commit: 0, history.find("5").commit: 1}


def test_upgrade_is_live_only_when_every_introduced_migration_is_live() -> None:
    history = history_of((1, 1), (2, 3))
    rows = rows_from(history, {1: V(), 2: V(), 3: V("offline")}, {})
    assert rows[1].upgrade == "offline" and not rows[1].inferred
    assert rows[1].upgrade_text() == "offline"
    assert rows[0].upgrade_text() == "-"


def test_inferred_marks_cells_that_came_from_lint() -> None:
    history = history_of((1, 1), (2, 2), (3, 3), (4, 5))
    compat = {
        1: V(),
        2: V("offline", inferred=True, reasons=("drop-column",)),
        3: V("live", inferred=True),
        4: V("offline"),
        5: V("live", inferred=True),
    }
    rows = rows_from(history, compat, {})
    assert rows[1].upgrade_text() == "offline (inferred)"
    assert "Offline inferred by lint: 2 (drop-column)." in rows[1].notes
    assert rows[2].upgrade_text() == "live (inferred)"
    # A declared offline is certain whatever lint inferred for the other migration.
    assert rows[3].upgrade_text() == "offline"


def test_migration_without_a_verdict_is_taken_as_offline() -> None:
    history = history_of((1, 1), (2, 2))
    rows = rows_from(history, live(1), {})
    assert rows[1].upgrade_text() == "offline (inferred)"
    assert any("has no readable file in history" in note for note in rows[1].notes)


def test_files_as_landed_keeps_the_last_text_of_deleted_files() -> None:
    def at(position: int, files: dict[str, str], schema: int | None) -> CodeVersion:
        return dataclasses.replace(version(position, schema, position), migrations=files)

    first = {"migrations/1_a.up.sql": "a1", "migrations/1_a.down.sql": "d1"}
    edited = {**first, "migrations/1_a.up.sql": "a2", "migrations/2_b.up.sql": "b1"}
    renamed = {"migrations/1_a.up.sql": "a2", "migrations/2_c.up.sql": "b1", "notes.txt": "x"}
    versions = (at(0, first, 1), at(1, edited, 2), at(2, renamed, 2), at(3, {}, None))
    history = dataclasses.replace(history_of((1, 1)), versions=versions)
    assert files_as_landed(history) == {
        "migrations/1_a.up.sql": "a2",
        "migrations/2_c.up.sql": "b1",
    }
    # Without the deletion, the down file of the last commit that had version 1 is kept.
    history = dataclasses.replace(history, versions=versions[:2])
    assert files_as_landed(history) == edited


def test_irreversible_migrations_are_named_in_the_notes() -> None:
    history = history_of((1, 1), (2, 2))
    rows = rows_from(history, live(1, 2), {2: "drops old data"}, irreversible={2})
    assert rows[1].notes == (
        "drops old data",
        "Irreversible: migration 2 has no down file.",
    )


def test_schema_going_down_opens_an_offline_row_and_does_not_crash() -> None:
    history = history_of((1, 1), (2, 2), (3, 1), (4, 2))
    rows = rows_from(history, live(1, 2), {})
    assert [r.schema for r in rows] == [1, 2, 1, 2]
    down = rows[2]
    assert down.migrations == () and down.removed == (2,)
    assert down.upgrade == "offline" and not down.inferred
    assert down.schema_range() == "1 (down from 2)"
    assert any("Schema goes down" in note for note in down.notes)
    assert rows[3].migrations == (2,) and rows[3].upgrade == "live"


def test_folder_removed_later_gives_a_row_without_schema() -> None:
    history = history_of((1, 1), (2, 2), (3, None))
    rows = rows_from(history, live(1, 2), {})
    assert rows[2].schema is None and rows[2].removed == (1, 2)
    assert rows[2].schema_range() == "none (down from 2)"


def test_gaps_in_versions_introduce_only_present_migrations() -> None:
    stamps = (1681826233, 1681909788, 1682000000)
    history = history_of((1, stamps[0], stamps[:1]), (2, stamps[2], stamps))
    rows = rows_from(history, live(*stamps), {})
    assert rows[1].migrations == stamps[1:]
    assert rows[1].schema_range() == f"{stamps[1]}-{stamps[2]}"


def test_tags_have_no_numeric_ranges() -> None:
    history = history_of((None, 1), (None, 1), (None, 2), strategy="tag")
    rows = rows_from(history, live(1, 2), {})
    assert rows[0].cl_range() == "v1.0.0-v1.1.0"
    assert rows[0].numeric_range is None and rows[0].out_of_order == ()


def test_rows_are_a_function_of_their_inputs() -> None:
    """Same inputs, same rows: nothing kept from an earlier call, inputs left as given,
    and neither the insertion order of a mapping nor the type of a collection matters."""
    history = history_of((1549, 1), (1567, 1), (1565, 2), (1556, 2))
    compat, notes = live(1, 2), {2: "second", 1: "first"}
    elsewhere = dataclasses.replace(history, folder="db")  # the same paths mean nothing here
    assert [r.migrations for r in rows_from(elsewhere, compat, notes)] == [(), ()]
    rows = rows_from(history, compat, notes, released={"1549", "1565", "1556"})
    assert [(r.schema, r.migrations, r.notes, cls(r)) for r in rows] == [
        (1, (1,), ("first",), ["1549"]),
        (2, (2,), ("second",), ["1565", "1556"]),
    ]
    assert compat == live(1, 2) and notes == {2: "second", 1: "first"}
    again = rows_from(
        history,
        dict(reversed(compat.items())),
        dict(reversed(notes.items())),
        released=["1556", "1565", "1549"],
    )
    assert again == rows


def _shift(rows: Sequence[Row]) -> list[Row]:
    return [dataclasses.replace(r, notes=()) for r in rows]


def test_notes_do_not_change_the_shape_of_rows() -> None:
    history = history_of((1, 1), (2, 2))
    assert _shift(rows_from(history, live(1, 2), {1: "x"})) == _shift(
        rows_from(history, live(1, 2), {})
    )


def _naive_out_of_order(rows: Sequence[Row]) -> list[list[tuple[str, int, bool]]]:
    """Every row's out-of-order CLs the slow way: each CL against each other row's range."""
    listed = []
    for row in rows:
        span = row.numeric_range
        entries = []
        if span is not None:
            low, high = span
            for other in rows:
                if other.id == row.id:
                    continue
                for v in other.versions:
                    if (
                        v.number is not None
                        and low <= v.number
                        and (high is None or v.number <= high)
                    ):
                        entries.append((v.number, v.position, v.cl, other.id, other.id > row.id))
        listed.append([(cl, owner, newer) for _n, _p, cl, owner, newer in sorted(entries)])
    return listed


def test_out_of_order_lists_match_a_naive_search_on_large_shuffled_histories() -> None:
    rng = random.Random(7)
    for _ in range(20):
        count = rng.randint(50, 400)
        numbers: list[int | None] = list(range(1_000, 1_000 + count))
        for index in range(0, count - 10, rng.randint(3, 15)):
            late = index + rng.randint(1, 9)
            numbers[index], numbers[late] = numbers[late], numbers[index]
        specs: list[Spec] = []
        schema = 0
        for number in numbers:
            if rng.random() < 0.1:
                schema += 1
            specs.append((number, schema or None))
        released = {str(n) for n in numbers if rng.random() < 0.7} if rng.random() < 0.3 else None
        rows = rows_from(history_of(*specs), live(*range(1, schema + 1)), {}, released=released)
        got = [[(e.version.cl, e.row, e.newer) for e in row.out_of_order] for row in rows]
        assert got == _naive_out_of_order(rows)
