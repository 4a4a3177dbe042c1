"""The ``upgrade-pairs`` command: run the upgrade test of every adjacent pair of rows.

Why: the release table claims which upgrades are live; this command proves
each claim against a real throwaway database, with the data and queries of
the code that shipped each schema.  `upgrade_pairs` is the typed function
the console script calls; the suite, the reports and the pair selection
are `rollsafe.pairs`'s (the nox sessions use them directly).

Output: one line per pair as it finishes, then every failure in full (pair,
step, statement, server message, what to do), then one summary line.
``--junit PATH`` also writes a JUnit XML report (one test case per step, so
a skipped down shows as skipped, not passed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from rollsafe.config import Config
from rollsafe.errors import EXIT_CHECK_FAILED

# The pure half of the pair machinery: selection, results, reports.  The database stack
# (psycopg, pglast, the engines, the runner) is imported when the suite runs a pair.
from rollsafe.pairs import (
    Isolation,
    PairResult,
    PairSuite,
    failure_report,
    list_pairs,
    pair_json,
    pair_line,
    pair_list_text,
    run_json,
    run_summary,
    select_pairs,
    write_junit,
)

if TYPE_CHECKING:
    from rollsafe.engines import Server

Format = Literal["text", "json"]


def upgrade_pairs(
    config: Config,
    *,
    pair: str | None = None,
    start: int | None = None,
    end: int | None = None,
    junit: Path | None = None,
    isolation: Isolation = "chain",
    fmt: Format = "text",
    list_only: bool = False,
    out: TextIO | None = None,
    progress: Callable[[PairResult], None] | None = None,
    server: Server | None = None,
    state_cache: Path | bool = True,
    seed_rows: int | None = None,
) -> int:
    """Run the upgrade test of the selected pairs (default: all); 1 when one failed.

    ``pair`` is a pair id (``3->4``) or the version it upgrades to (``4``);
    ``start``/``end`` keep the pairs inside a version range.  ``list_only``
    prints the pairs (with their nox session names) and starts no database.
    ``server`` runs on a server the caller started (default: a throwaway
    server of the configured engine).  ``state_cache``: where chain states
    are kept across processes (``True``: the default folder; ``False``: off).
    ``seed_rows`` overrides the configuration's rows generated per table and
    state (0: none).
    """
    out = out or sys.stdout
    if list_only:
        pairs = list_pairs(config)
        chosen = (
            select_pairs(pairs, pair=pair, start=start, end=end)
            if (pair is not None or start is not None or end is not None)
            else pairs
        )
        if fmt == "json":
            json.dump([pair_json(p) for p in chosen], out, indent=2)
            out.write("\n")
        else:
            out.write(pair_list_text(chosen))
        return 0
    with PairSuite(
        config,
        isolation=isolation,
        server=server,
        state_cache=state_cache,
        seed_rows=seed_rows,
    ) as suite:
        if not suite.pairs:
            print("upgrade pairs: none (the table has fewer than two rows)", file=out)
            return 0
        chosen = select_pairs(suite.pairs, pair=pair, start=start, end=end)
        suite.require_engine(max((p.target for p in chosen), default=None))
        for selected in chosen:
            result = suite.run(selected)
            if fmt == "text":
                print(pair_line(result), file=out, flush=True)
            if progress is not None:
                progress(result)
        run = suite.report()
    if junit is not None:
        write_junit(junit, run)
    if fmt == "json":
        json.dump(run_json(run), out, indent=2)
        out.write("\n")
    else:
        reports = [failure_report(r) for r in run.results if r.findings or r.notes]
        if reports:
            print("", file=out)
            print("\n\n".join(reports), file=out)
        print(run_summary(run), file=out)
        if junit is not None:
            print(f"wrote {junit}", file=out)
    return EXIT_CHECK_FAILED if not run.ok else 0


def handle_upgrade_pairs(config: Config, args: argparse.Namespace) -> int:
    """``rollsafe upgrade-pairs`` (`rollsafe.commands._spec`): parsed flags in, an exit code out."""
    return upgrade_pairs(
        config,
        pair=args.pair,
        start=args.start,
        end=args.end,
        junit=args.junit,
        isolation=args.isolation,
        fmt=args.fmt,
        list_only=args.list,
        state_cache=args.state_cache or True,
        seed_rows=0 if args.no_generated_seeds else args.seed_rows,
    )
