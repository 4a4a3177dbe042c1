"""The ``upgrade-pairs`` command: run the upgrade test of every adjacent pair of rows.

Why: the release table claims which upgrades are live; this command proves
each claim against a real throwaway database, with the data and queries of
the code that shipped each schema.  `upgrade_pairs` is the typed function
the console script, invoke and nox call; `PairSuite` is the long-lived form
nox sessions share, so that one engine and one chain of states serve every
pair session of a ``nox`` run.

Output: one line per pair as it finishes, then every failure in full (pair,
step, statement, server message, what to do), then one summary line.
``--junit PATH`` also writes a JUnit XML report (one test case per step, so
a skipped down shows as skipped, not passed).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from rollsafe.config import Config
from rollsafe.errors import EXIT_CHECK_FAILED, ConfigError, HistoryError

# The pure half of the pair machinery: pairs, selection, results.  The database stack
# (psycopg, pglast, the engines, the runner) and git are imported by the functions that
# use them, because the CLI imports every command module to build its parser, and
# `rollsafe release-table` must not pay for them.
from rollsafe.pairs import (
    Counters,
    Isolation,
    Pair,
    PairResult,
    PairsRun,
    StepResult,
    pairs_from,
    select_pairs,
)

if TYPE_CHECKING:
    from rollsafe.commands._registry import Registry
    from rollsafe.engines import Server
    from rollsafe.migrate import Catalogue
    from rollsafe.pairs import Fixture, PairRunner

Format = Literal["text", "json"]

#: The nox session name; a pair's session is ``upgrade_pairs(<pair id>)``.
SESSION = "upgrade_pairs"


def session_id(pair: Pair) -> str:
    """``upgrade_pairs(3->4)``: the nox session of one pair (and its JUnit suite name)."""
    return f"{SESSION}({pair.id})"


class PairSuite:
    """Everything one run needs, made once: pairs, catalogue, fixtures, engine, chain.

    The pairs come from the table's rows (`compute_rows`), the catalogue from
    the branch tip, the fixtures from the work tree, old code's query files
    from git at each older row's newest CL.  The engine starts on the first
    `run`, not before, so listing pairs never starts a server; a ``server``
    given by the caller (a test's, or one shared by several suites) is used
    instead and left running.
    """

    def __init__(
        self, config: Config, *, isolation: Isolation = "chain", server: Server | None = None
    ) -> None:
        from rollsafe.commands.table import compute_rows
        from rollsafe.pairs import load_fixtures

        self.config = config
        self.isolation: Isolation = isolation
        history, catalogue, rows = compute_rows(config)
        self.tip = history.tip
        self.catalogue: Catalogue = catalogue
        self.pairs = pairs_from(rows)
        self.fixtures: Mapping[int, Fixture] = load_fixtures(
            config.repo, config.fixtures, versions=set(catalogue.versions)
        )
        self._queries: dict[str, dict[str, str]] = {}
        self._stack = ExitStack()
        self._given = server
        self._server: Server | None = None
        self._runner: PairRunner | None = None
        self.results: list[PairResult] = []
        self.started = time.perf_counter()

    def __enter__(self) -> PairSuite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop every database and stop the engine (idempotent)."""
        self._runner = None
        self._server = None
        self._stack.close()

    def old_queries(self, pair: Pair) -> Mapping[str, str]:
        """The query files of the old code of ``pair``, read from git.

        The first call reads them for every pair at once (`query_files_at`),
        so a run costs two git processes, not two per pair.
        """
        if not self.config.queries:
            return {}
        from rollsafe import _git

        if not self._queries:
            commits = {p.old_commit for p in self.pairs}
            self._queries = query_files_at(self.config.repo, self.tip, commits, self.config.queries)
        cached = self._queries.get(pair.old_commit)
        if cached is None:
            cached = _git.files_at(self.config.repo, pair.old_commit, self.config.queries)
            self._queries[pair.old_commit] = cached
        return cached

    @property
    def engine(self) -> str:
        return self._server.kind if self._server is not None else self.config.engine

    def _runner_for(self) -> PairRunner:
        if self._runner is None:
            from rollsafe.engines import ephemeral_server
            from rollsafe.pairs import PairRunner

            self._server = self._given or self._stack.enter_context(
                ephemeral_server(self.config.engine)
            )
            self._runner = self._stack.enter_context(
                PairRunner(
                    self._server,
                    self.catalogue,
                    self.pairs,
                    fixtures=self.fixtures,
                    old_queries=self.old_queries,
                    migrations_table=self.config.migrations_table,
                    isolation=self.isolation,
                )
            )
        return self._runner

    def run(self, pair: Pair) -> PairResult:
        """Run one pair (starting the engine on first use) and keep its result."""
        result = self._runner_for().run(pair)
        self.results.append(result)
        return result

    @property
    def counters(self) -> Counters:
        return self._runner.counters if self._runner is not None else Counters()

    def report(self) -> PairsRun:
        """The results so far as one run."""
        return PairsRun(
            results=tuple(self.results),
            engine=self.engine,
            isolation=self.isolation,
            seconds=time.perf_counter() - self.started,
            counters=self.counters,
        )


def _literal_prefix(pattern: str) -> str:
    """The folder of a glob before its first wildcard (``queries/*.sql`` -> ``queries``)."""
    cut = min((i for i in (pattern.find(c) for c in "*?[") if i != -1), default=len(pattern))
    head = pattern[:cut]
    return head[: head.rfind("/")] if "/" in head else ""


def query_files_at(
    repo: Path, tip: str, commits: Collection[str], patterns: Sequence[str]
) -> dict[str, dict[str, str]]:
    """``commit -> {path: text}`` of the files matching ``patterns`` at each of ``commits``.

    Why: every pair reads the old code's query files at its own commit; one
    ``git log`` over the query folder (the history module's first-parent
    log) tracks which blob each path holds at every commit, and one
    ``git cat-file --batch`` reads the blobs, instead of two git processes
    per pair.  Commits that are not on the first-parent history of ``tip``
    are left out (the caller reads those one by one).  Patterns under
    several folders, or with a wildcard in the first folder, fall back to
    reading commit by commit.
    """
    from rollsafe import _git, _gitlog

    folders = {_literal_prefix(pattern) for pattern in patterns}
    if len(folders) != 1 or "" in folders:
        return {c: _git.files_at(repo, c, patterns) for c in commits}
    (folder,) = folders
    wanted = set(commits)
    state: dict[str, str] = {}
    found: dict[str, dict[str, str]] = {}
    handle = _git.open_repo(repo)
    for batch in _gitlog.first_parent_log(handle, tip, folder, messages=False, notes=None):
        for commit in batch:
            for change in commit.changes:
                if change.status in ("D", "R"):
                    state.pop(change.old_path, None)
                if change.status != "D":
                    if change.new_is_file:
                        state[change.new_path] = change.new_blob
                    else:
                        state.pop(change.new_path, None)
            sha = commit.sha.decode("ascii")
            if sha in wanted:
                found[sha] = {
                    path: blob
                    for path, blob in state.items()
                    if any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)
                }
    contents = _git.read_blobs(repo, {b for files in found.values() for b in files.values()})
    texts: dict[str, dict[str, str]] = {}
    for sha, files in found.items():
        texts[sha] = {}
        for path, blob in sorted(files.items()):
            try:
                texts[sha][path] = contents[blob].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise HistoryError(
                    f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                    where=f"{path} at {sha[:12]}",
                    fix="save the file as UTF-8",
                ) from exc
    return texts


# -- rendering -----------------------------------------------------------------------------------

_MARK = {"passed": "ok", "failed": "FAILED", "incomplete": "incomplete"}


def pair_line(result: PairResult) -> str:
    """The one summary line of a pair: id, upgrade, verdict, and why when not plainly passed."""
    pair = result.pair
    head = f"{pair.id:<14} {pair.upgrade:<8} {_MARK[result.status]:<10} {result.seconds:6.2f}s"
    reasons: list[str] = []
    for step in result.steps:
        if step.status == "failed":
            first = step.findings[0].summary if step.findings else step.detail
            more = f" (+{len(step.findings) - 1} more)" if len(step.findings) > 1 else ""
            reasons.append(f"step {step.number} {step.title}: {first}{more}")
    skipped = [s for s in result.steps if s.status == "skipped"]
    if skipped:
        numbers = "-".join(str(s.number) for s in (skipped[0], skipped[-1]))
        if len(skipped) == 1:
            numbers = str(skipped[0].number)
        reasons.append(f"steps {numbers} skipped: {skipped[0].detail.split(':')[0]}")
    if pair.upgrade == "offline" and result.status == "passed":
        reasons.append("offline step (old code is stopped first)")
    return head + ("  " + "; ".join(reasons) if reasons else "")


def failure_report(result: PairResult) -> str:
    """Every failure of a pair in full: pair, step, where, statement, server, what to do."""
    lines: list[str] = []
    pair = result.pair
    for step in result.steps:
        for finding in step.findings:
            lines.append(
                f"FAILED {pair.id} ({pair.upgrade}, CL {pair.old_cl} -> {pair.new_cl}), "
                f"step {step.number} {step.title}: {finding.summary}"
            )
            if finding.where:
                lines.append(f"  where:     {finding.where}")
            if finding.statement:
                lines.append(f"  statement: {finding.statement}")
            if finding.server:
                lines.append(f"  server:    {finding.server}")
            if finding.details:
                lines.extend(f"    {line}" for line in finding.details.splitlines())
            lines.append(f"  fix:       {finding.fix}")
    for note in result.notes:
        lines.append(f"  note ({pair.id}): {note}")
    return "\n".join(lines)


def run_summary(run: PairsRun) -> str:
    """The last line: counts, engine, and what the run cost."""
    counts = {status: 0 for status in ("passed", "failed", "incomplete")}
    for result in run.results:
        counts[result.status] += 1
    c = run.counters
    return (
        f"upgrade pairs: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['incomplete']} incomplete ({run.engine}, {run.isolation}; "
        f"{c.migrations} migration runs, {c.copies} database copies, {c.rebuilds} rebuilds; "
        f"{run.seconds:.2f}s)"
    )


def _step_json(step: StepResult) -> dict[str, object]:
    return {
        "step": step.number,
        "title": step.title,
        "status": step.status,
        "detail": step.detail,
        "seconds": round(step.seconds, 4),
        "findings": [
            {
                "kind": f.kind,
                "summary": f.summary,
                "where": f.where,
                "statement": f.statement,
                "server": f.server,
                "details": f.details,
                "fix": f.fix,
            }
            for f in step.findings
        ],
    }


def pair_json(pair: Pair) -> dict[str, object]:
    """A pair for other tools (``--list --format json``, CI matrices)."""
    return {
        "id": pair.id,
        "session": session_id(pair),
        "from": pair.previous,
        "to": pair.target,
        "upgrade": pair.upgrade,
        "migrations": list(pair.migrations),
        "old_cl": pair.old_cl,
        "old_commit": pair.old_commit,
        "new_cl": pair.new_cl,
    }


def run_json(run: PairsRun) -> dict[str, object]:
    """A run's results for other tools (``--format json``)."""
    c = run.counters
    return {
        "engine": run.engine,
        "isolation": run.isolation,
        "seconds": round(run.seconds, 3),
        "migration_runs": c.migrations,
        "database_copies": c.copies,
        "rebuilds": c.rebuilds,
        "ok": run.ok,
        "pairs": [
            {
                **pair_json(r.pair),
                "status": r.status,
                "seconds": round(r.seconds, 4),
                "notes": list(r.notes),
                "steps": [_step_json(s) for s in r.steps],
            }
            for r in run.results
        ],
    }


def junit_xml(run: PairsRun) -> str:
    """A JUnit XML report: a test suite per pair, a test case per step.

    Skipped steps (irreversible migrations), steps that do not apply (old
    code on an offline step) and steps not run after a failure are
    ``<skipped>`` with the reason, so a CI dashboard never counts them as
    passed.
    """
    root = ET.Element("testsuites", name="rollsafe upgrade pairs")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for result in run.results:
        suite = ET.SubElement(root, "testsuite", name=session_id(result.pair))
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for step in result.steps:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{SESSION}.{result.pair.id}",
                name=f"{step.number} {step.title}",
                time=f"{step.seconds:.4f}",
            )
            counts["tests"] += 1
            if step.status == "failed":
                counts["failures"] += 1
                first = step.findings[0] if step.findings else None
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=first.summary if first else step.detail,
                    type=first.kind if first else "failed",
                )
                failure.text = failure_report(
                    PairResult(result.pair, (step,), result.notes, result.seconds)
                )
            elif step.status in ("skipped", "not applicable", "not run"):
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=f"{step.status}: {step.detail}")
            elif step.detail:
                out = ET.SubElement(case, "system-out")
                out.text = step.detail
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{result.seconds:.4f}")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{run.seconds:.4f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: Path, run: PairsRun) -> None:
    """Write the JUnit report (folders created); an unwritable path is a clear error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(junit_xml(run), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the JUnit report: {exc.strerror}",
            where=str(path),
            fix="give --junit a writable path",
        ) from exc


# -- the command -----------------------------------------------------------------------------------


def list_pairs(config: Config) -> tuple[Pair, ...]:
    """The adjacent pairs of the table's rows, computed from git history (no database)."""
    from rollsafe.commands.table import compute_rows

    _history, _catalogue, rows = compute_rows(config)
    return pairs_from(rows)


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
) -> int:
    """Run the upgrade test of the selected pairs (default: all); 1 when one failed.

    ``pair`` is a pair id (``3->4``) or the version it upgrades to (``4``);
    ``start``/``end`` keep the pairs inside a version range.  ``list_only``
    prints the pairs (with their nox session names) and starts no database.
    ``server`` runs on a server the caller started (default: a throwaway
    server of the configured engine).
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
            for p in chosen:
                out.write(
                    f"{p.id:<14} {p.upgrade:<8} migrations {', '.join(map(str, p.migrations))}"
                    f"  (CL {p.old_cl} -> {p.new_cl})\n"
                )
        return 0
    with PairSuite(config, isolation=isolation, server=server) as suite:
        if not suite.pairs:
            print("upgrade pairs: none (the table has fewer than two rows)", file=out)
            return 0
        chosen = select_pairs(suite.pairs, pair=pair, start=start, end=end)
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


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a migration version: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a migration version: {text!r}")
    return value


def add_selection_flags(parser: argparse.ArgumentParser) -> None:
    """``--pair``, ``--from``, ``--to``, ``--junit``: shared by the CLI and the nox sessions."""
    parser.add_argument(
        "--pair", metavar="V", help="one pair: its id (3->4) or the version it upgrades to (4)"
    )
    parser.add_argument(
        "--from", dest="start", type=_version, metavar="V", help="pairs starting at V or later"
    )
    parser.add_argument(
        "--to", dest="end", type=_version, metavar="V", help="pairs ending at V or earlier"
    )
    parser.add_argument("--junit", type=Path, metavar="PATH", help="also write a JUnit XML report")
    parser.add_argument(
        "--isolation",
        choices=("chain", "clone"),
        default="chain",
        help="chain (default): pairs run in turn on one database, rebuilt after a failure; "
        "clone: each pair on a clone of a snapshot of its state (two copies a pair)",
    )


def _handle(config: Config, args: argparse.Namespace) -> int:
    return upgrade_pairs(
        config,
        pair=args.pair,
        start=args.start,
        end=args.end,
        junit=args.junit,
        isolation=args.isolation,
        fmt=args.fmt,
        list_only=args.list,
    )


def register(registry: Registry) -> None:
    """Add ``upgrade-pairs`` to the CLI."""
    parser = registry.add(
        "upgrade-pairs",
        "test the upgrade of every adjacent pair of schema rows against a throwaway database",
        _handle,
    )
    add_selection_flags(parser)
    parser.add_argument(
        "--list", action="store_true", help="list the pairs (and nox session names); run nothing"
    )
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=("text", "json"),
        default="text",
        help="text for humans (default) or json for other tools",
    )
