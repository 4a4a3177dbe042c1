# /// script
# dependencies = [
#   "nox>=2025.2.9",
#   "invoke>=2.2",
#   "GitPython>=3.1.40",
#   "psycopg[binary]>=3.1",
#   "pglast>=7",
# ]
# ///
"""Sessions for developing rollsafe and for checking this repository's own schema.

``nox`` with no arguments runs what CI runs: the tests, the linters, the
staleness check of releases/DEPLOYING.md, and the upgrade test of every
adjacent schema pair.  Dependency groups come from pyproject.toml so the
list of tools lives in one place.

nox installed on its own (pipx, the nox GitHub Action) cannot import
rollsafe.  The ``# /// script`` block above (PEP 723, nox's script mode)
names rollsafe's runtime dependencies (a test keeps them equal to
pyproject.toml's): nox installs them into ``.nox/_nox_script_mode`` and runs
this file there, and rollsafe itself is imported from ``src/`` of this
checkout, which is the code under test.  With rollsafe installed (``pip
install -e '.[dev]'``) nothing of this happens.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nox

if importlib.util.find_spec("rollsafe") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

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
