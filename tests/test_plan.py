"""Upgrade plans over in-memory rows: catching up, rolling, offline downtimes, refusals.

Why: a plan is what an operator follows in production; each step must name
the CL, the schema and whether components can keep running, and a request
that cannot be planned must say why instead of printing something unsafe.
"""

from __future__ import annotations

import json

import pytest

from rollsafe.errors import PlanError, RollsafeError
from rollsafe.table import rows_from
from rollsafe.table._plan import plan_upgrade, render_text, to_json
from tests.test_rows import V, history_of, live

# Row 0: CLs 1-3 (schema 1); row 1: 4-5 (schema 2, live); row 2: 6-7 (schema 3, offline);
# row 3: 8 (schema 4, offline); row 4: 9-10 (schema 5, live, open).
HISTORY = history_of(
    (1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 3), (7, 3), (8, 4), (9, 5), (10, 5)
)
COMPAT = {1: V(), 2: V(), 3: V("offline"), 4: V("offline", inferred=True), 5: V()}
ROWS = rows_from(HISTORY, COMPAT, {})


def plan(start: str, target: str, *, offline: bool = False) -> list[tuple[str, str, object]]:
    made = plan_upgrade(ROWS, HISTORY.find(start), HISTORY.find(target), offline=offline)
    return [(s.version.cl, s.upgrade, s.schema) for s in made.steps]


def test_catch_up_in_the_start_row_then_roll_row_by_row() -> None:
    assert plan("1", "5") == [("3", "live", 1), ("5", "live", 2)]


def test_no_catch_up_step_when_already_on_the_newest_cl_of_the_row() -> None:
    assert plan("3", "5") == [("5", "live", 2)]


def test_target_inside_the_start_row_is_one_rolling_step() -> None:
    assert plan("1", "2") == [("2", "live", 1)]


def test_same_cl_needs_no_step() -> None:
    made = plan_upgrade(ROWS, HISTORY.find("4"), HISTORY.find("4"))
    assert made.steps == ()
    assert "Nothing to do" in render_text(made)


def test_each_row_stops_at_its_newest_cl_and_offline_rows_share_one_downtime() -> None:
    made = plan_upgrade(ROWS, HISTORY.find("3"), HISTORY.find("10"))
    steps = [(s.version.cl, s.upgrade, s.schema, s.rows) for s in made.steps]
    assert steps == [
        ("5", "live", 2, (1,)),
        ("8", "offline", 4, (2, 3)),  # rows 2 and 3 are both offline: one downtime
        ("10", "live", 5, (4,)),
    ]
    offline = made.steps[1]
    assert offline.migrations == (3, 4)
    assert not offline.inferred  # row 2 is declared offline
    assert made.offline_steps == 1


def test_offline_step_text_gives_the_offline_procedure() -> None:
    text = render_text(plan_upgrade(ROWS, HISTORY.find("5"), HISTORY.find("7")))
    assert "1. CL 7 - schema 3, applies migration 3 - offline" in text
    assert "a. Stop every component." in text
    assert "b. Upgrade every component to CL 7." in text
    assert "c. Start one component; it applies migration 3. Wait until it is up." in text
    assert "d. Start the others." in text


def test_live_step_text_says_rolling_and_inferred_is_marked() -> None:
    history = history_of((1, 1), (2, 2))
    rows = rows_from(history, {1: V(), 2: V("live", inferred=True)}, {})
    text = render_text(plan_upgrade(rows, history.find("1"), history.find("2")))
    assert "1. CL 2 - schema 2, applies migration 2 - live (inferred)" in text
    assert "Upgrade the components one at a time to CL 2." in text
    assert "1 step: 1 live (rolling), 0 offline." in text


def test_offline_flag_plans_one_jump() -> None:
    made = plan_upgrade(ROWS, HISTORY.find("2"), HISTORY.find("9"), offline=True)
    assert [(s.version.cl, s.upgrade, s.migrations) for s in made.steps] == [
        ("9", "offline", (2, 3, 4, 5))
    ]
    assert made.offline


def test_a_target_that_landed_earlier_is_left_to_the_rollback_planner() -> None:
    with pytest.raises(PlanError) as caught:
        plan_upgrade(ROWS, HISTORY.find("9"), HISTORY.find("4"))
    message = caught.value.message
    assert "landed before CL 9" in message and "rollback" in message
    assert isinstance(caught.value, RollsafeError) and caught.value.exit_code == 2


def test_cl_without_schema_cannot_be_planned_from() -> None:
    history = history_of((1, None), (2, 1))
    rows = rows_from(history, live(1), {})
    with pytest.raises(PlanError, match="ships no schema"):
        plan_upgrade(rows, history.find("1"), history.find("2"))


def test_unreleased_cl_is_in_no_row() -> None:
    history = history_of((1, 1), (2, 1), (3, 2))
    rows = rows_from(history, live(1, 2), {}, released={"1", "3"})
    with pytest.raises(PlanError, match="not released"):
        plan_upgrade(rows, history.find("2"), history.find("3"))


def test_step_into_a_schema_that_went_down_says_to_migrate_down_first() -> None:
    history = history_of((1, 1), (2, 2), (3, 1))
    rows = rows_from(history, live(1, 2), {})
    made = plan_upgrade(rows, history.find("2"), history.find("3"))
    assert [(s.upgrade, s.removed) for s in made.steps] == [("offline", (2,))]
    text = render_text(made)
    assert "undoes migration 2" in text
    assert "migrate the database down to schema 1" in text


def test_json_names_every_step() -> None:
    made = plan_upgrade(ROWS, HISTORY.find("3"), HISTORY.find("10"))
    data = json.loads(json.dumps(to_json(made)))
    assert data["from"]["cl"] == "3" and data["to"]["schema"] == 5
    assert [(s["step"], s["cl"], s["upgrade"], s["schema"]) for s in data["steps"]] == [
        (1, "5", "live", 2),
        (2, "8", "offline", 4),
        (3, "10", "live", 5),
    ]
    assert data["steps"][1]["rows"] == [2, 3]
    assert data["steps"][0]["commit"] == HISTORY.find("5").commit


def test_text_lines_fit_in_a_hundred_columns() -> None:
    text = render_text(plan_upgrade(ROWS, HISTORY.find("1"), HISTORY.find("10")))
    assert max(len(line) for line in text.splitlines()) <= 100
