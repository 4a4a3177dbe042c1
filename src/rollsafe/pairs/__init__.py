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
    from rollsafe.pairs._runner import PairRunner, run_pairs

__all__ = [
    "Counters",
    "Fixture",
    "Isolation",
    "Pair",
    "PairResult",
    "PairRunner",
    "PairsRun",
    "StepResult",
    "load_fixtures",
    "pairs_from",
    "run_pairs",
    "select_pairs",
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
        "load_fixtures": "._fixtures",
    },
)
