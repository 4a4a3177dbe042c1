"""Compare rollsafe's SQL lint with squawk on bench/lint_corpus/, and time both on 1,000 files.

Why: squawk is the linter PostgreSQL teams already know; rollsafe's rules
must catch every breaking change squawk catches among them (or say why a
difference is deliberate), and lint must stay cheap enough to run on every
commit.  Each corpus file states on its first line which rollsafe rules it
should fire (``-- Expected: ...``); that is the ground truth both linters are
scored against.

Usage::

    python bench/lint_vs_squawk.py            # print the report
    python bench/lint_vs_squawk.py --write    # also rewrite bench/lint_vs_squawk.md

Exits 1 when rollsafe misses a breaking change squawk catches, or when its
own findings differ from a file's expectation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rollsafe.lint import RULES, lint_catalogue
from rollsafe.lint._sql import analyse
from rollsafe.migrate import load_catalogue

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "lint_corpus"
REPORT = HERE / "lint_vs_squawk.md"
FILES = 1000
RUNS = 5

#: squawk rule -> the rollsafe rules that cover the same hazard.
SQUAWK_TO_OURS: Mapping[str, frozenset[str]] = {
    "ban-drop-table": frozenset({"drop-table"}),
    "ban-drop-view": frozenset({"drop-table"}),
    "ban-drop-column": frozenset({"drop-column"}),
    "ban-drop-type": frozenset({"drop-type", "drop-enum-value"}),
    "renaming-table": frozenset({"rename-table"}),
    "renaming-column": frozenset({"rename-column"}),
    "renaming-object": frozenset({"drop-type", "drop-enum-value", "rename-table"}),
    "adding-required-field": frozenset({"add-not-null-column"}),
    "adding-not-nullable-field": frozenset({"set-not-null"}),
    "changing-column-type": frozenset({"change-column-type"}),
    "constraint-missing-not-valid": frozenset({"add-constraint", "constraint-validates-rows"}),
    "adding-foreign-key-constraint": frozenset({"add-constraint", "constraint-validates-rows"}),
    "disallowed-unique-constraint": frozenset({"add-constraint", "constraint-validates-rows"}),
    "adding-serial-primary-key-field": frozenset(
        {"add-constraint", "add-column-rewrites-table", "constraint-validates-rows"}
    ),
    "require-concurrent-index-creation": frozenset({"index-not-concurrent"}),
    "require-concurrent-index-deletion": frozenset({"index-not-concurrent"}),
    "syntax-error": frozenset({"not-analysed"}),
}

#: Why squawk fires where the ground truth says nothing: rollsafe's deliberate choices.
DELIBERATE = {
    "28_create_table_and_index.sql": "the table is created in the same file: no old code uses it, "
    "nothing waits on its lock",
    "34_drop_created_table.sql": "the dropped table was created in the same file",
    "35_rename_with_compat_view.sql": "a view under the old name keeps old code working",
    "37_replace_view.sql": "the view is dropped and re-created in the same file",
    "38_add_default_then_not_null.sql": "the column was added with a default in the same file: "
    "old inserts get the default",
    "39_create_type_and_table.sql": "every object is created in the same file",
    "46_check_on_new_column.sql": "the column was added in the same file: old code never "
    "writes it, and its rows are all NULL, which pass the check",
    "05_drop_enum_value_recreate.sql": "the type change belongs to the rename-and-recreate "
    "pattern, reported once as drop-enum-value",
}


@dataclass(frozen=True)
class Row:
    """One corpus file: expected rollsafe rules, what each linter reported."""

    file: str
    expected: frozenset[str]
    ours: frozenset[str]
    squawk: frozenset[str]
    squawk_other: frozenset[str]

    @property
    def squawk_mapped(self) -> frozenset[str]:
        """Our rules that squawk's findings in scope stand for."""
        return frozenset().union(*(SQUAWK_TO_OURS[r] for r in self.squawk))

    @property
    def missed(self) -> frozenset[str]:
        """Breaking or risky hazards squawk caught here and rollsafe did not."""
        return frozenset(
            rule
            for rule in self.squawk
            if SQUAWK_TO_OURS[rule] & self.expected and not SQUAWK_TO_OURS[rule] & self.ours
        )


def unexplained_extra(row: Row) -> frozenset[str]:
    """squawk rules in scope that stand for nothing the file is expected to fire."""
    return frozenset(rule for rule in row.squawk if not SQUAWK_TO_OURS[rule] & row.expected)


def expected_of(text: str) -> frozenset[str]:
    first = text.splitlines()[0]
    if not first.startswith("-- Expected:"):
        raise SystemExit(f"corpus file without `-- Expected:` line: {first!r}")
    value = first.removeprefix("-- Expected:").strip()
    return frozenset() if value == "none" else frozenset(v.strip() for v in value.split(","))


def squawk_version() -> str:
    done = subprocess.run(["squawk", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "squawk (unknown version)"


def run_squawk(folder: Path, names: Sequence[str]) -> dict[str, set[str]]:
    """squawk's rule names per file (its exit code is non-zero whenever it finds something)."""
    done = subprocess.run(
        ["squawk", "--reporter", "json", *names],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    found: dict[str, set[str]] = {name: set() for name in names}
    for item in json.loads(done.stdout or "[]"):
        found.setdefault(Path(item["file"]).name, set()).add(item["rule_name"])
    return found


def compare() -> list[Row]:
    files = sorted(CORPUS.glob("*.sql"))
    squawk = run_squawk(CORPUS, [f.name for f in files])
    rows = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        found = squawk.get(path.name, set())
        rows.append(
            Row(
                file=path.name,
                expected=expected_of(text),
                ours=frozenset(hit.rule for hit in analyse(text).hits),
                squawk=frozenset(r for r in found if r in SQUAWK_TO_OURS),
                squawk_other=frozenset(r for r in found if r not in SQUAWK_TO_OURS),
            )
        )
    return rows


def generate(folder: Path, count: int) -> list[str]:
    """``count`` migration files cycled from the corpus, each text unique (no cache hits)."""
    corpus = sorted(CORPUS.glob("*.sql"))
    names = []
    for index in range(count):
        source = corpus[index % len(corpus)]
        stem = source.stem.split("_", 1)[1]
        name = f"{index + 1:06d}_{stem}.up.sql"
        text = source.read_text(encoding="utf-8") + f"-- copy {index}\n"
        (folder / name).write_text(text, encoding="utf-8")
        names.append(name)
    return names


def timed(action: Callable[[], object]) -> float:
    """Best wall time of `RUNS` runs, in seconds (a shared machine only ever adds time)."""
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return min(samples)


def timings() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        folder = root / "migrations"
        folder.mkdir()
        names = generate(folder, FILES)

        def in_process() -> None:
            analyse.cache_clear()
            lint_catalogue(load_catalogue(root, "migrations"))

        # As a user runs it: the console script beside this interpreter.
        script = Path(sys.executable).with_name("rollsafe")
        command = [
            str(script) if script.is_file() else "rollsafe",
            *("lint", "--no-history", "--format", "json", "--repo", str(root)),
        ]

        def cold_process() -> None:
            subprocess.run(command, check=False, capture_output=True)

        def squawk() -> None:
            subprocess.run(["squawk", *names], cwd=folder, check=False, capture_output=True)

        return {
            "rollsafe, in process (parse + rules + directives)": timed(in_process),
            "rollsafe, new Python process (imports included)": timed(cold_process),
            "squawk CLI": timed(squawk),
        }


def _cell(rules: frozenset[str]) -> str:
    return ", ".join(sorted(rules)) or "—"


def render(rows: Sequence[Row], times: Mapping[str, float]) -> str:
    missed = [row for row in rows if row.missed]
    wrong = [row for row in rows if row.ours != row.expected]
    squawk_missing = [row for row in rows if row.expected - row.squawk_mapped]
    extra = [row for row in rows if unexplained_extra(row)]
    lines = [
        "# rollsafe lint vs squawk",
        "",
        "Generated by `python bench/lint_vs_squawk.py --write`; do not edit by hand.",
        "",
        f"- {squawk_version()}, rollsafe's SQL rules on pglast (PostgreSQL's parser), "
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs.",
        f"- Corpus: {len(rows)} migration files in `bench/lint_corpus/`; the first line of each "
        "says which rollsafe rules it must fire (`none` for the safe patterns).",
        "- squawk's rules outside this comparison (lock and statement timeouts, robust "
        "`IF EXISTS` statements, `bigint`/`text`/identity preferences) are listed in the "
        "last column but not scored: they concern style and operations, not old code.",
        "",
        "## Result",
        "",
        f"- Breaking or risky changes squawk catches that rollsafe misses: **{len(missed)}**"
        + (f" ({', '.join(r.file for r in missed)})" if missed else "")
        + ".",
        f"- Files where rollsafe differs from the expectation: **{len(wrong)}**"
        + (f" ({', '.join(r.file for r in wrong)})" if wrong else "")
        + ".",
        f"- Files where squawk misses an expected hazard: **{len(squawk_missing)}** "
        f"({', '.join(r.file for r in squawk_missing)}).",
        f"- Files where squawk fires a rule the expectation does not call for: "
        f"**{len(extra)}** (rollsafe's deliberate choices, explained below).",
        "",
        f"## Time on {FILES:,} files",
        "",
        f"Best of {RUNS} runs; the files are the corpus repeated, each copy made unique so no "
        "cache helps.",
        "",
        "| Linter | Seconds | x squawk |",
        "|---|---:|---:|",
    ]
    squawk = times["squawk CLI"]
    lines += [
        f"| {name} | {seconds:.2f} | {seconds / squawk:.2f}x |" for name, seconds in times.items()
    ]
    lines += [
        "",
        "## Per file",
        "",
        "| File | Expected | rollsafe | squawk (mapped rules) | squawk, not scored |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        ours = _cell(row.ours) + ("" if row.ours == row.expected else " **(differs)**")
        lines.append(
            f"| `{row.file}` | {_cell(row.expected)} | {ours} | {_cell(row.squawk)} | "
            f"{_cell(row.squawk_other)} |"
        )
    lines += [
        "",
        "## Rule mapping",
        "",
        "| squawk | rollsafe |",
        "|---|---|",
    ]
    lines += [f"| {s} | {_cell(o)} |" for s, o in SQUAWK_TO_OURS.items()]
    lines += [
        "",
        "## Where squawk fires and rollsafe deliberately does not",
        "",
    ]
    lines += [f"- `{name}`: {why}." for name, why in DELIBERATE.items()]
    lines += [
        "",
        "## What only rollsafe catches",
        "",
        "- Dropping an enum label: `DELETE FROM pg_enum`, `RENAME VALUE`, and the "
        "rename-and-recreate pattern (squawk sees a type drop or a rename at best).",
        "- Using an enum label added in the same file (`enum-value-same-transaction`): "
        "PostgreSQL refuses it until the transaction commits.",
        "- A `CHECK` added `NOT VALID` still breaks old writes (`add-constraint`); squawk "
        "only looks at the validation scan.",
        "- `CREATE UNIQUE INDEX CONCURRENTLY` on an existing table is a new constraint for "
        "old code.",
        "- CockroachDB syntax that PostgreSQL misreads rather than rejects (inline "
        "`INDEX name (col)` parsed as a column) and `DO` blocks are reported as not analysed; "
        "squawk's own parser accepts the first and says nothing about the second.",
        "",
        "Rules and severities: see the README's lint section "
        f"({len(RULES)} rules, ids as in `-- lint: ignore`).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"rewrite {REPORT.name}")
    args = parser.parse_args(argv)
    if shutil.which("squawk") is None:
        print("squawk is not installed (pip install squawk-cli)", file=sys.stderr)
        return 2
    rows = compare()
    report = render(rows, timings())
    print(report, end="")
    if args.write:
        REPORT.write_text(report, encoding="utf-8")
    failed = any(row.missed or row.ours != row.expected for row in rows)
    unexplained = [r.file for r in rows if unexplained_extra(r) and r.file not in DELIBERATE]
    if unexplained:
        print(f"explain squawk's extra findings in DELIBERATE: {unexplained}", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
