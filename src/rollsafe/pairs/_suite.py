"""The long-lived run of the pair tests: pairs, catalogue, fixtures, engine and chain, made once.

Why: the console script runs every pair in one process, and the nox
sessions of one ``nox`` run share one suite, so that one engine and one
chain of database states serve every pair.  The old code's query files are
read from git for all pairs at once (`query_files_at`), because two git
processes per pair would cost more than the pairs on a long history.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Collection, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from rollsafe.config import Config
from rollsafe.errors import HistoryError
from rollsafe.pairs._model import Counters, Isolation, Pair, PairResult, PairsRun, pairs_from

if TYPE_CHECKING:
    from rollsafe.engines import Server
    from rollsafe.migrate import Catalogue
    from rollsafe.pairs._fixtures import Fixture
    from rollsafe.pairs._runner import PairRunner

# The database stack (psycopg, pglast, the engines, the runner) and git are imported by
# the methods that use them: listing pairs must not pay for them.


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
        self,
        config: Config,
        *,
        isolation: Isolation = "chain",
        server: Server | None = None,
        state_cache: Path | bool = True,
        seed_rows: int | None = None,
    ) -> None:
        from rollsafe.pairs._fixtures import load_fixtures
        from rollsafe.table import compute_rows

        self.config = config
        self.isolation: Isolation = isolation
        #: Rows generated from the catalog per table and state (0: none).
        self.seed_rows = config.seed_rows if seed_rows is None else seed_rows
        history, catalogue, rows = compute_rows(config)
        self.tip = history.tip
        self.catalogue: Catalogue = catalogue
        self.pairs = pairs_from(rows)
        self.fixtures: Mapping[int, Fixture] = load_fixtures(
            config.repo, config.fixtures, versions=set(catalogue.versions)
        )
        self._queries: dict[str, dict[str, str]] = {}
        self.state_cache = _state_cache_folder(config, state_cache)
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
        """The query files of the old code of ``pair``, read from git."""
        return self._queries_at(pair.old_commit)

    def new_queries(self, pair: Pair) -> Mapping[str, str]:
        """The query files of the newer row's newest CL (the rollback check), read from git."""
        return self._queries_at(pair.new_commit) if pair.new_commit else {}

    def _queries_at(self, commit: str) -> Mapping[str, str]:
        """Query files at ``commit``.

        The first call reads them for every pair's old and new code at once
        (`query_files_at`), so a run costs two git processes, not two per pair.
        """
        if not self.config.queries:
            return {}
        from rollsafe import _git

        if not self._queries:
            commits = {p.old_commit for p in self.pairs}
            commits |= {p.new_commit for p in self.pairs if p.new_commit}
            self._queries = query_files_at(self.config.repo, self.tip, commits, self.config.queries)
        cached = self._queries.get(commit)
        if cached is None:
            cached = _git.files_at(self.config.repo, commit, self.config.queries)
            self._queries[commit] = cached
        return cached

    @property
    def engine(self) -> str:
        return self._server.kind if self._server is not None else self.config.engine

    def require_engine(self, up_to: int | None = None) -> None:
        """Stop before any server starts when the engine cannot run these migrations.

        `rollsafe.pairs._engine.require_engine` (CockroachDB SQL on
        PostgreSQL); ``up_to`` is the newest version the selected pairs reach.
        """
        from rollsafe.pairs._engine import require_engine

        flavor = self._server.flavor if self._server is not None else None
        if flavor is None and self._given is not None:
            flavor = self._given.flavor
        require_engine(self.catalogue, engine=self.config.engine, flavor=flavor, up_to=up_to)

    def _runner_for(self) -> PairRunner:
        if self._runner is None:
            from rollsafe.engines import ephemeral_server
            from rollsafe.pairs._runner import PairRunner
            from rollsafe.pairs._states import StateCache

            self._server = self._given or self._stack.enter_context(
                ephemeral_server(self.config.engine)
            )
            # An external cluster says which engine it is only once attached.
            self.require_engine()
            self._runner = self._stack.enter_context(
                PairRunner(
                    self._server,
                    self.catalogue,
                    self.pairs,
                    fixtures=self.fixtures,
                    old_queries=self.old_queries,
                    migrations_table=self.config.migrations_table,
                    isolation=self.isolation,
                    new_queries=self.new_queries,
                    state_cache=StateCache(self.state_cache) if self.state_cache else None,
                    seed_rows=self.seed_rows,
                )
            )
        return self._runner

    def run(self, pair: Pair) -> PairResult:
        """Run one pair (starting the engine on first use) and keep its result."""
        self.require_engine(pair.target)
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


def _state_cache_folder(config: Config, choice: Path | bool) -> Path | None:
    """Where chain states are kept across processes (None: not at all).

    ``True`` is the default folder (``ROLLSAFE_STATE_CACHE``, else under the
    git directory), off when caches are (``--no-cache``, ``ROLLSAFE_NO_CACHE``).
    """
    from rollsafe.history import cache_enabled

    if choice is False or not cache_enabled():
        return None
    if isinstance(choice, Path):
        return choice
    from rollsafe.pairs._states import default_folder

    return default_folder(config.repo)


def _glob_folder(pattern: str) -> str:
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

    folders = {_glob_folder(pattern) for pattern in patterns}
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


def list_pairs(config: Config) -> tuple[Pair, ...]:
    """The adjacent pairs of the table's rows, computed from git history (no database)."""
    from rollsafe.table import compute_rows

    _history, _catalogue, rows = compute_rows(config)
    return pairs_from(rows)
