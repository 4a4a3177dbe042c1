"""Upgrade pairs on databases populated by rows generated from the catalog, no fixture at all.

The defect generated rows exist for: a NOT NULL column without a default
added to a table nobody wrote a fixture for.  Empty tables let it pass; the
generated rows make it fail as ``up-fails-on-data``, with the generated
INSERT shown so the user can keep it as a fixture.  The same history with a
default passes; a feature-flag service's history gets populated tables at
every pair; two runs generate the same rows.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rollsafe.cli import main
from rollsafe.commands.pairs import upgrade_pairs
from rollsafe.config import Config, load_config
from rollsafe.engines import Server
from rollsafe.errors import ConfigError
from rollsafe.pairs import PairRunner, PairsRun, PairSuite, failure_report, pair_line
from tests.flipt_history import flipt_commits
from tests.gitrepo import GitRepo, migration

pytestmark = pytest.mark.db

CREATE = (
    "-- compat: live\n"
    "CREATE TABLE accounts (id uuid PRIMARY KEY, email varchar(80) NOT NULL UNIQUE,\n"
    "                       plan text NOT NULL DEFAULT 'free', note text);\n"
)


def history(path: Path, owner_column: str, *, pyproject: str = "[tool.rollsafe]\n") -> Config:
    """Two migrations, no fixture: a table, then a column added to it."""
    repo = GitRepo(path / "repo")
    repo.commit("project", {"pyproject.toml": pyproject})
    repo.commit("accounts", migration(1, "accounts", CREATE, "DROP TABLE accounts;\n"))
    repo.commit(
        "owner",
        migration(
            2,
            "owner",
            f"-- compat: live\n-- lint: ignore add-not-null-column\n"
            f"ALTER TABLE accounts ADD COLUMN {owner_column};\n",
            "ALTER TABLE accounts DROP COLUMN owner;\n",
        ),
    )
    return load_config(repo.path)


def run(config: Config, server: Server, seed_rows: int | None = None) -> PairsRun:
    with PairSuite(config, server=server, seed_rows=seed_rows) as suite:
        for pair in suite.pairs:
            suite.run(pair)
        return suite.report()


def test_not_null_without_default_fails_on_generated_rows(
    tmp_path: Path, pg_server: Server
) -> None:
    config = history(tmp_path, "owner text NOT NULL")
    (result,) = run(config, pg_server).results
    assert result.status == "failed"
    (finding,) = result.step(3).findings
    assert finding.kind == "up-fails-on-data"
    assert finding.server is not None and 'column "owner"' in finding.server
    assert "contains null values" in finding.server
    # The rows came from the catalog, and the report shows one to keep as a fixture.
    assert "rows generated from the catalog (no fixture wrote them)" in finding.details
    assert "INSERT INTO public.accounts (id, email, plan, note) VALUES (" in finding.details
    report = failure_report(result)
    assert "INSERT INTO public.accounts (id, email, plan, note) VALUES" in report
    assert result.generated is not None
    assert (result.generated.tables, result.generated.rows) == (1, 3)
    assert "generated 3 rows in 1 table" in pair_line(result)


def test_without_generated_rows_the_same_defect_passes(tmp_path: Path, pg_server: Server) -> None:
    config = history(tmp_path, "owner text NOT NULL")
    (result,) = run(config, pg_server, seed_rows=0).results
    # Empty tables: what every fixture-less repository got before.
    assert result.status == "passed"
    assert result.generated is None
    assert "generated" not in pair_line(result)


def test_the_same_history_with_a_default_passes(tmp_path: Path, pg_server: Server) -> None:
    config = history(tmp_path, "owner text NOT NULL DEFAULT 'nobody'")
    (result,) = run(config, pg_server).results
    assert result.status == "passed", failure_report(result)
    assert result.step(4).detail.startswith("no seed fixture for 1; replayed 3 generated rows")
    assert result.generated is not None and result.generated.replayed_rows == 3


def test_flags_and_the_configuration_key(tmp_path: Path, pg_server: Server) -> None:
    config = history(tmp_path, "owner text NOT NULL", pyproject="[tool.rollsafe]\nseed_rows = 2\n")
    assert config.seed_rows == 2
    out = io.StringIO()
    assert upgrade_pairs(config, fmt="json", out=out, server=pg_server) == 1
    (pair,) = json.loads(out.getvalue())["pairs"]
    assert pair["generated"] == {"tables": 1, "rows": 2, "replayed_rows": 0, "skipped": []}
    out = io.StringIO()
    assert upgrade_pairs(config, seed_rows=5, fmt="json", out=out, server=pg_server) == 1
    assert json.loads(out.getvalue())["pairs"][0]["generated"]["rows"] == 5
    out = io.StringIO()
    assert upgrade_pairs(config, seed_rows=0, out=out, server=pg_server) == 0


def test_cli_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = history(tmp_path, "owner text NOT NULL")
    assert main(["upgrade-pairs", "--repo", str(config.repo), "--no-generated-seeds"]) == 0
    assert "generated" not in capsys.readouterr().out
    assert main(["upgrade-pairs", "--repo", str(config.repo), "--seed-rows", "1"]) == 1
    assert "generated 1 row in 1 table" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["upgrade-pairs", "--repo", str(config.repo), "--seed-rows", "many"])


def test_a_bad_seed_rows_setting_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    path.mkdir()
    (path / "pyproject.toml").write_text("[tool.rollsafe]\nseed_rows = -1\n")
    with pytest.raises(ConfigError, match="seed_rows"):
        load_config(path)


def flipt(path: Path) -> Config:
    repo = GitRepo(path / "repo")
    repo.commit("project", {"pyproject.toml": "[tool.rollsafe]\n"})
    for message, files in flipt_commits():
        repo.commit(message, files)
    return load_config(repo.path)


def test_a_feature_flag_history_runs_every_pair_on_populated_tables(
    tmp_path: Path, pg_server: Server
) -> None:
    config = flipt(tmp_path)
    runs: list[PairsRun] = []
    statements: list[dict[int, tuple[str, ...]]] = []
    for _ in range(2):
        with (
            PairSuite(config, server=pg_server) as suite,
            PairRunner(
                pg_server, suite.catalogue, suite.pairs, fixtures={}, old_queries=suite.old_queries
            ) as runner,
        ):
            runs.append(
                PairsRun(tuple(runner.run(p) for p in suite.pairs), "postgres", "chain", 0.0)
            )
            statements.append(runner.generated_statements())
    results = runs[0].results
    assert len(results) == 11
    for result in results:
        assert result.generated is not None
        assert result.generated.tables >= 1 and result.generated.rows >= 3, pair_line(result)
        assert result.generated.skipped == (), pair_line(result)
    # Before the upgrade, the tables each pair changes hold rows (but the new ones).
    empty = {r.pair.id for r in results if r.step(2).detail.endswith(" 0 rows")}
    assert empty == {"4->5", "10->11"}  # they create namespaces and authentications
    # Two hazards of the history show, both from generated rows alone: a check added NOT
    # VALID refuses what old code still writes, and a unique index meets duplicate pairs.
    failed = {r.pair.id: [f.kind for f in r.findings] for r in results if r.findings}
    assert failed == {"9->10": ["old-write-fails"], "11->12": ["up-fails-on-data"]}
    assert {r.pair.id: r.status for r in runs[1].results} == {r.pair.id: r.status for r in results}
    # Identical generated data across runs: every INSERT of every state.
    assert statements[0] == statements[1]
    assert len(statements[0]) == 12 and sum(map(len, statements[0].values())) > 40


def test_a_check_of_an_application_rule_that_generated_rows_break_is_not_counted(
    tmp_path: Path, pg_server: Server
) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("project", {"pyproject.toml": "[tool.rollsafe]\n"})
    files = migration(1, "accounts", CREATE, "DROP TABLE accounts;\n")
    # What the code guarantees, not the schema: generated rows do not meet it.
    files["tests/upgrade/1/check.sql"] = (
        "SELECT NOT EXISTS (SELECT 1 FROM accounts WHERE note <> 'ok');\n"
    )
    repo.commit("accounts", files)
    repo.commit(
        "index",
        migration(
            2,
            "index",
            "-- compat: live\nCREATE INDEX accounts_plan ON accounts (plan);\n",
            "DROP INDEX accounts_plan;\n",
        ),
    )
    config = load_config(repo.path)
    (result,) = run(config, pg_server).results
    assert result.status == "passed", failure_report(result)
    assert result.step(6).detail.endswith("checks of 1 fail before the upgrade too: not counted")
    # Without generated rows the check holds before and after, and is counted.
    (plain,) = run(config, pg_server, seed_rows=0).results
    assert plain.step(6).detail == "schema equals the snapshot, rows kept, checks of 1 pass"


def test_a_table_no_value_can_fill_is_skipped_and_named(tmp_path: Path, pg_server: Server) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("project", {"pyproject.toml": "[tool.rollsafe]\n"})
    up = CREATE + "CREATE TABLE odd (id int PRIMARY KEY, a int NOT NULL CHECK (a <> a));\n"
    repo.commit("tables", migration(1, "tables", up, "DROP TABLE odd, accounts;\n"))
    repo.commit(
        "index",
        migration(
            2,
            "index",
            "-- compat: live\nCREATE INDEX odd_a ON odd (a);\nCREATE INDEX accounts_plan "
            "ON accounts (plan);\n",
            "DROP INDEX odd_a;\nDROP INDEX accounts_plan;\n",
        ),
    )
    (result,) = run(load_config(repo.path), pg_server).results
    assert result.status == "passed", failure_report(result)
    assert result.generated is not None
    assert (result.generated.tables, result.generated.rows) == (1, 3)
    assert "1 skipped: public.odd" in pair_line(result)
    (note,) = result.notes
    assert note.startswith('generated rows: table public.odd: new row for relation "odd" violates')
    assert "(after 5 sets of values)" in note
    assert "public.odd" in failure_report(result)


def test_a_restored_state_keeps_its_generated_rows(tmp_path: Path, pg_server: Server) -> None:
    config = history(tmp_path, "owner text NOT NULL DEFAULT 'nobody'")
    repo = GitRepo(config.repo)
    repo.commit(
        "plan index",
        migration(
            3,
            "plan",
            "-- compat: live\nCREATE INDEX accounts_plan ON accounts (plan);\n",
            "DROP INDEX accounts_plan;\n",
        ),
    )
    folder = tmp_path / "states"

    def job(seed_rows: int | None = None) -> PairsRun:
        with PairSuite(config, server=pg_server, state_cache=folder, seed_rows=seed_rows) as suite:
            suite.run(suite.pairs[-1])
            return suite.report()

    cold = job()
    warm = job()
    assert (cold.counters.restores, warm.counters.restores) == (0, 1)
    # The restored state still knows its generated rows: counted, and replayed at step 4.
    assert warm.results[0].generated == cold.results[0].generated
    assert warm.results[0].generated is not None and warm.results[0].generated.replayed_rows == 3
    assert warm.results[0].step(4).detail == cold.results[0].step(4).detail
    # A state made with other generated rows is not restored.
    assert job(seed_rows=0).counters.restores == 0
