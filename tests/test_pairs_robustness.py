"""Fixtures that misbehave: user code in the pair run must never end the run or hide a defect.

Why: ``fixture.py`` is the test suite's own Python, run inside rollsafe's
process; a ``sys.exit`` in it once ended the whole run with exit 0 and no
summary, a closed connection gave a 40-line traceback, and a seed that
could not run on its own schema passed with a note.  Each is now that
pair's failure, named by file and line, and the other pairs still run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rollsafe.engines import Server
from tests.test_pairs import by_id, make_repo, run

pytestmark = pytest.mark.db

CLOSED = "check(conn) closed the connection; a fixture must leave it open"


@pytest.mark.parametrize("function", ["seed", "check"])
def test_a_fixture_that_exits_is_that_pairs_failure(
    tmp_path: Path, pg_server: Server, function: str
) -> None:
    fixture = f"import sys\n\n\ndef {function}(conn):\n    sys.exit(0)\n"
    config = make_repo(tmp_path, [("exit", {"tests/upgrade/2/fixture.py": fixture})])
    results = by_id(run(config, pg_server))
    assert set(results) == {"1->2", "2->3"}  # the run went on to the end
    exits = [
        finding
        for result in results.values()
        for finding in result.findings
        if finding.where == "tests/upgrade/2/fixture.py:5"
    ]
    assert exits, "a fixture calling sys.exit must fail a pair"
    assert {finding.server for finding in exits} == {"SystemExit: 0"}


def test_a_fixture_that_closes_the_connection_is_one_finding(
    tmp_path: Path, pg_server: Server
) -> None:
    fixture = "def check(conn):\n    conn.close()\n    return True\n"
    config = make_repo(tmp_path, [("close", {"tests/upgrade/2/fixture.py": fixture})])
    results = by_id(run(config, pg_server))
    assert set(results) == {"1->2", "2->3"}  # the other pairs run, on a new connection
    assert results["1->2"].status == "failed"
    checks = [
        (result.pair.id, finding)
        for result in results.values()
        for finding in result.findings
        if finding.kind in ("check-fails", "old-data-unreadable")
    ]  # 2->3 runs version 2's check after its down too
    assert [pair for pair, _ in checks] == ["1->2", "2->3"]
    for _, finding in checks:
        assert finding.where == "tests/upgrade/2/fixture.py"
        assert finding.server == CLOSED


def test_a_seed_that_fails_on_its_own_schema_fails_its_pair(
    tmp_path: Path, pg_server: Server
) -> None:
    seed = "-- rows the code of version 3 writes\nINSERT INTO nonexist VALUES (1);\n"
    config = make_repo(tmp_path, [("broken seed", {"tests/upgrade/3/seed.sql": seed})])
    results = by_id(run(config, pg_server))
    assert results["1->2"].status == "passed"
    broken = results["2->3"]
    assert broken.status == "failed"
    (finding,) = [f for f in broken.findings if f.kind == "fixture-fails"]
    assert broken.step(3).status == "failed"
    assert finding.where == "tests/upgrade/3/seed.sql:2"
    assert "nonexist" in (finding.server or "")
