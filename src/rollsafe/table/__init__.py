"""The release table: rows by landing order, upgrade plans, and the DEPLOYING file.

Why: rows, CL ranges and plans are plain data computed from history, so
they are tested in memory; the DEPLOYING writer only renders them between
the markers and leaves the team's prose alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollsafe._lazy import lazy_names

if TYPE_CHECKING:
    from rollsafe.table._cells import RollbackVerdict, Verdict
    from rollsafe.table._compute import Computed, compute, compute_rows
    from rollsafe.table._deploying import (
        merge_document,
        read_document,
        render_block,
        rows_to_json,
        unified_diff,
    )
    from rollsafe.table._plan import Plan, Step, plan_upgrade
    from rollsafe.table._rows import (
        Row,
        leading_without_schema,
        out_of_order_for,
        row_index,
        rows_from,
    )

__all__ = [
    "Computed",
    "Plan",
    "RollbackVerdict",
    "Row",
    "Step",
    "Verdict",
    "compute",
    "compute_rows",
    "leading_without_schema",
    "merge_document",
    "out_of_order_for",
    "plan_upgrade",
    "read_document",
    "render_block",
    "row_index",
    "rows_from",
    "rows_to_json",
    "unified_diff",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "Computed": "._compute",
        "compute": "._compute",
        "compute_rows": "._compute",
        "RollbackVerdict": "._cells",
        "Row": "._rows",
        "Verdict": "._cells",
        "leading_without_schema": "._rows",
        "out_of_order_for": "._rows",
        "row_index": "._rows",
        "rows_from": "._rows",
        "Plan": "._plan",
        "Step": "._plan",
        "plan_upgrade": "._plan",
        "merge_document": "._deploying",
        "read_document": "._deploying",
        "render_block": "._deploying",
        "rows_to_json": "._deploying",
        "unified_diff": "._deploying",
    },
)
