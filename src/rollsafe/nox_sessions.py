"""nox sessions for the upgrade pair tests, for any repository's noxfile in two lines::

    from rollsafe.nox_sessions import upgrade_pairs_sessions
    upgrade_pairs_sessions()

Why: CI wants one job per pair (``nox -l --json`` feeds a matrix), a
developer wants ``nox -s upgrade_pairs`` to run them all, and neither wants
to pay for a virtualenv and an install per pair.  So the pairs are computed
from git history when the noxfile is imported (one ``git log`` pass, no
database), each becomes a parametrized session ``upgrade_pairs(3->4)``, and
every session runs inside nox's own interpreter (``venv_backend="none"``):
the package that defines the sessions is the package under test, so there
is nothing to install, and the sessions of one ``nox`` run share one engine
and one chain of database states.  ``nox -s upgrade_pairs`` therefore costs
one server start and O(N) migration runs for N pairs, like
``rollsafe upgrade-pairs``.  Run as its own process (a CI matrix job, or
``nox --parallel``), a session restores its start state from the state
cache (`rollsafe.pairs._states`) when an earlier job saved it, and walks the
chain up to its pair otherwise: results are the same, only the cost differs.

When the pairs cannot be computed (not a git repository, a malformed
migration), a single ``upgrade_pairs`` session is registered that fails
with the reason, so ``nox`` reports the problem instead of crashing while
it loads the noxfile.

Posargs (``nox -s upgrade_pairs -- --pair 4``): ``--pair V`` (``3->4`` or
``4``), ``--from V``, ``--to V`` select pairs (other sessions skip),
``--engine E`` picks the engine, ``--isolation clone`` the literal snapshot
protocol, ``--junit PATH`` writes a JUnit report of every pair run so far,
``--state-cache DIR`` keeps the saved states in a CI cache folder.
"""

from __future__ import annotations

import argparse
import atexit
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nox
from nox.command import CommandFailed

# nox logs at DEBUG level, and GitPython logs every git command it starts at DEBUG
# (importing it already runs one), which would bury the pair results in noise: quiet it
# before the package imports GitPython (listing the pairs reads history).  The imports
# below are cheap: the database stack loads when the first pair runs.
logging.getLogger("git").setLevel(logging.WARNING)

from rollsafe.commands._spec import ENGINE, PAIR_SELECTION, add_flags  # noqa: E402
from rollsafe.config import Config, load_config  # noqa: E402
from rollsafe.errors import EngineMismatch, RollsafeError, error_message  # noqa: E402
from rollsafe.pairs import (  # noqa: E402
    SESSION,
    Pair,
    PairSuite,
    failure_report,
    list_pairs,
    pair_line,
    run_summary,
    select_pairs,
    write_junit,
)

#: Suites shared by the sessions of one nox process, by (repo, engine, isolation, seed rows).
_SUITES: dict[tuple[str, str, str, int | None], PairSuite] = {}
#: Engine refusals already reported by a session of this nox process.
_REFUSED: set[str] = set()


def _close_suites() -> None:
    """Stop the engines at exit (nox runs sessions in one process; this is its end)."""
    while _SUITES:
        _, suite = _SUITES.popitem()
        suite.close()


atexit.register(_close_suites)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"nox -s {SESSION} --", add_help=True)
    add_flags(parser, (*PAIR_SELECTION, ENGINE))
    return parser


def _options(session: nox.Session) -> argparse.Namespace:
    try:
        return _parser().parse_args(list(session.posargs))
    except SystemExit:
        session.error(f"bad arguments after `--`: {' '.join(session.posargs)}")


def _selection_text(options: argparse.Namespace) -> str:
    parts = [
        f"--{flag} {value}"
        for flag, value in (("pair", options.pair), ("from", options.start), ("to", options.end))
        if value is not None
    ]
    return " ".join(parts)


def _config(repo: str | Path, engine: str | None) -> Config:
    return load_config(repo, {"engine": engine} if engine else None)


def _suite(
    config: Config,
    isolation: str,
    state_cache: Path | None = None,
    seed_rows: int | None = None,
) -> PairSuite:
    key = (str(config.repo), config.engine, isolation, seed_rows)
    suite = _SUITES.get(key)
    if suite is None:
        suite = PairSuite(
            config,
            isolation="clone" if isolation == "clone" else "chain",
            state_cache=state_cache or True,
            seed_rows=seed_rows,
        )
        _SUITES[key] = suite
    return suite


def run_pair_session(session: nox.Session, pair_id: str, *, repo: str | Path = ".") -> None:
    """The body of one pair session: select, run in the shared suite, report, fail or pass."""
    options = _options(session)
    try:
        config = _config(repo, options.config_engine)
        rows = 0 if options.no_generated_seeds else options.seed_rows
        suite = _suite(config, options.isolation, options.state_cache, rows)
        pair = next((p for p in suite.pairs if p.id == pair_id), None)
        if pair is None:
            session.error(
                f"pair {pair_id} is no longer in the history: re-run nox to list the pairs"
            )
        selecting = options.pair is not None or options.start is not None or options.end is not None
        chosen = (
            select_pairs(suite.pairs, pair=options.pair, start=options.start, end=options.end)
            if selecting
            else suite.pairs
        )
        if pair not in chosen:
            session.skip(f"not selected by {_selection_text(options)}")
        result = suite.run(pair)
        session.log(pair_line(result))
        if options.junit is not None:
            write_junit(options.junit, suite.report())
        if pair == chosen[-1]:
            session.log(run_summary(suite.report()))
    except RollsafeError as exc:
        if isinstance(exc, EngineMismatch):
            # One session says the engine cannot run these migrations; the others skip.
            if exc.message in _REFUSED:
                session.skip(
                    "not run: the engine cannot run these migrations "
                    "(see the aborted upgrade_pairs session above)"
                )
            _REFUSED.add(exc.message)
        session.error(error_message(exc))
    report = failure_report(result)
    if report:
        session.log(report)
    if result.status == "failed":
        # CommandFailed, not session.error(): nox then reports the session as failed (a
        # test that found a problem), not aborted.
        raise CommandFailed(f"upgrade pair {pair.id} failed")
    if result.status == "incomplete":
        session.warn(f"{pair.id}: some steps were skipped (see above); this is not a pass")


def _pair_ids(repo: str | Path) -> tuple[list[str], str | None]:
    """The ids of the pairs, or the reason they cannot be computed."""
    try:
        pairs: Sequence[Pair] = list_pairs(load_config(repo))
    except RollsafeError as exc:
        return [], error_message(exc)
    return [p.id for p in pairs], None


def upgrade_pairs_sessions(
    *, repo: str | Path = ".", name: str = SESSION, default: bool = True
) -> None:
    """Register one nox session per upgrade pair, ``upgrade_pairs(<from>-><to>)``.

    Call it at the top level of a noxfile.  ``repo`` is the repository
    (default: the noxfile's folder, where nox runs); ``default=False`` keeps
    the sessions out of a bare ``nox`` run.
    """
    ids, problem = _pair_ids(repo)

    if problem is not None or not ids:
        message = problem or "no upgrade pairs: the table has fewer than two rows"

        def upgrade_pairs_unavailable(session: nox.Session) -> None:
            """The upgrade pair tests (no pairs could be computed; this session says why)."""
            if problem is not None:
                session.error(f"cannot compute the upgrade pairs: {message}")
            session.skip(message)

        nox.session(name=name, venv_backend="none", default=default)(upgrade_pairs_unavailable)
        return

    def upgrade_pairs(session: nox.Session, pair: str) -> None:
        """Upgrade test of one pair of adjacent rows: seed, up, old code, check, down, up."""
        run_pair_session(session, pair, repo=repo)

    decorated: Any = nox.parametrize("pair", ids, ids=ids)(upgrade_pairs)
    nox.session(name=name, venv_backend="none", default=default)(decorated)
