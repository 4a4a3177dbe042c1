"""Benchmark: how long a command takes as a user types it, against a bare ``python -c pass``.

Why: a release engineer runs ``rollsafe which 1565`` dozens of times a day;
most of a short command is fixed start-up (the interpreter, then whatever
modules the command imports), so each figure is a ratio to an interpreter
that does nothing, measured in the same run.  Target: ``which`` on a warm
cache under 5x ``python -c pass``.

Commands, each a new process of the installed console script (the one next
to this interpreter), on this repository with its caches warm (one run
first): ``--help``, ``which <CL>``, ``lint`` on an empty folder (a new git
repository with an empty migrations folder), and ``migrate --status``
against a throwaway PostgreSQL at the newest version.

Run: ``python bench/startup.py [--runs 15]``; best of ``--runs`` each, the
commands interleaved so a busy machine slows all of them alike.  Wall time
is what a user feels; CPU time (user + system of the process) is printed
beside it because on a shared machine it is the steadier of the two.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from history import console_script

ROOT = Path(__file__).resolve().parent.parent


def _time(command: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="best of this many")
    args = parser.parse_args(argv)
    from rollsafe.engines import ephemeral_server
    from rollsafe.migrate import Migrator, load_catalogue

    script = console_script()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    env.pop("ROLLSAFE_NO_CACHE", None)
    table = subprocess.run(
        [script, "release-table", "--format", "json", "--repo", str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cl = json.loads(table.stdout)["rows"][-1]["first"]["cl"]
    with tempfile.TemporaryDirectory(prefix="rollsafe-bench-startup-") as scratch:
        empty = Path(scratch) / "empty"
        (empty / "migrations").mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(empty)], check=True)
        with ephemeral_server("postgres") as server:
            db = server.create_database()
            with Migrator(db.dsn, load_catalogue(ROOT, "migrations")) as migrator:
                migrator.up()
            commands: dict[str, list[str]] = {
                "`python -c pass`": [sys.executable, "-c", "pass"],
                "`rollsafe --help`": [script, "--help"],
                f"`rollsafe which {cl}` (warm cache)": [script, "which", cl, "--repo", str(ROOT)],
                "`rollsafe lint` (empty folder)": [script, "lint", "--repo", str(empty)],
                "`rollsafe migrate --status`": [
                    *(script, "migrate", "--status", "--dsn", db.dsn, "--repo", str(ROOT)),
                ],
            }
            best = dict.fromkeys(commands, float("inf"))
            best_cpu = dict.fromkeys(commands, float("inf"))
            for command in commands.values():
                _time(command, env, ROOT)  # warm caches (history, verdicts, bytecode)
            for _ in range(args.runs):
                for name, command in commands.items():
                    wall, cpu = _time(command, env, ROOT)
                    best[name] = min(best[name], wall)
                    best_cpu[name] = min(best_cpu[name], cpu)
    floor = best["`python -c pass`"]
    floor_cpu = best_cpu["`python -c pass`"]
    print(f"best of {args.runs}, interleaved; {sys.executable} ({sys.version.split()[0]})\n")
    print("| command | wall s | x `python -c pass` | CPU s | x `python -c pass` |")
    print("|---|--:|--:|--:|--:|")
    for name, seconds in best.items():
        cpu = best_cpu[name]
        print(
            f"| {name} | {seconds:.3f} | {seconds / floor:.1f}x | {cpu:.3f} | "
            f"{cpu / floor_cpu:.1f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
