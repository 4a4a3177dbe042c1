"""Benchmark: ``upgrade_pairs`` against the floor and against the naive way.

Why: the pair test runs in every CI build, for every adjacent pair of rows,
so its cost must grow linearly with history and stay close to what merely
applying the migrations costs.  Three figures, in the same run, on the same
throwaway PostgreSQL:

* **floor**: one database, every migration applied once up (each version's
  seed loaded after it, as the chain does) and once down; nothing else.
* **upgrade_pairs**: all seven steps and the rollback check for every pair, as ``rollsafe
  upgrade-pairs`` runs them (``chain`` isolation, the default, with seed rows
  generated from the catalog, also the default), the same without generated
  seeds (``--no-generated-seeds``), and with ``clone`` isolation (a snapshot
  of every state, a clone per pair).
* **naive**: every pair replayed from an empty database (up to p with the
  seeds, then the pair's steps).

Histories are generated with ``git fast-import``: N commits, each adding one
migration with a down file (a new table every fourth, then a NOT NULL column
with a default, an index, a nullable column on it), a seed fixture and a check
fixture per version, and sqlc query files that grow with the schema (two
queries per table, updated when a column is added).  Target: ``upgrade_pairs``
within 3x the floor, growing linearly.

Run: ``python bench/pairs.py [--sizes 100,200] [--runs 5] [--naive-max 200] [--write]``;
``--write`` stores the Markdown table in ``bench/pairs.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rollsafe import _db
from rollsafe.config import load_config
from rollsafe.engines import Server, ephemeral_server, unique_name
from rollsafe.migrate import Migrator
from rollsafe.pairs import PairRunner, PairsRun, PairSuite, run_pairs
from rollsafe.pairs._fixtures import seed
from rollsafe.pairs._generate import DEFAULT_ROWS

HERE = Path(__file__).resolve().parent
EPOCH = 1_700_000_000
ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


# -- generating a history -----------------------------------------------------------------------


def _data(sink: IO[bytes], payload: bytes) -> None:
    sink.write(b"data %d\n%s\n" % (len(payload), payload))


def _queries(table: str, columns: Sequence[str]) -> str:
    insert_cols = ", ".join(["name", *columns])
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 2))
    select_cols = ", ".join(["id", "name", *columns])
    title = table.capitalize()
    return (
        f"-- name: Create{title} :one\n"
        f"INSERT INTO {table} ({insert_cols}) VALUES ({params}) RETURNING id;\n\n"
        f"-- name: List{title} :many\n"
        f"SELECT {select_cols} FROM {table} ORDER BY id;\n"
    )


def history_files(count: int) -> list[tuple[str, dict[str, str]]]:
    """The commits of a generated history: a message and the files each one writes."""
    commits: list[tuple[str, dict[str, str]]] = [
        ("project", {"pyproject.toml": '[tool.rollsafe]\nqueries = ["queries/*.sql"]\n'})
    ]
    table = ""
    columns: list[str] = []
    for version in range(1, count + 1):
        kind = version % 4
        files: dict[str, str] = {}
        name = f"{version:06d}"
        if kind == 1 or not table:
            table, columns = f"t{version}", []
            up = (
                f"CREATE TABLE {table} (id bigserial PRIMARY KEY, name text NOT NULL, "
                f"created_at timestamptz NOT NULL DEFAULT now());\n"
            )
            down = f"DROP TABLE {table};\n"
            title = f"create_{table}"
        elif kind == 2:
            column = f"c{version}"
            up = f"ALTER TABLE {table} ADD COLUMN {column} integer NOT NULL DEFAULT 0;\n"
            down = f"ALTER TABLE {table} DROP COLUMN {column};\n"
            columns.append(column)
            title = f"add_{column}"
        elif kind == 3:
            index = f"{table}_name_{version}_idx"
            up = f"CREATE INDEX {index} ON {table} (name);\n"
            down = f"DROP INDEX {index};\n"
            title = f"index_{table}"
        else:
            column = f"note{version}"
            up = f"ALTER TABLE {table} ADD COLUMN {column} text;\n"
            down = f"ALTER TABLE {table} DROP COLUMN {column};\n"
            title = f"add_{column}"
        files[f"migrations/{name}_{title}.up.sql"] = "-- compat: live\n" + up
        files[f"migrations/{name}_{title}.down.sql"] = down
        files[f"queries/{table}.sql"] = _queries(table, columns)
        files[f"tests/upgrade/{name}/seed.sql"] = (
            f"INSERT INTO {table} (name) SELECT 'row-' || (count(*) + 1) FROM {table};\n"
            f"INSERT INTO {table} (name) SELECT 'row-' || (count(*) + 1) FROM {table};\n"
        )
        files[f"tests/upgrade/{name}/check.sql"] = (
            f"SELECT NOT EXISTS (SELECT 1 FROM {table} WHERE name = '');\n"
        )
        commits.append((f"migration {version}", files))
    return commits


def generate(path: Path, count: int) -> None:
    """A repository (with its work tree) of ``count`` migrations, one commit each."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, env=ENV, check=True)
    process = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"], cwd=path, env=ENV, stdin=subprocess.PIPE
    )
    assert process.stdin is not None
    sink = process.stdin
    for mark, (message, files) in enumerate(history_files(count), start=1):
        stamp = EPOCH + mark * 3600
        sink.write(b"commit refs/heads/main\nmark :%d\n" % mark)
        sink.write(b"committer Bench <bench@example.com> %d +0000\n" % stamp)
        _data(sink, message.encode())
        if mark > 1:
            sink.write(b"from :%d\n" % (mark - 1))
        for file, text in sorted(files.items()):
            sink.write(b"M 100644 inline %s\n" % file.encode())
            _data(sink, text.encode())
        sink.write(b"\n")
    sink.write(b"done\n")
    sink.close()
    if process.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=path, env=ENV, check=True)


# -- the three measurements ------------------------------------------------------------------


def floor(server: Server, suite: PairSuite) -> float:
    """Every migration up once (with its seed, as the chain loads it) and down once."""
    db = server.create_database(unique_name("bench_floor"))
    try:
        started = time.perf_counter()
        with Migrator(db.dsn, suite.catalogue) as migrator:
            conn = _db.connect(_db.parse_target(db.dsn))
            try:
                for version in suite.catalogue.versions:
                    migrator.up_to(version)
                    fixture = suite.fixtures.get(version)
                    if fixture is not None:
                        seed(conn, fixture)
            finally:
                conn.close()
            migrator.down_to(None)
        return time.perf_counter() - started
    finally:
        server.drop(db)


def pairs_run(
    server: Server, suite: PairSuite, isolation: str, *, seed_rows: int = DEFAULT_ROWS
) -> PairsRun:
    """``upgrade_pairs`` over every pair (the engine is already up); ``seed_rows`` 0: none."""
    return run_pairs(
        server,
        suite.catalogue,
        suite.pairs,
        fixtures=suite.fixtures,
        old_queries=suite.old_queries,
        migrations_table=suite.config.migrations_table,
        isolation="clone" if isolation == "clone" else "chain",
        new_queries=suite.new_queries,
        seed_rows=seed_rows,
    )


def naive(server: Server, suite: PairSuite) -> float:
    """Every pair on its own database, replayed from empty: up to p with seeds, then the steps."""
    started = time.perf_counter()
    for pair in suite.pairs:
        with PairRunner(
            server,
            suite.catalogue,
            (pair,),
            fixtures=suite.fixtures,
            old_queries=suite.old_queries,
            migrations_table=suite.config.migrations_table,
            new_queries=suite.new_queries,
        ) as runner:
            result = runner.run(pair)
            if result.status == "failed":
                raise SystemExit(f"naive run: pair {pair.id} failed")
    return time.perf_counter() - started


@dataclass(frozen=True)
class Figures:
    migrations: int
    pairs: int
    history: float
    floor: float
    floor_median: float
    chain: float
    chain_median: float
    chain_first: float
    chain_runs: int
    plain: float  # upgrade_pairs without generated seeds
    plain_median: float
    generated_rows: int
    clone: float
    clone_copies: int
    naive: float | None


def measure(server: Server, size: int, root: Path, *, naive_max: int, runs: int) -> Figures:
    """Best of ``runs`` for the floor and upgrade_pairs (one run for clone and naive)."""
    repo = root / f"history-{size}"
    generate(repo, size)
    started = time.perf_counter()
    suite = PairSuite(load_config(repo), server=server)
    for pair in suite.pairs[:1]:
        suite.old_queries(pair)  # reads every pair's query files from git, once per suite
    history = time.perf_counter() - started
    try:
        # Floor and upgrade_pairs alternate, so that both see the same machine: on a shared
        # two-CPU machine a minute's load changes both by a third.
        floors: list[float] = []
        chains: list[PairsRun] = []
        plains: list[PairsRun] = []
        for _ in range(runs):
            floors.append(floor(server, suite))
            chains.append(pairs_run(server, suite, "chain"))
            plains.append(pairs_run(server, suite, "chain", seed_rows=0))
        for chain in (*chains, *plains):
            if not chain.ok:
                raise SystemExit(f"{size}: a pair failed: {[r.pair.id for r in chain.failed]}")
        chain = min(chains, key=lambda r: r.seconds)
        clone = pairs_run(server, suite, "clone")
        naive_seconds = naive(server, suite) if size <= naive_max else None
    finally:
        suite.close()
    return Figures(
        migrations=size,
        pairs=len(suite.pairs),
        history=history,
        floor=min(floors),
        floor_median=statistics.median(floors),
        chain=chain.seconds,
        chain_median=statistics.median(r.seconds for r in chains),
        chain_first=chains[0].seconds,
        chain_runs=chain.counters.migrations,
        plain=min(r.seconds for r in plains),
        plain_median=statistics.median(r.seconds for r in plains),
        generated_rows=sum(
            r.generated.rows + r.generated.replayed_rows
            for r in chain.results
            if r.generated is not None
        ),
        clone=clone.seconds,
        clone_copies=clone.counters.copies,
        naive=naive_seconds,
    )


def table(figures: Sequence[Figures]) -> str:
    lines = [
        "| Migrations | Pairs | Floor (s) | upgrade_pairs (s) | x floor | x floor, medians "
        "| first run (s) | Migration runs | without generated seeds (s) | x floor "
        "| generated seeds cost (medians) | Generated rows "
        "| clone isolation (s) | x floor | Naive (s) | x floor "
        "| Speed-up over naive |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        naive_cells = (
            f"{f.naive:.1f} | {f.naive / f.floor:.0f} | {f.naive / f.chain:.0f}x"
            if f.naive is not None
            else "- | - | -"
        )
        lines.append(
            f"| {f.migrations} | {f.pairs} | {f.floor:.2f} | {f.chain:.2f} | "
            f"{f.chain / f.floor:.1f} | {f.chain_median / f.floor_median:.1f} | "
            f"{f.chain_first:.2f} | {f.chain_runs} | {f.plain:.2f} | "
            f"{f.plain / f.floor:.1f} | {f.chain / f.plain:.2f}x "
            f"({f.chain_median / f.plain_median:.2f}x) | "
            f"{f.generated_rows} | {f.clone:.2f} | "
            f"{f.clone / f.floor:.1f} | "
            f"{naive_cells} |"
        )
    return "\n".join(lines)


def seeds_cost(server: Server, size: int, root: Path, runs: int) -> str:
    """Only upgrade_pairs with and without generated seeds, alternating: their cost, sharper.

    Why: on a shared machine the full benchmark's one-minute clone and naive
    runs let the load drift between the two; here they alternate ``runs``
    times within seconds of each other.
    """
    repo = root / f"seeds-{size}"
    generate(repo, size)
    suite = PairSuite(load_config(repo), server=server)
    try:
        suite.old_queries(suite.pairs[0])
        with_seeds: list[float] = []
        without: list[float] = []
        for _ in range(runs):
            with_seeds.append(pairs_run(server, suite, "chain").seconds)
            without.append(pairs_run(server, suite, "chain", seed_rows=0).seconds)
    finally:
        suite.close()
    ratios = sorted(a / b for a, b in zip(with_seeds, without, strict=True))
    return (
        f"| {size} | {min(with_seeds):.2f} | {min(without):.2f} | "
        f"{min(with_seeds) / min(without):.2f}x | "
        f"{statistics.median(with_seeds) / statistics.median(without):.2f}x | "
        f"{statistics.median(ratios):.2f}x |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100,200", help="migrations per history")
    parser.add_argument(
        "--naive-max", type=int, default=200, help="skip the naive run above this size"
    )
    parser.add_argument("--runs", type=int, default=5, help="best of this many runs")
    parser.add_argument("--write", action="store_true", help="write bench/pairs.md")
    parser.add_argument(
        "--seeds-cost",
        action="store_true",
        help="only upgrade_pairs with and without generated seeds, alternating (prints a table)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    root = Path(tempfile.mkdtemp(prefix="rollsafe-bench-pairs-"))
    if args.seeds_cost:
        try:
            with ephemeral_server("postgres") as server:
                rows = [seeds_cost(server, size, root, args.runs) for size in sizes]
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(
            "| Migrations | with generated seeds (s) | without (s) | best / best "
            "| median / median | median of run ratios |\n|---:|---:|---:|---:|---:|---:|\n"
            + "\n".join(rows)
        )
        return 0
    figures: list[Figures] = []
    try:
        with ephemeral_server("postgres") as server:
            for size in sizes:
                result = measure(server, size, root, naive_max=args.naive_max, runs=args.runs)
                figures.append(result)
                print(
                    f"{size} migrations: history {result.history:.2f}s, floor {result.floor:.2f}s, "
                    f"chain {result.chain:.2f}s (without generated seeds {result.plain:.2f}s), "
                    f"clone {result.clone:.2f}s, naive "
                    + (f"{result.naive:.1f}s" if result.naive is not None else "skipped"),
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    growth = ""
    if len(figures) >= 2:
        small, large = figures[0], figures[-1]
        growth = (
            f"\nGrowth from {small.migrations} to {large.migrations} migrations "
            f"({large.migrations / small.migrations:.1f}x): floor "
            f"{large.floor / small.floor:.2f}x, upgrade_pairs {large.chain / small.chain:.2f}x, "
            f"clone isolation {large.clone / small.clone:.2f}x"
            + (
                f", naive {large.naive / small.naive:.2f}x"
                if large.naive is not None and small.naive is not None
                else ""
            )
            + ".\n"
        )
    text = (
        "# upgrade_pairs vs the floor and the naive way\n\n"
        "Generated by `python bench/pairs.py --write`; do not edit by hand.\n\n"
        f"- PostgreSQL (rollsafe's embedded engine, durability off), Python "
        f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs.\n"
        f"- Wall-clock seconds, best of {args.runs} runs, floor and upgrade_pairs alternating "
        "(*x floor, medians*: the median run of each instead; clone isolation and naive: one "
        "run), engine already started, same server for all; reading history "
        "(`compute_rows`, and the old code's query files from git) is not included. "
        "*first run* is the first of the runs, before anything a run caches in the process "
        "(parsed migration and fixture files) is warm. upgrade_pairs generates seed rows from "
        "the catalog (the default, 3 rows a table and state); *without generated seeds* is "
        "the same run with `--no-generated-seeds`, alternating with it; clone isolation and "
        "naive generate seeds.\n\n" + table(figures) + "\n" + growth
    )
    print(text)
    if args.write:
        (HERE / "pairs.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
