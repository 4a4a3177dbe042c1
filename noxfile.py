"""Sessions for developing rollsafe and for checking this repository's own schema.

``nox`` with no arguments runs what CI runs: the tests, the linters, the
staleness check of releases/DEPLOYING.md, and the upgrade test of every
adjacent schema pair.  Dependency groups come from pyproject.toml so the
list of tools lives in one place.
"""

from __future__ import annotations

import nox

from rollsafe.nox_sessions import upgrade_pairs_sessions

PYPROJECT = nox.project.load_toml("pyproject.toml")

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "release_table", "upgrade_pairs"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against real git repositories and a throwaway PostgreSQL."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy (strict) and rollsafe's own migration lint, which must pass --strict."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("rollsafe", "lint", "--strict")


@nox.session
def release_table(session: nox.Session) -> None:
    """Fail when releases/DEPLOYING.md no longer matches git history (`--check`)."""
    session.install("-e", ".")
    session.run("rollsafe", "release-table", "--check", *session.posargs)


# One session per adjacent schema pair, `upgrade_pairs(3->4)`, run in nox's own
# interpreter: nothing to install per pair (see rollsafe.nox_sessions).
upgrade_pairs_sessions()
