"""Benchmark: `rollsafe release-table --format json` against git's own first-parent log.

Why: the release table is computed from the whole first-parent history on
every CI run, so it must stay close to what git itself needs to list the
migrations folder's changes, and grow linearly with the number of commits.
Target: rollsafe at most 2x ``git log --first-parent --raw -- migrations/``
at 50,000 commits.

The repositories are generated with ``git fast-import`` and cached under
``bench/out/`` (git-ignored): 5,000, 20,000 and 50,000 first-parent commits,
500 migrations (up and down files) spread over them, a few of them edited or
renamed later, source-file churn in every commit (so git has real
trees to diff), a ``--no-ff`` merge of a two-commit side branch every 200
commits, and Gerrit ``Reviewed-on:`` trailers with some numbers landing out of
order.  Both commands run against the same repository in the same run; each
figure is the best of three wall-clock runs (git's: of three before and three
after rollsafe's, so a busy machine favours git, not rollsafe).  Two states
of each repository are timed: as a fresh clone has it (no commit-graph file),
and with the commit-graph that ``git gc`` or ``git maintenance`` writes.

rollsafe is timed in three states of its history cache (``.git/rollsafe/``):
*cold* (``ROLLSAFE_NO_CACHE=1``: the whole history is read from git, as on a
fresh CI checkout), *warm* (the cache holds the branch tip: nothing new
landed) and *warm +100* (the cache holds the tip of 100 first-parent commits
ago: those are read from git and appended, as on the next CI run of a busy
branch).  The last column times `read_history` alone, cold, in a fresh
interpreter: the part of the command that reads git.

The console script is the one installed next to this interpreter (a version
manager's shim would add its own start-up to every figure), and Python may
write the bytecode cache (to ``bench/out/pycache``), as an installed package
has its modules compiled; ``PYTHONDONTWRITEBYTECODE=1`` would otherwise make
every run compile rollsafe's modules again.

Run: ``python bench/history.py [--sizes 5000,20000,50000] [--runs 3] [--history-only]``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
#: Bump when the generator changes, so cached repositories are rebuilt.
GENERATOR_VERSION = "3"
MIGRATIONS = 500
SOURCE_FILES = 2_000
SOURCE_DIRS = 40
MERGE_EVERY = 200
EPOCH = 1_600_000_000
ENV = {
    **{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": str(OUT / "pycache"),
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}

# --- The command timed for rollsafe --------------------------------------------------------
#: SWITCH HERE: True times the whole `rollsafe release-table --format json` command (the
#: default); False (``--history-only``) times `read_history` alone in a fresh interpreter,
#: the part of that command which reads git.  Both include the interpreter's start-up.
USE_CLI = True
#: First-parent commits that land between the cached tip and the branch tip ("warm +100").
NEW_COMMITS = 100
#: Where the history cache lives in a benchmark repository (see rollsafe.history._cache).
CACHE_DIR = Path(".git") / "rollsafe"


def console_script() -> str:
    """The installed ``rollsafe`` entry point beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("rollsafe")
    if beside.is_file():
        return str(beside)
    return shutil.which("rollsafe") or "rollsafe"


def rollsafe_command(repo: Path, *, cli: bool) -> list[str]:
    """The rollsafe command line timed against git's log on ``repo``."""
    if cli:
        return [console_script(), "release-table", "--format", "json", "--repo", str(repo)]
    code = (
        "import sys; from rollsafe.config import load_config; "
        "from rollsafe.history._read import read_history; "
        "h = read_history(load_config(sys.argv[1])); "
        "print(len(h.versions), h.versions[-1].schema)"
    )
    return [sys.executable, "-c", code, str(repo)]


def git_command() -> list[str]:
    """The baseline: git listing the migrations folder's changes on first-parent history."""
    return ["git", "log", "--first-parent", "--raw", "--", "migrations/"]


# --- Generating repositories ---------------------------------------------------------------


class _Stream:
    """Writes a ``git fast-import`` stream."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.mark = 0
        self.clock = EPOCH

    def data(self, payload: bytes) -> None:
        """A ``data`` command: the exact byte count, then the payload."""
        self.sink.write(b"data %d\n%s\n" % (len(payload), payload))

    def commit(
        self,
        ref: str,
        message: str,
        files: dict[str, bytes | None],
        *,
        parent: int | None,
        merge: int | None = None,
    ) -> int:
        """Write one commit; ``None`` content deletes the file.  Returns its mark."""
        self.mark += 1
        self.clock += 60
        self.sink.write(b"commit %s\nmark :%d\n" % (ref.encode(), self.mark))
        self.sink.write(b"committer Bench <bench@example.com> %d +0000\n" % self.clock)
        self.data(message.encode())
        if parent is not None:
            self.sink.write(b"from :%d\n" % parent)
        if merge is not None:
            self.sink.write(b"merge :%d\n" % merge)
        for path, content in files.items():
            if content is None:
                self.sink.write(b"D %s\n" % path.encode())
            else:
                self.sink.write(b"M 100644 inline %s\n" % path.encode())
                self.data(content)
        return self.mark


def _source_path(index: int) -> str:
    """A source file four folders deep, so a changed file costs git a real tree diff."""
    return f"src/pkg{index % SOURCE_DIRS:02d}/sub{index % 7}/file{index:05d}.go"


def _change_numbers(count: int, rng: random.Random) -> list[int]:
    """Gerrit numbers in landing order: increasing, with about 1 in 20 landing late."""
    numbers = list(range(10_000, 10_000 + count))
    for index in range(0, count - 5, 20):
        late = index + rng.randint(1, 4)
        numbers[index], numbers[late] = numbers[late], numbers[index]
    return numbers


def generate(path: Path, commits: int) -> None:
    """Build a repository of ``commits`` first-parent commits with ``git fast-import``."""
    if path.exists():
        shutil.rmtree(path)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=ENV)
    rng = random.Random(commits)
    numbers = _change_numbers(commits, rng)
    landing = {(k + 1) * commits // (MIGRATIONS + 1): k + 1 for k in range(MIGRATIONS)}
    edits = {at + 3: version for at, version in landing.items() if version % 50 == 0}
    renames = {at + 5: version for at, version in landing.items() if version % 125 == 0}
    names = {version: f"{version:06d}_change_{version}" for version in range(1, MIGRATIONS + 1)}
    process = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"],
        cwd=path,
        stdin=subprocess.PIPE,
        env=ENV,
    )
    assert process.stdin is not None
    stream = _Stream(process.stdin)
    head: int | None = None
    for index in range(commits):
        files: dict[str, bytes | None] = {}
        if index == 0:
            files = {_source_path(i): b"package p // v0\n" for i in range(SOURCE_FILES)}
        for _ in range(rng.randint(1, 3)):
            target = rng.randrange(SOURCE_FILES)
            files[_source_path(target)] = f"package p // {index}\n".encode()
        version = landing.get(index)
        if version is not None:
            base = f"migrations/{names[version]}"
            files[f"{base}.up.sql"] = f"-- compat: live\nCREATE TABLE t{version} ();\n".encode()
            files[f"{base}.down.sql"] = f"DROP TABLE t{version};\n".encode()
        if index in edits:
            base = f"migrations/{names[edits[index]]}"
            files[f"{base}.up.sql"] = (
                f"-- compat: live\nCREATE TABLE t{edits[index]} (id int);\n".encode()
            )
        if index in renames:
            old = names[renames[index]]
            new = f"{renames[index]:06d}_renamed_{renames[index]}"
            names[renames[index]] = new
            for direction in ("up", "down"):
                files[f"migrations/{old}.{direction}.sql"] = None
            files[f"migrations/{new}.up.sql"] = f"CREATE TABLE t{renames[index]} ();\n".encode()
            files[f"migrations/{new}.down.sql"] = f"DROP TABLE t{renames[index]};\n".encode()
        merge: int | None = None
        if head is not None and index % MERGE_EVERY == 0:
            side = head
            for step in range(2):
                side = stream.commit(
                    "refs/heads/side",
                    f"side work {index}.{step}\n\nChange-Id: Iside{index}{step}\n",
                    {_source_path(rng.randrange(SOURCE_FILES)): f"// side {index}\n".encode()},
                    parent=side,
                )
            merge = side
        subject = f"Merge side work {index}" if merge else f"Change {index}: update"
        message = (
            f"{subject}\n\nSome explanation of change {index}.\n\n"
            f"Change-Id: I{index:040d}\n"
            f"Reviewed-on: https://review.example/c/project/+/{numbers[index]}\n"
        )
        head = stream.commit("refs/heads/main", message, files, parent=head, merge=merge)
    process.stdin.write(b"done\n")
    process.stdin.close()
    if process.wait() != 0:
        raise SystemExit("git fast-import failed")
    for args in (
        ["update-ref", "-d", "refs/heads/side"],
        ["repack", "-a", "-d", "-q"],
        ["commit-graph", "write", "--reachable"],
        ["reset", "-q", "--hard", "main"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True, env=ENV)
    (path / ".git" / "rollsafe-bench").write_text(GENERATOR_VERSION)


def repository(commits: int) -> Path:
    """The cached benchmark repository of ``commits`` commits (built when missing or stale)."""
    path = OUT / f"repo-{commits}"
    marker = path / ".git" / "rollsafe-bench"
    if not marker.is_file() or marker.read_text() != GENERATOR_VERSION:
        print(f"generating {path} ...", file=sys.stderr)
        generate(path, commits)
    return path


# --- Timing --------------------------------------------------------------------------------

#: Repository states timed: a CI checkout has no commit-graph file (``git clone`` and
#: ``git fetch`` do not write one), a developer's repository usually has one (``git gc``,
#: ``git maintenance``).  The environment reaches every git process, rollsafe's included.
SCENARIOS: dict[str, dict[str, str]] = {
    "fresh clone (no commit-graph)": {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.commitGraph",
        "GIT_CONFIG_VALUE_0": "false",
    },
    "with commit-graph": {},
}


#: The environment of a run that reads the whole history from git.
COLD = {"ROLLSAFE_NO_CACHE": "1"}


def best_of(
    runs: int,
    command: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    *,
    before: Callable[[], None] | None = None,
) -> float:
    """The fastest of ``runs`` wall-clock runs of ``command`` (output read and discarded).

    ``before`` runs ahead of each run, outside the timing (to put a cache in place).
    """
    best = float("inf")
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        done = subprocess.run(
            command, cwd=cwd, stdout=subprocess.PIPE, env={**ENV, **env}, check=False
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed with exit code {done.returncode}")
        best = min(best, elapsed)
    return best


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env=ENV, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def cache_behind(repo: Path, command: Sequence[str], env: dict[str, str], saved: Path) -> None:
    """Save in ``saved`` the history cache as a run at ``NEW_COMMITS`` commits ago leaves it.

    The branch is moved back for that run and always restored: the
    repository itself is the same before and after.
    """
    branch = _git(repo, "symbolic-ref", "HEAD")
    tip = _git(repo, "rev-parse", branch)
    older = _git(repo, "rev-parse", f"{tip}~{NEW_COMMITS}")
    try:
        _git(repo, "update-ref", branch, older, tip)
        best_of(1, command, repo, env)
    finally:
        _git(repo, "update-ref", branch, tip)
    if saved.exists():
        shutil.rmtree(saved)
    shutil.copytree(repo / CACHE_DIR, saved)


@dataclass(frozen=True)
class Result:
    """The figures of one repository in one state, in seconds."""

    size: int
    git: float
    cold: float
    warm: float
    behind: float  # warm, NEW_COMMITS new commits to read
    history: float  # read_history alone, cold


def measure(repo: Path, size: int, env: dict[str, str], runs: int, *, cli: bool) -> Result:
    """Time git and rollsafe (cold, warm, warm +100) and read_history on one repository."""
    ours = rollsafe_command(repo, cli=cli)
    cache = repo / CACHE_DIR
    saved = OUT / "cache-behind"

    def restore_behind() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.copytree(saved, cache)

    # git runs before and after rollsafe, so load that comes and goes
    # during the run is not counted against git.
    git_seconds = best_of(runs, git_command(), repo, env)
    cold = best_of(runs, ours, repo, {**env, **COLD})
    shutil.rmtree(cache, ignore_errors=True)
    best_of(1, ours, repo, env)  # writes the cache at the tip
    warm = best_of(runs, ours, repo, env)
    cache_behind(repo, ours, env, saved)
    behind = best_of(runs, ours, repo, env, before=restore_behind)
    history = best_of(runs, rollsafe_command(repo, cli=False), repo, {**env, **COLD})
    git_seconds = min(git_seconds, best_of(runs, git_command(), repo, env))
    return Result(size, git_seconds, cold, warm, behind, history)


def table(results: Sequence[Result]) -> list[str]:
    """The Markdown table of one scenario, with the linearity lines under it."""

    def ratio(seconds: float, result: Result) -> str:
        return f"{seconds / result.git:.2f}x"

    lines = [
        f"| commits | git s | rollsafe cold s | ratio | warm s | ratio | warm +{NEW_COMMITS} s "
        "| ratio | read_history cold s |",
        "|--------:|------:|----------------:|------:|-------:|------:|----------:|------:"
        "|--------------------:|",
    ]
    for r in results:
        lines.append(
            f"| {r.size:,} | {r.git:.2f} | {r.cold:.2f} | {ratio(r.cold, r)} "
            f"| {r.warm:.2f} | {ratio(r.warm, r)} | {r.behind:.2f} | {ratio(r.behind, r)} "
            f"| {r.history:.2f} |"
        )
    if len(results) > 1:
        small, large = results[-2], results[-1]
        span = (large.size - small.size) / 10_000

        def growth(name: str) -> str:
            extra = (getattr(large, name) - getattr(small, name)) / span
            return f"{extra:.2f}"

        lines.append(
            f"\nPer extra 10k commits between {small.size:,} and {large.size:,}: git "
            f"{growth('git')} s, rollsafe cold {growth('cold')} s, warm {growth('warm')} s, "
            f"warm +{NEW_COMMITS} {growth('behind')} s, read_history {growth('history')} s."
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Time both commands on every size and state, then print the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="5000,20000,50000", help="commit counts")
    parser.add_argument("--runs", type=int, default=3, help="runs per command (best is kept)")
    parser.add_argument(
        "--history-only",
        action="store_true",
        help="time read_history alone instead of `rollsafe release-table`",
    )
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    cli = USE_CLI and not args.history_only
    what = "rollsafe release-table --format json" if cli else "read_history (python -c)"
    results: dict[str, list[Result]] = {name: [] for name in SCENARIOS}
    for size in sizes:
        repo = repository(size)
        for name, env in SCENARIOS.items():
            result = measure(repo, size, env, args.runs, cli=cli)
            results[name].append(result)
            print(
                f"{size} commits, {name}: git {result.git:.2f}s, cold {result.cold:.2f}s, "
                f"warm {result.warm:.2f}s, warm +{NEW_COMMITS} {result.behind:.2f}s, "
                f"read_history {result.history:.2f}s",
                file=sys.stderr,
            )
    print(
        f"rollsafe: `{what}`; git: `{' '.join(git_command())}`; best of {args.runs}; "
        f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
        f"{_git(OUT, 'version') if OUT.exists() else 'git'}"
    )
    for name, rows in results.items():
        print(f"\n### {name}\n")
        print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
