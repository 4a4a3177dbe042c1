"""Benchmark: reading history with rollsafe against git's own first-parent log.

Why: the release table is computed from the whole first-parent history on
every CI run, so reading it must stay close to what git itself needs to list
the migrations folder's changes, and grow linearly with the number of
commits.  Target: rollsafe at most 2x ``git log --first-parent --raw --
migrations/`` at 50,000 commits.

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

Run: ``python bench/history.py [--sizes 5000,20000,50000] [--runs 3] [--cli]``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
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
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}

# --- The command timed for rollsafe --------------------------------------------------------
#: SWITCH HERE: True times the whole `rollsafe release-table --format json` command (as
#: ``--cli`` does); False times `read_history` alone in a fresh interpreter, the part of
#: that command which reads git.  Both include the interpreter's start-up.
USE_CLI = False


def rollsafe_command(repo: Path, *, cli: bool) -> list[str]:
    """The rollsafe command line timed against git's log on ``repo``."""
    if cli:
        return ["rollsafe", "release-table", "--format", "json", "--repo", str(repo)]
    code = (
        "import sys; from rollsafe.config import load_config; "
        "from rollsafe.history import read_history; "
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


def best_of(runs: int, command: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    """The fastest of ``runs`` wall-clock runs of ``command`` (output read and discarded)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(
            command, cwd=cwd, stdout=subprocess.PIPE, env={**ENV, **env}, check=False
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed with exit code {done.returncode}")
        best = min(best, elapsed)
    return best


def table(rows: Sequence[tuple[int, float, float]]) -> list[str]:
    """The Markdown table of one scenario, with the linearity line under it."""

    def per_10k(size: int, seconds: float) -> str:
        return f"{seconds / size * 10_000:.2f}"

    lines = [
        "| commits | git s | rollsafe s | ratio | git s/10k | rollsafe s/10k |",
        "|--------:|------:|-----------:|------:|----------:|---------------:|",
    ]
    for size, git_seconds, ours in rows:
        lines.append(
            f"| {size:,} | {git_seconds:.2f} | {ours:.2f} | {ours / git_seconds:.2f}x "
            f"| {per_10k(size, git_seconds)} | {per_10k(size, ours)} |"
        )
    if len(rows) > 1:
        (small, _, small_s), (large, _, large_s) = rows[-2], rows[-1]
        growth = (large_s - small_s) / (large - small) * 10_000
        lines.append(
            f"\nrollsafe: {growth:.2f} s per extra 10k commits between {small:,} and {large:,} "
            f"commits (vs {large_s / large * 10_000:.2f} s/10k overall: the rest is start-up)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Time both commands on every size and state, then print the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="5000,20000,50000", help="commit counts")
    parser.add_argument("--runs", type=int, default=3, help="runs per command (best is kept)")
    parser.add_argument("--cli", action="store_true", help="time `rollsafe release-table`")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    cli = args.cli or USE_CLI
    what = "rollsafe release-table --format json" if cli else "read_history (python -c)"
    results: dict[str, list[tuple[int, float, float]]] = {name: [] for name in SCENARIOS}
    for size in sizes:
        repo = repository(size)
        for name, env in SCENARIOS.items():
            # git runs before and after rollsafe, so load that comes and goes
            # during the run is not counted against git.
            git_seconds = best_of(args.runs, git_command(), repo, env)
            ours = best_of(args.runs, rollsafe_command(repo, cli=cli), repo, env)
            git_seconds = min(git_seconds, best_of(args.runs, git_command(), repo, env))
            results[name].append((size, git_seconds, ours))
            print(
                f"{size} commits, {name}: git {git_seconds:.2f}s, rollsafe {ours:.2f}s",
                file=sys.stderr,
            )
    print(
        f"rollsafe: `{what}`; git: `{' '.join(git_command())}`; best of {args.runs}; "
        f"{os.cpu_count()} CPUs"
    )
    for name, rows in results.items():
        print(f"\n### {name}\n")
        print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
