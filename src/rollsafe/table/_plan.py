"""Upgrade plans: the safe sequence of rolling and offline steps from one CL to another.

Why: knowing that row 5 is ``offline`` is not yet a procedure.  A release
engineer running CL a who wants CL b needs numbered steps, each naming the CL
every component runs afterwards, its schema, and whether components can be
upgraded one at a time (``live``) or must all stop (``offline``).  Planning is
pure: rows in, a `Plan` out, rendered as text or JSON.

Decisions: the plan stops at the newest CL of every row it crosses, because
that is the code that was tested against the next schema (the upgrade pair
tests run on adjacent rows).  Consecutive offline steps are merged into one
downtime: once every component is stopped, rolling through each row
separately would only add restarts.  A step that crosses a schema that went
down is never merged, because it needs the old code to migrate down first.
The way back is `rollsafe.table._rollback`'s: `plan_upgrade` refuses a
target that landed earlier, and the command picks the planner by direction.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollsafe.errors import PlanError
from rollsafe.table._cells import Compat
from rollsafe.table._rows import Row, row_index

if TYPE_CHECKING:
    from rollsafe.history import CodeVersion


@dataclass(frozen=True)
class Step:
    """One step of a plan: every component ends it running ``version``.

    ``rows`` are the rows the step enters (empty for a step inside one row);
    ``migrations`` the versions it applies; ``removed`` the versions a step
    into a schema that went down must undo first.
    """

    number: int
    version: CodeVersion
    row: int
    schema: int | None
    previous: int | None
    upgrade: Compat
    inferred: bool
    migrations: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    rows: tuple[int, ...] = ()
    from_version: CodeVersion | None = None

    @property
    def changes_schema(self) -> bool:
        return bool(self.migrations or self.removed)


@dataclass(frozen=True)
class Plan:
    """How to get every component from ``start`` to ``target``, step by step."""

    start: CodeVersion
    start_row: int
    start_schema: int | None
    target: CodeVersion
    target_row: int
    target_schema: int | None
    steps: tuple[Step, ...]
    offline: bool = False

    @property
    def offline_steps(self) -> int:
        return sum(1 for step in self.steps if step.upgrade == "offline")


def plan_upgrade(
    rows: Sequence[Row], start: CodeVersion, target: CodeVersion, *, offline: bool = False
) -> Plan:
    """Plan the upgrade from ``start`` to ``target`` (``target`` must not have landed earlier).

    With ``offline`` the plan is one offline jump, for teams that take a
    maintenance window anyway.
    """
    start_row, target_row = endpoints(rows, start, target)
    if target.position < start.position:
        raise PlanError(
            f"CL {target.cl} landed before CL {start.cl}: that is a rollback, not an upgrade",
            where=f"--to {target.cl}",
            fix="plan it with `plan_rollback` (`rollsafe upgrade-plan` chooses the direction "
            "itself)",
        )
    plan = Plan(
        start=start,
        start_row=start_row.id,
        start_schema=start_row.schema,
        target=target,
        target_row=target_row.id,
        target_schema=target_row.schema,
        steps=(),
        offline=offline,
    )
    if start.commit == target.commit:
        return plan
    if offline:
        crossed = rows[start_row.id + 1 : target_row.id + 1]
        step = Step(
            number=1,
            version=target,
            row=target_row.id,
            schema=target_row.schema,
            previous=start_row.schema,
            upgrade="offline",
            inferred=False,
            migrations=tuple(v for row in crossed for v in row.migrations),
            removed=tuple(v for row in crossed for v in row.removed),
            rows=tuple(row.id for row in crossed),
            from_version=start,
        )
        return dataclasses.replace(plan, steps=(step,))
    steps: list[Step] = []
    current = start
    if start_row.id == target_row.id or start_row.last.commit != start.commit:
        # Catch up inside the start row first: no schema change, so always rolling.
        within = target if start_row.id == target_row.id else start_row.last
        steps.append(
            Step(
                number=1,
                version=within,
                row=start_row.id,
                schema=start_row.schema,
                previous=start_row.schema,
                upgrade="live",
                inferred=False,
                from_version=current,
            )
        )
        current = within
    for row in rows[start_row.id + 1 : target_row.id + 1]:
        destination = target if row.id == target_row.id else row.last
        step = Step(
            number=len(steps) + 1,
            version=destination,
            row=row.id,
            schema=row.schema,
            previous=row.previous,
            upgrade=row.upgrade or "offline",
            inferred=row.inferred,
            migrations=row.migrations,
            removed=row.removed,
            rows=(row.id,),
            from_version=current,
        )
        before = steps[-1] if steps else None
        if (
            before is not None
            and before.upgrade == "offline"
            and step.upgrade == "offline"
            and before.rows
            and not before.removed
            and not step.removed
        ):
            # One downtime for consecutive offline rows: nothing runs in between anyway.
            steps[-1] = dataclasses.replace(
                before,
                version=destination,
                row=row.id,
                schema=row.schema,
                inferred=before.inferred and step.inferred,
                migrations=before.migrations + step.migrations,
                rows=before.rows + step.rows,
            )
        else:
            steps.append(step)
        current = destination
    return dataclasses.replace(plan, steps=tuple(steps))


def endpoints(rows: Sequence[Row], start: CodeVersion, target: CodeVersion) -> tuple[Row, Row]:
    """The rows of a plan's ``--from`` and ``--to`` CLs, or why one has none."""
    index = row_index(rows)
    return _row_of(rows, index, start, "--from"), _row_of(rows, index, target, "--to")


def _row_of(rows: Sequence[Row], index: dict[str, int], version: CodeVersion, flag: str) -> Row:
    """The row a CL belongs to, or why it has none."""
    found = index.get(version.commit)
    if found is not None:
        return rows[found]
    if version.schema is None:
        raise PlanError(
            f"CL {version.cl} ships no schema (it landed before the first migration)",
            where=f"{flag} {version.cl}",
            fix="there is nothing to upgrade from: install the target CL on a fresh database",
        )
    raise PlanError(
        f"CL {version.cl} is in no row of the table (it is not released)",
        where=f"{flag} {version.cl}",
        fix=f"write its release record with `rollsafe release --cl {version.cl}`, "
        "or plan between released CLs",
    )


def _versions(numbers: Sequence[int]) -> str:
    """``migration 5`` or ``migrations 5, 6``."""
    listed = ", ".join(str(v) for v in numbers)
    return f"migration {listed}" if len(numbers) == 1 else f"migrations {listed}"


def _schema(schema: int | None) -> str:
    return "none" if schema is None else str(schema)


def render_text(plan: Plan) -> str:
    """The plan as numbered steps for a human; ASCII only, so any terminal or log shows it."""
    lines = [
        f"Upgrade plan: CL {plan.start.cl} (row {plan.start_row}, schema "
        f"{_schema(plan.start_schema)}) -> CL {plan.target.cl} (row {plan.target_row}, schema "
        f"{_schema(plan.target_schema)})"
    ]
    if not plan.steps:
        lines.append("Nothing to do: every component already runs the target CL.")
        return "\n".join(lines) + "\n"
    offline = plan.offline_steps
    live = len(plan.steps) - offline
    count = "1 step" if len(plan.steps) == 1 else f"{len(plan.steps)} steps"
    lines.append(f"{count}: {live} live (rolling), {offline} offline.")
    for step in plan.steps:
        lines.append("")
        lines.extend(_step_lines(step))
    return "\n".join(lines) + "\n"


def _para(text: str, indent: str = "   ", hang: str | None = None) -> list[str]:
    """A paragraph wrapped at 100 columns under its step, so logs and Markdown stay readable."""
    return textwrap.wrap(
        text,
        width=100,
        initial_indent=indent,
        subsequent_indent=hang if hang is not None else indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _step_lines(step: Step) -> list[str]:
    what = f"schema {_schema(step.schema)}"
    if step.migrations:
        what += f", applies {_versions(step.migrations)}"
    elif step.removed:
        what += f", undoes {_versions(step.removed)}"
    else:
        what += ", no schema change"
    mode = f"{step.upgrade} (inferred)" if step.inferred else step.upgrade
    head = f"{step.number}. CL {step.version.cl} - {what} - {mode}"
    if len(step.rows) > 1:
        head += f" (rows {step.rows[0]}-{step.rows[-1]} in one downtime)"
    lines = [head]
    old = step.from_version.cl if step.from_version is not None else "the current CL"
    if step.upgrade == "live":
        text = f"Upgrade the components one at a time to CL {step.version.cl}."
        if step.migrations:
            text += (
                f" The first one to start applies {_versions(step.migrations)}; components "
                f"still on CL {old} keep working on the new schema."
            )
        return lines + _para(text)
    actions = ["Stop every component."]
    if step.removed:
        actions.append(
            f"With the code of CL {old}, migrate the database down to schema "
            f"{_schema(step.schema)} (`rollsafe migrate --down-to {_schema(step.schema)}`): "
            "the new code has no file for the removed versions."
        )
    actions.append(f"Upgrade every component to CL {step.version.cl}.")
    if step.migrations:
        actions.append(
            f"Start one component; it applies {_versions(step.migrations)}. Wait until it is up."
        )
    else:
        actions.append("Start one component and wait until it is up.")
    actions.append("Start the others.")
    for letter, action in zip("abcdefg", actions, strict=False):
        lines += _para(action, f"   {letter}. ", "      ")
    return lines


def _version_json(version: CodeVersion) -> dict[str, object]:
    return {
        "cl": version.cl,
        "commit": version.commit,
        "landed": version.date.isoformat().replace("+00:00", "Z"),
    }


def to_json(plan: Plan) -> dict[str, object]:
    """The plan as plain data for other tools (deploy pipelines, dashboards)."""
    return {
        "from": {**_version_json(plan.start), "row": plan.start_row, "schema": plan.start_schema},
        "to": {**_version_json(plan.target), "row": plan.target_row, "schema": plan.target_schema},
        "offline": plan.offline,
        "steps": [
            {
                "step": step.number,
                **_version_json(step.version),
                "row": step.row,
                "rows": list(step.rows),
                "schema": step.schema,
                "previous_schema": step.previous,
                "upgrade": step.upgrade,
                "inferred": step.inferred,
                "migrations": list(step.migrations),
                "removed": list(step.removed),
                "schema_change": step.changes_schema,
            }
            for step in plan.steps
        ],
    }
