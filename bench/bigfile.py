"""Benchmark: one 5 MB migration of 75,000 INSERTs, linted, tabled and failed, against pglast alone.

Why: a bulk-data migration is an ordinary thing to commit, and every
command reads it; a cost that grows with the square of the file (a line
count from the top for every statement) turned 5 MB into 80 s.  The floor
is PostgreSQL's parser on the same file through pglast (its C parser
returning JSON), the least any command that reads the SQL must pay;
``pglast.parse_sql``, which also builds Python objects, is shown beside it.

    python bench/bigfile.py [--inserts 75000] [--repeat 3]

Each command runs as a new process, as a user runs it (interpreter start-up
included), best of ``--repeat``; the result is a Markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rollsafe.engines import ephemeral_server

FLOOR = """
import sys, pglast
pglast.parse_sql(open(sys.argv[1]).read())
"""


RAW_FLOOR = """
import sys
from pglast.parser import parse_sql_json
parse_sql_json(open(sys.argv[1]).read())
"""


def write_repo(root: Path, inserts: int, *, failing: bool) -> Path:
    """A git repository with one migration of ``inserts`` INSERTs (the last fails when asked)."""
    root.mkdir(parents=True)
    migrations = root / "migrations"
    migrations.mkdir()
    lines = ["-- compat: live", "CREATE TABLE big (id bigint PRIMARY KEY, name text, note text);"]
    lines += [
        f"INSERT INTO big (id, name) VALUES ({i}, 'machine-{i:06d}-xyzw');" for i in range(inserts)
    ]
    if failing:
        lines.append("INSERT INTO big (id, missing) VALUES (0, 0);")
    up = migrations / "000001_bulk_load.up.sql"
    up.write_text("\n".join(lines) + "\n")
    (migrations / "000001_bulk_load.down.sql").write_text("DROP TABLE big;\n")
    git = ["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@example"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "bulk load"], check=True)
    return up


def timed(argv: list[str], *, expect: int = 0) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(argv[:4])}: exit {done.returncode}: {done.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inserts", type=int, default=75_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "rollsafe.cli"]
    with tempfile.TemporaryDirectory(prefix="rollsafe-bench-") as scratch:
        good = Path(scratch) / "good"
        bad = Path(scratch) / "bad"
        up = write_repo(good, args.inserts, failing=False)
        write_repo(bad, args.inserts, failing=True)
        size = up.stat().st_size / 1e6
        with ephemeral_server("postgres") as server:
            runs: dict[str, list[float]] = {}
            for _ in range(args.repeat):
                python, repo = sys.executable, str(good)
                for name, argv in (
                    ("pglast.parse_sql (Python objects)", [python, "-c", FLOOR, str(up)]),
                    ("pglast's parser to JSON (the floor)", [python, "-c", RAW_FLOOR, str(up)]),
                    ("rollsafe lint --no-history", [*cli, "lint", "--no-history", "--repo", repo]),
                    ("rollsafe release-table", [*cli, "release-table", "--repo", repo]),
                ):
                    runs.setdefault(name, []).append(timed(argv))
                for name, source, expect in (
                    ("rollsafe migrate (succeeds)", good, 0),
                    ("rollsafe migrate (fails on the last INSERT)", bad, 2),
                ):
                    db = server.create_database()
                    argv = [*cli, "migrate", "--repo", str(source), "--dsn", db.dsn]
                    runs.setdefault(name, []).append(timed(argv, expect=expect))
                    server.drop(db)
    floor = min(runs["pglast's parser to JSON (the floor)"])
    print(f"{args.inserts:,} INSERTs, {size:.1f} MB, best of {args.repeat}, new process each\n")
    print("| what | seconds | vs the floor |")
    print("|---|--:|--:|")
    for name, times in runs.items():
        print(f"| {name} | {min(times):.2f} | {min(times) / floor:.2f}x |")


if __name__ == "__main__":
    main()
