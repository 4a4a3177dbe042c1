"""Rollback plans: the way back from a newer CL to an older one, one row boundary at a time.

Why: the question at 3 a.m. is "how do I get back to what ran yesterday".
Restarting old code is not enough: components that migrate on start refuse a
database newer than their files (golang-migrate's "no migration found for
version N"), so every step first migrates the database down, with the down
files of the newer code (read from git: ``rollsafe migrate --files-at``),
and only then rolls the code back.  Whether the newer code may keep running
meanwhile is the row's Rollback verdict: ``live`` (it works on the older
schema: declared, inferred by lint, and proved by the pair test's rollback
check), ``offline`` (stop everything first), ``restore`` (no down file can
undo the step; only the backup taken before the upgrade can).

Decisions: one step per row boundary, newest first, each landing on the
newest CL of the older row (the code the pair tests ran against the newer
schema) and the last one on the target CL.  Steps are never merged: each
names the versions it undoes and the CL whose down files do it, so an
operator can stop after any of them.  A ``restore`` step ends the plan
unless ``allow_restore``: restoring a backup loses every write made since,
which is a decision, not a step.  Pure: rows in, a `RollbackPlan` out.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollsafe.errors import PlanError
from rollsafe.table._cells import RollbackMode
from rollsafe.table._plan import _para, _schema, _version_json, _versions, endpoints
from rollsafe.table._rows import Row, row_index

if TYPE_CHECKING:
    from rollsafe.history import CodeVersion

#: A down file's name (golang-migrate's pattern, direction ``down``).
_DOWN_FILE = re.compile(r"^(?P<version>[0-9]+)_.*\.down\.[^/]*$")


@dataclass(frozen=True)
class RollbackStep:
    """One row boundary undone: every component ends it running ``version`` on ``schema``.

    ``files_at`` is the newer code, whose down files undo ``undone`` (newest
    first); ``reapplied`` are versions a row whose schema went down removed,
    which the older code applies again when it starts.  ``backup`` names, for
    a ``restore``, the CL before whose deployment the backup was taken.
    """

    number: int
    row: int
    mode: RollbackMode
    inferred: bool
    reasons: tuple[str, ...]
    version: CodeVersion
    files_at: CodeVersion
    schema: int | None
    previous: int | None
    undone: tuple[int, ...] = ()
    reapplied: tuple[int, ...] = ()
    backup: CodeVersion | None = None

    @property
    def source(self) -> str:
        """What decided the mode: a directive, lint, or the down files themselves."""
        if self.mode == "restore" and not self.inferred:
            return "no down file"
        if not self.undone and not self.reapplied:
            return "no schema change"
        return "lint" if self.inferred else "directive"


@dataclass(frozen=True)
class RollbackPlan:
    """How to get every component, and the database, from ``start`` back to ``target``."""

    start: CodeVersion
    start_row: int
    start_schema: int | None
    target: CodeVersion
    target_row: int
    target_schema: int | None
    steps: tuple[RollbackStep, ...]
    allow_restore: bool = False
    #: Steps left out because a restore step ends the plan (``allow_restore`` not given).
    cut: int = 0

    @property
    def stopped(self) -> bool:
        """Whether the plan ends at a restore it may not plan past."""
        return bool(self.steps) and self.steps[-1].mode == "restore" and not self.allow_restore


def plan_rollback(
    rows: Sequence[Row],
    start: CodeVersion,
    target: CodeVersion,
    *,
    allow_restore: bool = False,
) -> RollbackPlan:
    """Plan the way back from ``start`` to ``target`` (``target`` landed earlier)."""
    start_row, target_row = endpoints(rows, start, target)
    if target.position > start.position:
        raise PlanError(
            f"CL {target.cl} landed after CL {start.cl}: that is an upgrade, not a rollback",
            where=f"--to {target.cl}",
            fix="plan it with `rollsafe upgrade-plan` (it chooses the direction itself)",
        )
    plan = RollbackPlan(
        start=start,
        start_row=start_row.id,
        start_schema=start_row.schema,
        target=target,
        target_row=target_row.id,
        target_schema=target_row.schema,
        steps=(),
        allow_restore=allow_restore,
    )
    if start.commit == target.commit:
        return plan
    steps: list[RollbackStep] = []
    running = start
    if start_row.id == target_row.id:
        steps.append(
            RollbackStep(
                number=1,
                row=start_row.id,
                mode="live",
                inferred=False,
                reasons=(),
                version=target,
                files_at=start,
                schema=start_row.schema,
                previous=start_row.schema,
            )
        )
    for row_id in range(start_row.id, target_row.id, -1):
        row, older = rows[row_id], rows[row_id - 1]
        destination = target if older.id == target_row.id else older.last
        step = _step(len(steps) + 1, row, older, running, destination)
        steps.append(step)
        running = destination
        if step.mode == "restore" and not allow_restore:
            cut = row_id - 1 - target_row.id
            return _with(plan, steps, cut)
    return _with(plan, steps, 0)


def _with(plan: RollbackPlan, steps: list[RollbackStep], cut: int) -> RollbackPlan:
    return dataclasses.replace(plan, steps=tuple(steps), cut=cut)


def down_versions(migrations: Mapping[str, str]) -> set[int]:
    """Versions that have a down file in a CL's migrations mapping (paths in the folder)."""
    found: set[int] = set()
    for path in migrations:
        match = _DOWN_FILE.match(path.rsplit("/", 1)[-1])
        if match is not None:
            found.add(int(match["version"]))
    return found


def _step(
    number: int, row: Row, older: Row, running: CodeVersion, destination: CodeVersion
) -> RollbackStep:
    """Undo ``row``: migrate down to ``older``'s schema with ``running``'s files, then roll back."""
    undone = tuple(reversed(row.migrations))
    mode: RollbackMode = row.rollback or "offline"
    inferred, reasons = row.rollback_inferred, row.rollback_reasons
    missing = sorted(set(undone) - down_versions(running.migrations))
    if missing and mode != "restore":
        listed = ", ".join(map(str, missing))
        mode, inferred = "restore", False
        reasons = (f"CL {running.cl} has no down file for migration {listed}",)
    return RollbackStep(
        number=number,
        row=row.id,
        mode=mode,
        inferred=inferred,
        reasons=reasons,
        version=destination,
        files_at=running,
        schema=older.schema,
        previous=row.schema,
        undone=undone if not row.removed else (),
        reapplied=row.removed,
        backup=row.first if mode == "restore" else None,
    )


def render_rollback_text(plan: RollbackPlan) -> str:
    """The plan as numbered steps for a human, in the upgrade plan's style; ASCII only."""
    lines = [
        f"Rollback plan: CL {plan.start.cl} (row {plan.start_row}, schema "
        f"{_schema(plan.start_schema)}) -> CL {plan.target.cl} (row {plan.target_row}, schema "
        f"{_schema(plan.target_schema)})"
    ]
    if not plan.steps:
        lines.append("Nothing to do: every component already runs the target CL.")
        return "\n".join(lines) + "\n"
    counts = {mode: sum(1 for s in plan.steps if s.mode == mode) for mode in _MODES}
    count = "1 step" if len(plan.steps) == 1 else f"{len(plan.steps)} steps"
    lines.append(
        f"{count}: {counts['live']} live (rolling), {counts['offline']} offline, "
        f"{counts['restore']} restore from backup."
    )
    for step in plan.steps:
        lines.append("")
        lines.extend(_step_lines(step, plan))
    if plan.stopped:
        rest = f" ({plan.cut} more row{'s' if plan.cut != 1 else ''} to CL {plan.target.cl})"
        lines.append("")
        lines += _para(
            "The plan stops at this restore"
            + (rest if plan.cut else "")
            + ": restoring a backup loses every write made since it was taken, so it is a "
            "decision, not a step. Run again with --allow-restore to plan through it.",
            "",
        )
    return "\n".join(lines) + "\n"


_MODES: tuple[RollbackMode, ...] = ("live", "offline", "restore")


def _why(step: RollbackStep, plan: RollbackPlan) -> str:
    """The justification of a step's mode: the row's reasons and what proves or decides them."""
    if not step.undone and not step.reapplied:
        return "the schema does not change, so older and newer code share it."
    text = "; ".join(step.reasons) if step.reasons else f"row {step.row}'s Rollback cell"
    pair = f"{_schema(step.schema)}->{_schema(step.previous)}"
    if step.mode == "live" and step.inferred:
        text += (
            f" (lint). The upgrade pair test {pair} checks it: its rollback check prepares the "
            f"newer code's queries on schema {_schema(step.schema)} and reports "
            "new-query-fails-on-old when they do not fit; declare `-- rollback: live` to make "
            "that fail the pair."
        )
    elif step.mode == "live":
        text += (
            f" (directive). The upgrade pair test {pair} proves it: its rollback check fails "
            f"the pair when the newer code's queries do not prepare on schema "
            f"{_schema(step.schema)}."
        )
    elif step.mode == "offline" and step.inferred:
        text += " (lint): the newer code may depend on what the down removes."
    elif step.mode == "offline":
        text += " (directive)."
    else:
        text += ": no migration can bring the older schema back."
    return "Why: " + text


def _step_lines(step: RollbackStep, plan: RollbackPlan) -> list[str]:
    if step.undone:
        what = f"schema {_schema(step.schema)}, undoes {_versions(step.undone)}"
    elif step.reapplied:
        what = f"schema {_schema(step.schema)}, applies {_versions(step.reapplied)} again"
    else:
        what = f"schema {_schema(step.schema)}, no schema change"
    mode = f"{step.mode} (inferred)" if step.inferred else step.mode
    lines = [f"{step.number}. CL {step.version.cl} - {what} - {mode}"]
    lines += _para(_why(step, plan))
    back, running = step.version, step.files_at
    if back.number is not None and running.number is not None and back.number > running.number:
        # Gerrit numbers are given at upload: going back can mean a higher number.
        lines += _para(
            f"Note: CL {back.cl} landed before CL {running.cl} although its number is "
            "higher: it ships the older schema."
        )
    new, old, target = step.files_at.cl, step.version.cl, _schema(step.schema)
    command = f"rollsafe migrate --down-to {target} --files-at {new}"
    if not step.undone and not step.reapplied:
        return lines + _para(f"Roll the components back one at a time to CL {old}.")
    actions: list[str]
    if step.mode == "restore":
        backup = step.backup.cl if step.backup is not None else new
        actions = [
            "Stop every component.",
            f"Restore the backup taken just before CL {backup} was deployed (the database at "
            f"schema {target}); every write since that backup is lost.",
            f"Start every component on CL {old}.",
        ]
    elif step.reapplied:
        actions = [
            "Stop every component.",
            f"Start one component on CL {old}; it applies {_versions(step.reapplied)} again. "
            "Wait until it is up.",
            "Start the others.",
        ]
    elif step.mode == "live":
        actions = [
            f"While the components of CL {new} keep running (do not restart them: on start "
            f"they would migrate up again), migrate the database down with the down files of "
            f"CL {new}:\n{command}",
            f"Roll the components back one at a time to CL {old}.",
        ]
    else:
        actions = [
            "Stop every component.",
            f"Migrate the database down with the down files of CL {new}:\n{command}",
            f"Start every component on CL {old}.",
        ]
    for letter, action in zip("abcdefg", actions, strict=False):
        # A command goes on a line of its own, never wrapped, so it can be copied as it is.
        prose, _, literal = action.partition("\n")
        lines += _para(prose, f"   {letter}. ", "      ")
        if literal:
            lines.append(f"        {literal}")
    return lines


def rollback_to_json(plan: RollbackPlan) -> dict[str, object]:
    """The plan as plain data for other tools (deploy pipelines, runbooks)."""
    return {
        "direction": "rollback",
        "from": {**_version_json(plan.start), "row": plan.start_row, "schema": plan.start_schema},
        "to": {**_version_json(plan.target), "row": plan.target_row, "schema": plan.target_schema},
        "allow_restore": plan.allow_restore,
        "complete": not plan.stopped,
        "rows_not_planned": plan.cut,
        "steps": [
            {
                "step": step.number,
                **_version_json(step.version),
                "row": step.row,
                "schema": step.schema,
                "previous_schema": step.previous,
                "rollback": step.mode,
                "inferred": step.inferred,
                "decided_by": step.source,
                "reasons": list(step.reasons),
                "migrate_down": list(step.undone),
                "apply_again": list(step.reapplied),
                "files_at": step.files_at.cl,
                "command": (
                    f"rollsafe migrate --down-to {_schema(step.schema)} --files-at "
                    f"{step.files_at.cl}"
                    if step.undone and step.mode != "restore"
                    else None
                ),
                "restore_backup_before": step.backup.cl if step.backup is not None else None,
            }
            for step in plan.steps
        ],
    }


def which_rollback(rows: Sequence[Row], version: CodeVersion) -> str | None:
    """One line for ``rollsafe which``: how to go back from this CL's row to the row above."""
    found = row_index(rows).get(version.commit)
    if found is None or found == 0:
        return None
    row, older = rows[found], rows[found - 1]
    mode = row.rollback_text()
    if row.rollback == "restore":
        how = f"restore the backup taken before CL {row.first.cl} was deployed"
    elif row.removed:
        how = f"stop every component, start CL {older.last.cl} (it applies the removed versions)"
    else:
        how = (
            f"`rollsafe migrate --down-to {_schema(older.schema)} --files-at {version.cl}`, "
            f"then CL {older.last.cl}"
        )
    return (
        f"{mode} to row {older.id} (schema {_schema(older.schema)}): {how}; "
        f"`rollsafe upgrade-plan --from {version.cl} --to {older.last.cl}` prints every step"
    )
