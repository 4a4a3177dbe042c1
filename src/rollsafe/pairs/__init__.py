"""The upgrade pair test: for each pair of adjacent rows p -> n, the seven steps of DESIGN.md.

Why: a rolling upgrade is safe only if old code works on the new schema,
the migration runs on populated data, and the down migration restores the
old schema without losing rows; this package proves each of those on a
throwaway database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rollsafe._lazy import lazy_names

if TYPE_CHECKING:
    from rollsafe.pairs._engine import cockroach_need, require_engine
    from rollsafe.pairs._fixtures import Fixture, load_fixtures
    from rollsafe.pairs._model import (
        Counters,
        Isolation,
        Pair,
        PairResult,
        PairsRun,
        StepResult,
        pairs_from,
        select_pairs,
    )
    from rollsafe.pairs._report import (
        SESSION,
        failure_report,
        junit_xml,
        pair_json,
        pair_line,
        pair_list_text,
        run_json,
        run_summary,
        session_id,
        write_junit,
    )
    from rollsafe.pairs._runner import PairRunner, run_pairs
    from rollsafe.pairs._suite import PairSuite, list_pairs, query_files_at

__all__ = [
    "SESSION",
    "Counters",
    "Fixture",
    "Isolation",
    "Pair",
    "PairResult",
    "PairRunner",
    "PairSuite",
    "PairsRun",
    "StepResult",
    "cockroach_need",
    "failure_report",
    "junit_xml",
    "list_pairs",
    "load_fixtures",
    "pair_json",
    "pair_line",
    "pair_list_text",
    "pairs_from",
    "query_files_at",
    "require_engine",
    "run_json",
    "run_pairs",
    "run_summary",
    "select_pairs",
    "session_id",
    "write_junit",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "Counters": "._model",
        "Isolation": "._model",
        "Pair": "._model",
        "PairResult": "._model",
        "PairsRun": "._model",
        "StepResult": "._model",
        "pairs_from": "._model",
        "select_pairs": "._model",
        "PairRunner": "._runner",
        "run_pairs": "._runner",
        "Fixture": "._fixtures",
        "cockroach_need": "._engine",
        "require_engine": "._engine",
        "load_fixtures": "._fixtures",
        "SESSION": "._report",
        "failure_report": "._report",
        "junit_xml": "._report",
        "pair_json": "._report",
        "pair_line": "._report",
        "pair_list_text": "._report",
        "run_json": "._report",
        "run_summary": "._report",
        "session_id": "._report",
        "write_junit": "._report",
        "PairSuite": "._suite",
        "list_pairs": "._suite",
        "query_files_at": "._suite",
    },
)
