"""Benchmark: a CI matrix of one job per upgrade pair, against one ``upgrade-pairs`` run.

Why: CI fans the pairs out (``nox -l --json`` feeds a matrix, each job runs
``nox -s 'upgrade_pairs(5->6)'``).  Without a state cache every job walks
the chain through every earlier pair to reach its start state, O(N^2) for
the matrix; with it a job restores its start state and runs one pair.

A generated history of 100 migrations (bench/pairs.py's generator, one pair
per migration) on one PostgreSQL server the bench starts (the jobs reach it
as the ``external`` engine, so per-job engine start is left out; a CI job
adds its own).  Every job is a new ``rollsafe upgrade-pairs --pair ID``
process, run one after another:

* **one run**: ``rollsafe upgrade-pairs`` over every pair, one process;
* **matrix, no cache**: each job walks the chain to its pair (``--no-cache``
  for the states; the history cache stays warm, as in CI);
* **matrix, cold cache**: an empty state folder; each job saves the state
  it ends in, which the next job restores;
* **matrix, warm cache**: every start state already saved;
* **per-job start-up**: ``rollsafe upgrade-pairs --list``, a process that
  reads history and lists the pairs (what every job pays before its pair).

Target: the whole matrix within 2x one run, plus the per-job start-up.
Beside the seconds, the migration files each variant runs (from the jobs'
JSON), which a busy machine cannot blur: the O(N) claim in numbers.

Run: ``python bench/fanout.py [--size 100] [--runs 3] [--no-cache-max 40]``.  The
matrix without a cache is measured on the first ``--no-cache-max`` pairs
only (it is quadratic) and extrapolated from its own fit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pairs import generate

from rollsafe.engines import ephemeral_server


def _job(repo: Path, env: dict[str, str], *args: str) -> tuple[float, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rollsafe.cli", "upgrade-pairs", "--repo", str(repo), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"job {args} failed: {done.stderr.strip() or done.stdout[-500:]}")
    data = json.loads(done.stdout) if "--format" in args else {}
    return seconds, data


#: Migration files run, summed over the jobs of the last `_matrix` call (the O(N) evidence).
RUNS: list[int] = []


def _matrix(
    repo: Path, env: dict[str, str], ids: Sequence[str], *extra: str
) -> tuple[list[float], int]:
    """Every pair as its own process, in order: the seconds of each job, and states restored."""
    times: list[float] = []
    restored = 0
    RUNS.clear()
    for pair_id in ids:
        seconds, data = _job(repo, env, "--pair", pair_id, "--format", "json", *extra)
        times.append(seconds)
        restored += int(str(data.get("states_restored", 0)))
        RUNS.append(int(str(data.get("migration_runs", 0))))
    return times, restored


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=100, help="migrations in the history")
    parser.add_argument("--runs", type=int, default=3, help="best of this many (per job)")
    parser.add_argument("--no-cache-max", type=int, default=40, help="pairs run without a cache")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="rollsafe-bench-fanout-"))
    try:
        repo = root / "repo"
        generate(repo, args.size)
        with ephemeral_server("postgres") as server:
            dsn = getattr(server, "admin_dsn")  # noqa: B009 - the engine's admin DSN
            env = {
                **os.environ,
                "ROLLSAFE_ENGINE": "external",
                "ROLLSAFE_DATABASE_URL": dsn,
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src"),
            }
            env.pop("ROLLSAFE_NO_CACHE", None)
            _job(repo, env, "--list")  # warm the history cache, as CI's cached .git/rollsafe
            _, listed = _job(repo, env, "--list", "--format", "json")
            ids = [str(p["id"]) for p in listed]
            startup = min(_job(repo, env, "--list")[0] for _ in range(args.runs))
            one_runs = [_job(repo, env, "--format", "json") for _ in range(args.runs)]
            one = min(seconds for seconds, _ in one_runs)
            one_migrations = int(one_runs[0][1]["migration_runs"])
            states = root / "states"
            cold: list[float] = []
            warm: list[float] = []
            restored_cold = restored_warm = 0
            for _ in range(args.runs):
                shutil.rmtree(states, ignore_errors=True)
                times, restored_cold = _matrix(repo, env, ids, "--state-cache", str(states))
                cold = times if not cold else [min(a, b) for a, b in zip(cold, times, strict=True)]
                cold_migrations = sum(RUNS)
                times, restored_warm = _matrix(repo, env, ids, "--state-cache", str(states))
                warm = times if not warm else [min(a, b) for a, b in zip(warm, times, strict=True)]
                warm_migrations = sum(RUNS)
            sample = ids[: args.no_cache_max]
            plain, _ = _matrix(repo, env, sample, "--no-cache")
            # Without a cache, job k runs the k pairs before it too: 3 runs a pair plus reaching
            # the first state, as the sample shows for its own jobs.
            per_pair = (RUNS[-1] - RUNS[0]) / max(1, len(RUNS) - 1)
            plain_migrations = round(sum(RUNS[0] + per_pair * k for k in range(len(ids))))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = len(ids)
    # Without a cache job k walks k pairs: fit time = a + b*k on the sample, sum over all n.
    k_mean = (len(sample) - 1) / 2
    t_mean = sum(plain) / len(plain)
    slope = sum((k - k_mean) * (t - t_mean) for k, t in enumerate(plain)) / max(
        1e-9, sum((k - k_mean) ** 2 for k in range(len(plain)))
    )
    intercept = t_mean - slope * k_mean
    plain_total = sum(intercept + slope * k for k in range(n))
    rows = [
        ("one `upgrade-pairs` run, one process", one, None, one_migrations),
        ("per-job start-up (`upgrade-pairs --list`)", startup, None, 0),
        (
            f"matrix, no state cache ({len(sample)} jobs run, {n} fitted)",
            plain_total,
            n,
            plain_migrations,
        ),
        (
            f"matrix, cold state cache ({restored_cold} of {n} jobs restored)",
            sum(cold),
            n,
            cold_migrations,
        ),
        (
            f"matrix, warm state cache ({restored_warm} of {n} jobs restored)",
            sum(warm),
            n,
            warm_migrations,
        ),
    ]
    print(
        f"{n} pairs ({args.size} migrations), every job a new process, best of {args.runs} "
        "per job (one run and start-up: best of the same), one PostgreSQL server shared "
        "(engine start not included)\n"
    )
    print(
        "| what | seconds | x one run | (matrix - jobs x start-up) x one run "
        "| migration runs | x one run |"
    )
    print("|---|--:|--:|--:|--:|--:|")
    for label, seconds, jobs, migrations in rows:
        ratio = f"{seconds / one:.2f}x"
        net = f"{(seconds - jobs * startup) / one:.2f}x" if jobs else ""
        work = f"{migrations} | {migrations / one_migrations:.2f}x" if migrations else " | "
        print(f"| {label} | {seconds:.2f} | {ratio} | {net} | {work} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
