"""Rollback plans and the Rollback cell over in-memory rows: modes, order, files, refusals.

Why: a rollback plan is followed at the worst moment; each step must undo
exactly one row's migrations with down files that exist at the CL it names,
say whether the newer code may keep running and why, and never plan past a
step only a backup can undo unless told to.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest

from rollsafe.errors import PlanError
from rollsafe.history import History
from rollsafe.table import rows_from
from rollsafe.table._cells import RollbackMode
from rollsafe.table._rollback import (
    down_versions,
    plan_rollback,
    render_rollback_text,
    rollback_to_json,
    which_rollback,
)
from tests.test_rows import V, history_of


@dataclass(frozen=True)
class RB:
    """A rollback verdict as lint gives it."""

    mode: RollbackMode = "live"
    inferred: bool = False
    reasons: tuple[str, ...] = ()


def with_downs(history: History, *, without: dict[str, set[int]] | None = None) -> History:
    """Every CL's folder gets a down file per up file, except ``without[cl]``."""
    versions = []
    for version in history.versions:
        files = dict(version.migrations)
        for path in version.migrations:
            number = int(path.split("/")[-1].split("_")[0])
            if number not in (without or {}).get(version.cl, set()):
                files[path.replace(".up.sql", ".down.sql")] = "0" * 40
        versions.append(dataclasses.replace(version, migrations=files))
    return dataclasses.replace(history, versions=tuple(versions))


# Row 0: CLs 1-2 (schema 1); row 1: 3-4 (schema 2); row 2: 5 (schema 3); row 3: 6-7
# (schema 4); row 4: 8 (schema 5, open).
SPECS = ((1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 4), (7, 4), (8, 5))
ROLLBACK = {
    1: RB(),
    2: RB("live", reasons=("declares `-- rollback: live`",)),
    3: RB("offline", inferred=True, reasons=("creates tags",)),
    4: RB("restore", reasons=("has no down file",)),
    5: RB(
        "live",
        inferred=True,
        reasons=("adds no table and no NOT NULL column, and its down file breaks nothing",),
    ),
}
HISTORY = with_downs(history_of(*SPECS), without={cl: {4} for cl in ("6", "7", "8")})
COMPAT = {v: V() for v in range(1, 6)}
ROWS = rows_from(HISTORY, COMPAT, {}, irreversible={4}, rollback=ROLLBACK)


def steps(start: str, target: str, **kwargs: bool) -> list[tuple[str, str, object, object]]:
    made = plan_rollback(ROWS, HISTORY.find(start), HISTORY.find(target), **kwargs)
    return [(s.version.cl, s.mode, s.undone, s.files_at.cl) for s in made.steps]


def test_rows_carry_the_rollback_cell() -> None:
    assert [r.rollback_text() for r in ROWS] == [
        "-",
        "live",
        "offline (inferred)",
        "restore",
        "live (inferred)",
    ]
    assert ROWS[3].rollback_reasons == ("migration 4 has no down file",)
    assert ROWS[2].rollback_reasons == ("migration 3 creates tags",)


def test_the_worst_migration_of_a_row_decides_and_a_declaration_is_not_inferred() -> None:
    history = history_of((1, 1), (2, 3))
    verdicts = {1: RB(), 2: RB("live", inferred=True), 3: RB("offline")}
    (_, row) = rows_from(history, COMPAT, {}, rollback=verdicts)
    assert (row.rollback, row.rollback_inferred) == ("offline", False)
    verdicts = {1: RB(), 2: RB("live", inferred=True), 3: RB("live")}
    (_, row) = rows_from(history, COMPAT, {}, rollback=verdicts)
    assert (row.rollback, row.rollback_inferred) == ("live", True)
    (_, row) = rows_from(history, COMPAT, {}, rollback=verdicts, irreversible={2})
    assert (row.rollback, row.rollback_inferred) == ("restore", False)


def test_one_step_per_row_newest_first_with_the_newer_cls_down_files() -> None:
    assert steps("8", "1", allow_restore=True) == [
        ("7", "live", (5,), "8"),
        ("5", "restore", (4,), "7"),
        ("4", "offline", (3,), "5"),
        ("1", "live", (2,), "4"),
    ]


def test_a_restore_ends_the_plan_unless_allowed() -> None:
    made = plan_rollback(ROWS, HISTORY.find("8"), HISTORY.find("1"))
    assert [s.mode for s in made.steps] == ["live", "restore"]
    assert made.stopped and made.cut == 2
    text = render_rollback_text(made)
    assert "2. CL 5 - schema 3, undoes migration 4 - restore" in text
    assert "Restore the backup taken just before CL 6 was deployed" in text
    assert "The plan stops at this restore (2 more rows to CL 1)" in " ".join(text.split())
    allowed = plan_rollback(ROWS, HISTORY.find("8"), HISTORY.find("1"), allow_restore=True)
    assert not allowed.stopped and len(allowed.steps) == 4


def test_a_down_file_missing_at_the_files_cl_makes_the_step_a_restore() -> None:
    history = with_downs(history_of(*SPECS), without={"8": {4, 5}, "6": {4}, "7": {4}})
    rows = rows_from(history, COMPAT, {}, irreversible={4}, rollback=ROLLBACK)
    made = plan_rollback(rows, history.find("8"), history.find("7"))
    (step,) = made.steps
    assert (step.mode, step.inferred) == ("restore", False)
    assert step.reasons == ("CL 8 has no down file for migration 5",)
    assert down_versions(history.find("8").migrations) == {1, 2, 3}


def test_text_names_cl_versions_files_and_mode_with_its_reason() -> None:
    text = render_rollback_text(
        plan_rollback(ROWS, HISTORY.find("5"), HISTORY.find("1"), allow_restore=True)
    )
    assert text.startswith(
        "Rollback plan: CL 5 (row 2, schema 3) -> CL 1 (row 0, schema 1)\n"
        "2 steps: 1 live (rolling), 1 offline, 0 restore from backup.\n"
    )
    assert "1. CL 4 - schema 2, undoes migration 3 - offline (inferred)" in text
    assert "Why: migration 3 creates tags (lint)" in text
    assert "b. Migrate the database down with the down files of CL 5:\n" in text
    assert "\n        rollsafe migrate --down-to 2 --files-at 5\n" in text
    assert "c. Start every component on CL 4." in text
    assert "2. CL 1 - schema 1, undoes migration 2 - live\n" in text
    assert "declares `-- rollback: live` (directive)" in text
    assert "While the components of CL 4 keep running" in text
    assert "b. Roll the components back one at a time to CL 1." in text


def test_inside_one_row_is_one_rolling_step_and_the_same_cl_nothing() -> None:
    assert steps("4", "3") == [("3", "live", (), "4")]
    text = render_rollback_text(plan_rollback(ROWS, HISTORY.find("4"), HISTORY.find("3")))
    assert "1. CL 3 - schema 2, no schema change - live" in text
    assert plan_rollback(ROWS, HISTORY.find("4"), HISTORY.find("4")).steps == ()


def test_an_upgrade_is_not_a_rollback() -> None:
    with pytest.raises(PlanError, match="that is an upgrade"):
        plan_rollback(ROWS, HISTORY.find("1"), HISTORY.find("8"))


def test_json_gives_every_step_with_its_command() -> None:
    made = plan_rollback(ROWS, HISTORY.find("8"), HISTORY.find("1"))
    data = json.loads(json.dumps(rollback_to_json(made)))
    assert data["direction"] == "rollback" and data["complete"] is False
    assert data["rows_not_planned"] == 2
    first, second = data["steps"]
    assert first["migrate_down"] == [5] and first["files_at"] == "8"
    assert first["command"] == "rollsafe migrate --down-to 4 --files-at 8"
    assert first["rollback"] == "live" and first["decided_by"] == "lint"
    assert second["rollback"] == "restore" and second["command"] is None
    assert second["restore_backup_before"] == "6" and second["decided_by"] == "no down file"


def test_which_says_how_to_roll_back_from_a_cl() -> None:
    line = which_rollback(ROWS, HISTORY.find("5"))
    assert line is not None and line.startswith("offline (inferred) to row 1 (schema 2)")
    assert "`rollsafe migrate --down-to 2 --files-at 5`, then CL 4" in line
    assert which_rollback(ROWS, HISTORY.find("1")) is None  # row 0: nothing above it
    restore = which_rollback(ROWS, HISTORY.find("7"))
    assert restore is not None and "restore the backup taken before CL 6" in restore


def test_a_row_whose_schema_went_down_is_rolled_back_by_the_older_code() -> None:
    history = with_downs(history_of((1, 1), (2, 2), (3, 1, [1])))
    verdicts = {1: RB(), 2: RB()}
    rows = rows_from(history, COMPAT, {}, rollback=verdicts)
    (step,) = plan_rollback(rows, history.find("3"), history.find("2")).steps
    assert (step.mode, step.reapplied, step.undone) == ("offline", (2,), ())
    text = render_rollback_text(plan_rollback(rows, history.find("3"), history.find("2")))
    assert "applies migration 2 again" in text
