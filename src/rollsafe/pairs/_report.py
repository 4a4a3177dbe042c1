"""What a pair run prints and writes: one line per pair, failures in full, JSON and JUnit.

Why: the console script and the nox sessions report the same results the
same way, so a failure reads alike in a terminal, a nox log and a CI
dashboard; the JUnit report has one test case per step, so a skipped down
shows as skipped, not passed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from rollsafe.errors import ConfigError
from rollsafe.pairs._model import Pair, PairResult, PairsRun, StepResult

#: The nox session name; a pair's session is ``upgrade_pairs(<pair id>)``.
SESSION = "upgrade_pairs"


def session_id(pair: Pair) -> str:
    """``upgrade_pairs(3->4)``: the nox session of one pair (and its JUnit suite name)."""
    return f"{SESSION}({pair.id})"


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
    for step in result.steps:
        if step.status == "noted" and step.findings:
            more = f" (+{len(step.findings) - 1} more)" if len(step.findings) > 1 else ""
            reasons.append(f"rollback offline: {step.findings[0].summary}{more}")
    if pair.upgrade == "offline" and result.status == "passed":
        reasons.append("offline step (old code is stopped first)")
    if result.generated is not None:
        reasons.append(result.generated.text())
    return head + ("  " + "; ".join(reasons) if reasons else "")


def failure_report(result: PairResult) -> str:
    """Every failure of a pair in full: pair, step, where, statement, server, what to do."""
    lines: list[str] = []
    pair = result.pair
    for step in result.steps:
        if step.status == "noted":
            # Not a failure: one line each, so the failures stay easy to find.
            lines.extend(
                f"NOTE {pair.id} (rollback {result.rollback}): {finding.summary}"
                + (f" ({finding.where}: {finding.server})" if finding.where else "")
                for finding in step.findings
            )
            continue
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
        f"{c.migrations} migration runs, {c.copies} database copies, {c.rebuilds} rebuilds"
        f"{f', {c.restores} saved states restored' if c.restores else ''}; "
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
        "new_last_cl": pair.new_last_cl or None,
        "rollback_declared": pair.rollback if pair.rollback_declared else None,
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
        "states_restored": c.restores,
        "ok": run.ok,
        "pairs": [
            {
                **pair_json(r.pair),
                "status": r.status,
                "rollback": r.rollback,
                "seconds": round(r.seconds, 4),
                "notes": list(r.notes),
                "generated": (
                    None
                    if r.generated is None
                    else {
                        "tables": r.generated.tables,
                        "rows": r.generated.rows,
                        "replayed_rows": r.generated.replayed_rows,
                        "skipped": list(r.generated.skipped),
                    }
                ),
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
            elif step.status == "noted":
                # JUnit has no "warning": the case passes and says what it found.
                out = ET.SubElement(case, "system-out")
                out.text = failure_report(PairResult(result.pair, (step,), (), result.seconds))
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


def pair_list_text(pairs: Sequence[Pair]) -> str:
    """The pairs for humans (``--list``): id, upgrade, migrations and CLs, one line each."""
    return "".join(
        f"{p.id:<14} {p.upgrade:<8} migrations {', '.join(map(str, p.migrations))}"
        f"  (CL {p.old_cl} -> {p.new_cl})\n"
        for p in pairs
    )
