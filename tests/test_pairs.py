"""The upgrade pair protocol on small real repositories and a real PostgreSQL.

Each outcome the pair test promises to tell apart is produced here by the
kind of migration that causes it in real life, next to a correct history
that must pass: a NOT NULL column without a default over existing rows, a
down migration that forgets an index, a live step whose old writes and old
queries break, a new check on old data, an irreversible migration, a down
file the engine cannot run.  After each failure the later pairs must still
run, and a pair's verdict must not depend on which pairs were selected.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from rollsafe.commands.pairs import upgrade_pairs
from rollsafe.config import Config, load_config
from rollsafe.engines import Server
from rollsafe.errors import ConfigError
from rollsafe.pairs import (
    PairResult,
    PairsRun,
    PairSuite,
    failure_report,
    junit_xml,
    pair_line,
    run_summary,
    select_pairs,
)
from tests.gitrepo import GitRepo, migration

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parent.parent

PYPROJECT = '[tool.rollsafe]\nqueries = ["queries/*.sql"]\n'

QUERIES_V1 = """\
-- name: CreateItem :one
INSERT INTO items (name) VALUES ($1) RETURNING id;

-- name: GetItem :one
SELECT id, name FROM items WHERE id = $1;
"""

#: A correct history: three live migrations, each with fixtures and the code's queries.
BASE: list[tuple[str, Mapping[str, str | None]]] = [
    (
        "items",
        {
            **migration(
                1,
                "items",
                "-- compat: live\n"
                "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);\n",
                "DROP TABLE items;\n",
            ),
            "queries/items.sql": QUERIES_V1,
            "tests/upgrade/1/seed.sql": (
                "INSERT INTO items (name) SELECT 'item-' || (count(*) + 1) FROM items;\n"
                "INSERT INTO items (name) SELECT 'item-' || (count(*) + 1) FROM items;\n"
            ),
            "tests/upgrade/1/check.sql": "SELECT count(*) >= 2 FROM items;\n",
        },
    ),
    (
        "color",
        {
            **migration(
                2,
                "color",
                "-- compat: live\n"
                "ALTER TABLE items ADD COLUMN color text NOT NULL DEFAULT 'red';\n",
                "ALTER TABLE items DROP COLUMN color;\n",
            ),
            "queries/items.sql": QUERIES_V1.replace(
                "(name) VALUES ($1)", "(name, color) VALUES ($1, $2)"
            ),
            "tests/upgrade/2/seed.sql": (
                "INSERT INTO items (name, color)\n"
                "SELECT 'item-' || (count(*) + 1), 'blue' FROM items;\n"
            ),
            "tests/upgrade/2/check.sql": (
                "SELECT count(*) FILTER (WHERE color = 'red') >= 2 FROM items;\n"
            ),
        },
    ),
    (
        "tags",
        {
            **migration(
                3,
                "tags",
                "-- compat: live\n"
                "CREATE TABLE tags (\n"
                "    item_id bigint NOT NULL REFERENCES items (id), tag text NOT NULL\n"
                ");\n",
                "DROP TABLE tags;\n",
            ),
            "queries/tags.sql": (
                "-- name: Tag :exec\nINSERT INTO tags (item_id, tag) VALUES ($1, $2);\n"
            ),
            "tests/upgrade/3/seed.sql": (
                "INSERT INTO items (name, color)\n"
                "SELECT 'item-' || (count(*) + 1), 'green' FROM items;\n"
                "INSERT INTO tags (item_id, tag) SELECT max(id), 'new' FROM items;\n"
            ),
        },
    ),
]


def make_repo(path: Path, extra: Sequence[tuple[str, Mapping[str, str | None]]] = ()) -> Config:
    repo = GitRepo(path / "repo")
    repo.commit("project", {"pyproject.toml": PYPROJECT})
    for message, files in [*BASE, *extra]:
        repo.commit(message, files)
    return load_config(repo.path)


def run(config: Config, server: Server, **kwargs: object) -> PairsRun:
    with PairSuite(config, server=server, **kwargs) as suite:  # type: ignore[arg-type]
        for pair in suite.pairs:
            suite.run(pair)
        return suite.report()


def by_id(report: PairsRun) -> dict[str, PairResult]:
    return {r.pair.id: r for r in report.results}


def statuses(result: PairResult) -> list[str]:
    return [s.status for s in result.steps]


def test_a_correct_history_passes_every_pair(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(tmp_path)
    report = run(config, pg_server)
    assert [r.pair.id for r in report.results] == ["1->2", "2->3"]
    assert [r.status for r in report.results] == ["passed", "passed"]
    first = report.results[0]
    # The rollback check (run between 6 and 7) finds that code of schema 2 writes a color
    # that schema 1 lacks: noted, since no migration declares its rollback live.
    assert statuses(first) == ["passed"] * 6 + ["noted", "passed"]
    assert [s.number for s in first.steps] == [1, 2, 3, 4, 5, 6, 8, 7]
    assert first.rollback == "offline"
    assert [f.kind for f in first.step(8).findings] == ["new-query-fails-on-old"] * 2
    assert first.step(4).detail == (
        "replayed seeds of 1; replayed 3 generated rows of 1 in 1 table; "
        "prepared 2 of 2 queries of CL 2"
    )
    assert first.step(5).detail == "ran checks of 2"
    assert report.results[1].step(5).status == "not applicable"  # version 3 has no check
    # O(N): reaching 1 once, then up, down and up again per pair; no copies, no rebuilds.
    assert report.counters.migrations == 1 + 3 + 3
    assert report.counters.copies == 0
    assert report.counters.rebuilds == 0
    assert run_summary(report).startswith("upgrade pairs: 2 passed, 0 failed, 0 incomplete")


def test_clone_isolation_runs_each_pair_on_a_copy(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(tmp_path)
    report = run(config, pg_server, isolation="clone")
    assert [r.status for r in report.results] == ["passed", "passed"]
    # One snapshot of each state and one clone per pair; the chain runs each migration once.
    assert report.counters.copies == 4
    assert report.counters.migrations == 2 + 3 + 3


def test_not_null_without_default_fails_on_populated_data(
    tmp_path: Path, pg_server: Server
) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "owner",
                migration(
                    4,
                    "owner",
                    "-- compat: offline\nALTER TABLE items ADD COLUMN owner text NOT NULL;\n",
                    "ALTER TABLE items DROP COLUMN owner;\n",
                ),
            ),
            (
                "notes",
                migration(5, "notes", "CREATE TABLE notes (body text);\n", "DROP TABLE notes;\n"),
            ),
        ],
    )
    results = by_id(run(config, pg_server))
    broken = results["3->4"]
    assert broken.status == "failed"
    assert statuses(broken) == ["passed", "passed", "failed"] + ["not run"] * 5
    (finding,) = broken.findings
    assert finding.kind == "up-fails-on-data"
    assert finding.summary == "migration 4 fails on the populated database"
    assert finding.where == "migrations/4_owner.up.sql:2"
    assert finding.statement == "ALTER TABLE items ADD COLUMN owner text NOT NULL"
    assert finding.server is not None and "contains null values" in finding.server
    assert "give it a DEFAULT" in finding.fix
    text = failure_report(broken)
    assert text.startswith("FAILED 3->4 (offline, CL 4 -> 5), step 3 migrate up:")
    # The next pair still runs, on the data that could migrate, and says so.
    after = results["4->5"]
    assert after.status == "passed"
    assert any("migration 4 failed on the data seeded before it" in n for n in after.notes)


def test_a_down_that_leaves_an_index_behind(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "index",
                migration(
                    4,
                    "name_index",
                    "CREATE INDEX items_name_idx ON items (name);\n",
                    "-- forgot the index\nSELECT 1;\n",
                ),
            ),
            (
                "notes",
                migration(5, "notes", "CREATE TABLE notes (body text);\n", "DROP TABLE notes;\n"),
            ),
        ],
    )
    report = run(config, pg_server)
    results = by_id(report)
    broken = results["3->4"]
    assert broken.step(6).status == "failed"
    (trace,) = broken.step(6).findings
    assert trace.kind == "down-leaves-trace"
    assert (
        trace.summary
        == "down to 3 leaves the schema different from before the upgrade (1 difference)"
    )
    assert trace.where == "migrations/4_name_index.down.sql"
    assert trace.details.startswith("+ index public.items_name_idx (table public.items")
    assert trace.details.endswith("only after down")
    (again,) = broken.step(7).findings
    assert again.kind == "up-again-fails"
    assert again.server is not None and "already exists" in again.server
    # The chain was rebuilt, so the next pair starts clean and passes.
    assert results["4->5"].status == "passed"
    assert report.counters.rebuilds == 1


#: Migrations whose reach is not in their text, each with a down that forgets what it did.
HIDDEN_REACH = {
    "do-block": (
        [],
        "DO $$ BEGIN EXECUTE 'CREATE TABLE hidden (id int)'; END $$;\n",
        "SELECT 1;\n",
        "+ table public.hidden",
    ),
    "cascade": (
        [
            (
                "mood",
                migration(
                    4,
                    "mood",
                    "CREATE TYPE mood AS ENUM ('ok');\nALTER TABLE items ADD COLUMN mood mood;\n",
                    "ALTER TABLE items DROP COLUMN mood;\nDROP TYPE mood;\n",
                ),
            )
        ],
        "DROP TYPE mood CASCADE;\n",
        "CREATE TYPE mood AS ENUM ('ok');\n",
        "- column public.items.mood",
    ),
    "function-call": (
        [
            (
                "maker",
                migration(
                    4,
                    "maker",
                    "CREATE FUNCTION make_hidden() RETURNS void LANGUAGE plpgsql\n"
                    "AS $$ BEGIN CREATE TABLE hidden (id int); END $$;\n",
                    "DROP FUNCTION make_hidden();\n",
                ),
            )
        ],
        "SELECT make_hidden();\n",
        "SELECT 1;\n",
        "+ table public.hidden",
    ),
}


@pytest.mark.parametrize("case", sorted(HIDDEN_REACH))
def test_a_migration_whose_reach_is_unknown_is_checked_against_the_whole_schema(
    tmp_path: Path, pg_server: Server, case: str
) -> None:
    """DO blocks, CASCADE and calls change objects the SQL does not name: the snapshots
    before the upgrade and after the down must then read everything, or the trace the
    down leaves on an unnamed object goes unseen."""
    before, up, down, trace = HIDDEN_REACH[case]
    version = 4 + len(before)
    config = make_repo(tmp_path, [*before, ("hidden", migration(version, "hidden", up, down))])
    result = by_id(run(config, pg_server))[f"{version - 1}->{version}"]
    assert "(the whole schema)" in result.step(2).detail
    assert result.step(6).status == "failed"
    (found,) = result.step(6).findings
    assert found.kind == "down-leaves-trace"
    assert trace in found.details


def test_debris_that_up_again_does_not_trip_over(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "size",
                migration(
                    4,
                    "size",
                    "ALTER TABLE items ADD COLUMN size int;\n",
                    "ALTER TABLE items DROP COLUMN size;\nCREATE TABLE scratch (id int);\n",
                ),
            )
        ],
    )
    broken = by_id(run(config, pg_server))["3->4"]
    assert [f.kind for f in broken.findings] == ["down-leaves-trace", "up-again-differs"]
    again = broken.step(7).findings[0]
    assert again.summary == "down and up again give a schema different from the first up"
    assert again.details.splitlines() == [
        "+ table public.scratch: only after down and up",
        "+ column public.scratch.id (type integer, nullable NULL): only after down and up",
    ]


def test_a_down_that_loses_rows(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "size",
                migration(
                    4,
                    "size",
                    "ALTER TABLE items ADD COLUMN size int;\n",
                    # The schema comes back, the tags written before the upgrade do not.
                    "ALTER TABLE items DROP COLUMN size;\nDELETE FROM tags;\n",
                ),
            )
        ],
    )
    broken = by_id(run(config, pg_server))["3->4"]
    assert broken.status == "failed"
    (lost,) = broken.step(6).findings
    assert lost.kind == "down-loses-rows"
    assert lost.summary == "rows written before the upgrade are gone after down"
    assert lost.where == "migrations/4_size.down.sql"
    # One hand-written row and three generated from the catalog at 3.
    assert lost.details == "public.tags: 4 rows before the upgrade, 0 after down"
    assert broken.step(2).detail.endswith("rows")  # counted with the snapshot


def test_old_code_that_cannot_read_its_data_after_down(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "label",
                {
                    **migration(
                        4,
                        "label",
                        "ALTER TABLE items ADD COLUMN label text;\n",
                        "ALTER TABLE items DROP COLUMN label;\nUPDATE items SET name = '';\n",
                    ),
                    "tests/upgrade/3/check.sql": (
                        "SELECT NOT EXISTS (SELECT 1 FROM items WHERE name = '');\n"
                    ),
                },
            )
        ],
    )
    broken = by_id(run(config, pg_server))["3->4"]
    assert statuses(broken)[5] == "failed"
    (finding,) = broken.step(6).findings
    assert finding.kind == "old-data-unreadable"
    assert finding.summary == "old code's check (version 3) fails after down"
    assert finding.where == "tests/upgrade/3/check.sql:1"
    assert finding.server == "returned false"


def test_live_step_whose_old_writes_and_queries_break(tmp_path: Path, pg_server: Server) -> None:
    rename = (
        "-- compat: live\n-- lint: ignore rename-column\n"
        "ALTER TABLE items RENAME COLUMN name TO title;\n"
    )
    config = make_repo(
        tmp_path,
        [
            (
                "rename",
                migration(4, "rename", rename, "ALTER TABLE items RENAME COLUMN title TO name;\n"),
            )
        ],
    )
    broken = by_id(run(config, pg_server))["3->4"]
    assert broken.status == "failed"
    assert statuses(broken) == [
        "passed",
        "passed",
        "passed",
        "failed",
        "not applicable",
        "passed",
        "passed",  # the rollback check: this CL's queries still say `name`, as schema 3 does
        "passed",
    ]
    kinds = [f.kind for f in broken.step(4).findings]
    assert kinds == ["old-write-fails", "old-write-fails", "old-query-fails", "old-query-fails"]
    write, generated, create, get = broken.step(4).findings
    assert write.summary == "old code's writes (seed of version 3) fail on schema 4"
    assert write.where == "tests/upgrade/3/seed.sql:1"
    assert write.server == 'column "name" of relation "items" does not exist'
    # The rows generated at 3, written again with 3's columns, fail the same way.
    assert generated.summary == (
        "old code's writes (rows generated at 3, with its columns) fail on schema 4"
    )
    assert generated.where == "public.items (generated from the catalog, no fixture)"
    assert (
        generated.statement
        == "INSERT INTO public.items (name, color) VALUES ('name-15', 'color-15')"
    )
    assert generated.server == 'column "name" of relation "items" does not exist'
    assert create.summary == "old code's query CreateItem (CL 4) does not prepare on schema 4"
    assert create.where == "queries/items.sql:2 at CL 4"
    assert create.server == 'column "name" of relation "items" does not exist'
    assert get.where == "queries/items.sql:5 at CL 4"
    assert "compat: offline" in create.fix


def test_old_queries_are_triaged_before_they_fail_a_pair(tmp_path: Path, pg_server: Server) -> None:
    """Only queries using what the upgrade changes are prepared, and one that does not
    prepare on the old schema either is noted, not blamed on the upgrade."""
    tags = (
        "-- name: Tag :exec\nINSERT INTO tags (item_id, tag) VALUES ($1, $2);\n\n"
        "-- name: Broken :many\nSELECT missing FROM tags;\n"
    )
    config = make_repo(
        tmp_path,
        [
            ("a query broken since it was written", {"queries/tags.sql": tags}),
            (
                "note",
                migration(
                    4,
                    "note",
                    "-- compat: live\nALTER TABLE tags ADD COLUMN note text;\n",
                    "ALTER TABLE tags DROP COLUMN note;\n",
                ),
            ),
        ],
    )
    result = by_id(run(config, pg_server))["3->4"]
    assert result.status == "passed", failure_report(result)
    detail = result.step(4).detail
    assert "query Broken does not prepare on schema 3 either: not counted" in detail
    assert "prepared 2 of 4 queries of CL 5 (2 use nothing this upgrade changes)" in detail


def test_the_same_change_passes_as_an_offline_step(tmp_path: Path, pg_server: Server) -> None:
    rename = "-- compat: offline\nALTER TABLE items RENAME COLUMN name TO title;\n"
    config = make_repo(
        tmp_path,
        [
            (
                "rename",
                migration(4, "rename", rename, "ALTER TABLE items RENAME COLUMN title TO name;\n"),
            )
        ],
    )
    result = by_id(run(config, pg_server))["3->4"]
    assert result.status == "passed"
    assert result.step(4).status == "not applicable"
    assert result.step(4).detail.startswith("offline step")
    assert "offline step (old code is stopped first); generated" in pair_line(result)


def test_new_code_that_cannot_read_old_data(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "kind",
                {
                    **migration(
                        4,
                        "kind",
                        "ALTER TABLE items ADD COLUMN kind text;\n",
                        "ALTER TABLE items DROP COLUMN kind;\n",
                    ),
                    "tests/upgrade/4/check.sql": (
                        "-- new code assumes every item has a kind\n"
                        "SELECT NOT EXISTS (SELECT 1 FROM items WHERE kind IS NULL);\n"
                    ),
                },
            )
        ],
    )
    broken = by_id(run(config, pg_server))["3->4"]
    assert broken.status == "failed"
    (finding,) = broken.step(5).findings
    assert finding.kind == "check-fails"
    assert finding.where == "tests/upgrade/4/check.sql:2"
    assert finding.server == "returned false"
    assert broken.step(6).status == "passed"


def test_an_irreversible_migration_skips_down_and_up_again(
    tmp_path: Path, pg_server: Server
) -> None:
    config = make_repo(
        tmp_path,
        [("drop", migration(4, "drop_tags", "DROP TABLE tags;\n", down=None))],
    )
    report = run(config, pg_server)
    result = by_id(report)["3->4"]
    assert result.status == "incomplete"
    assert statuses(result)[5:] == ["skipped", "skipped", "skipped"]
    assert result.rollback == "restore"
    assert result.step(6).detail.startswith("migration 4 has no down file (irreversible)")
    assert "steps 6-7 skipped: migration 4 has no down file (irreversible)" in pair_line(result)
    assert report.ok  # skipped is not failed ...
    root = ET.fromstring(junit_xml(report))
    cases = root.findall(".//testsuite[@name='upgrade_pairs(3->4)']/testcase")
    skipped = {
        c.get("name"): c.find("skipped").get("message", "")  # type: ignore[union-attr]
        for c in cases
        if c.find("skipped") is not None
    }
    # ... and not passed either.
    assert skipped["6 migrate down"].startswith("skipped: migration 4 has no down file")
    assert skipped["7 migrate up again"].startswith("skipped: migration 4 has no down file")
    assert skipped["4 old code on the new schema"].startswith("not applicable: offline step")


def test_a_down_file_the_engine_cannot_run(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "pk",
                migration(
                    4,
                    "tag_id",
                    "-- compat: live\nALTER TABLE tags ADD COLUMN id bigserial;\n",
                    # CockroachDB syntax that PostgreSQL cannot parse.
                    "ALTER TABLE tags ALTER PRIMARY KEY USING COLUMNS (item_id);\n"
                    "ALTER TABLE tags DROP COLUMN id;\n",
                ),
            ),
            (
                "notes",
                migration(5, "notes", "CREATE TABLE notes (body text);\n", "DROP TABLE notes;\n"),
            ),
        ],
    )
    results = by_id(run(config, pg_server))
    broken = results["3->4"]
    assert statuses(broken) == ["passed"] * 4 + ["not applicable", "failed", "not run", "not run"]
    (finding,) = broken.findings
    assert finding.kind == "down-fails"
    assert finding.summary == "the down migration cannot run on PostgreSQL"
    assert finding.where == "migrations/4_tag_id.down.sql:1"
    assert finding.server is not None and finding.server.startswith("syntax error")
    assert results["4->5"].status == "passed"


#: A seed that tells the test where the server keeps its files, then waits for Ctrl-C.
WAITING_SEED = """\
import os, time
from pathlib import Path

def seed(conn):
    data = conn.execute("SHOW data_directory").fetchone()[0]
    Path(os.environ["ROLLSAFE_TEST_SEEDING"]).write_text(data)
    time.sleep(600)
"""

#: The console script with Ctrl-C restored: a job started in the background by a
#: non-interactive shell (as CI runners do) inherits SIGINT ignored.
CLI_WITH_CTRL_C = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from rollsafe.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_ctrl_c_exits_130_and_leaves_no_server_behind(tmp_path: Path) -> None:
    from tests.test_engines import alive, children

    config = make_repo(tmp_path)
    (config.repo / "tests" / "upgrade" / "1" / "fixture.py").write_text(WAITING_SEED)
    mark = tmp_path / "seeding"
    child = subprocess.Popen(
        [sys.executable, "-c", CLI_WITH_CTRL_C, "upgrade-pairs", "--repo", str(config.repo)],
        env={**os.environ, "ROLLSAFE_TEST_SEEDING": str(mark)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not (mark.exists() and mark.read_text()):  # the seed is running
            assert child.poll() is None, child.communicate()
            time.sleep(0.05)
        data = Path(mark.read_text())
        folder = next(p for p in (data, *data.parents) if p.name.startswith("rollsafe-pg-"))
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        workers = children(postmaster)
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:  # never leave the child (and its server) behind
            child.kill()
            child.communicate()
    assert child.returncode == 130
    assert err.splitlines()[-1] == "rollsafe: interrupted"
    assert "Traceback" not in err
    assert not folder.exists()
    assert not alive(postmaster)
    assert [pid for pid in workers if alive(pid)] == []


def test_one_selected_pair_gets_the_verdict_of_the_full_run(
    tmp_path: Path, pg_server: Server
) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "index",
                migration(
                    4, "name_index", "CREATE INDEX items_name_idx ON items (name);\n", "SELECT 1;\n"
                ),
            )
        ],
    )
    full = by_id(run(config, pg_server))["3->4"]
    out = io.StringIO()
    code = upgrade_pairs(config, pair="4", server=pg_server, out=out, fmt="json")
    assert code == 1
    data = json.loads(out.getvalue())
    (alone,) = data["pairs"]
    assert alone["id"] == "3->4"
    assert [s["status"] for s in alone["steps"]] == statuses(full)


def test_selection_by_id_target_and_range(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "notes",
                migration(4, "notes", "CREATE TABLE notes (body text);\n", "DROP TABLE notes;\n"),
            )
        ],
    )
    with PairSuite(config, server=pg_server) as suite:
        pairs = suite.pairs
    assert [p.id for p in select_pairs(pairs, pair="2->3")] == ["2->3"]
    assert [p.id for p in select_pairs(pairs, pair="3")] == ["2->3"]
    assert [p.id for p in select_pairs(pairs, start=2)] == ["2->3", "3->4"]
    assert [p.id for p in select_pairs(pairs, start=1, end=3)] == ["1->2", "2->3"]
    with pytest.raises(ConfigError) as raised:
        select_pairs(pairs, pair="9")
    assert raised.value.where == "--pair 9"
    assert raised.value.fix == "pairs: 1->2, 2->3, 3->4"


def test_list_prints_pairs_and_session_names_without_a_database(tmp_path: Path) -> None:
    config = make_repo(tmp_path)
    out = io.StringIO()
    assert upgrade_pairs(config, list_only=True, fmt="json", out=out) == 0
    listed = json.loads(out.getvalue())
    assert [(p["id"], p["session"], p["upgrade"]) for p in listed] == [
        ("1->2", "upgrade_pairs(1->2)", "live"),
        ("2->3", "upgrade_pairs(2->3)", "live"),
    ]


def test_junit_report_and_exit_code_of_a_failing_run(tmp_path: Path, pg_server: Server) -> None:
    config = make_repo(
        tmp_path,
        [
            (
                "owner",
                migration(
                    4,
                    "owner",
                    "ALTER TABLE items ADD COLUMN owner text NOT NULL;\n",
                    "ALTER TABLE items DROP COLUMN owner;\n",
                ),
            )
        ],
    )
    junit = tmp_path / "reports" / "pairs.xml"
    out = io.StringIO()
    assert upgrade_pairs(config, junit=junit, server=pg_server, out=out) == 1
    text = out.getvalue()
    assert "3->4           offline  FAILED" in text
    assert "FAILED 3->4 (offline, CL 4 -> 5), step 3 migrate up" in text
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("24", "1")
    failure = root.find(".//testcase[@name='3 migrate up']/failure")
    assert failure is not None
    assert failure.get("type") == "up-fails-on-data"
    assert failure.get("message") == "migration 4 fails on the populated database"


def test_this_repository_passes_every_pair(pg_server: Server) -> None:
    config = load_config(ROOT)
    report = run(config, pg_server)
    results = by_id(report)
    assert list(results) == ["1->2", "2->3", "3->4", "4->5", "5->6", "6->7"]
    problems = {pid: failure_report(r) for pid, r in results.items() if r.status != "passed"}
    assert problems == {}
    offline = results["5->6"]
    assert offline.pair.upgrade == "offline"
    assert offline.step(4).status == "not applicable"
    # Every step runs somewhere: old writes and queries, checks, down and up again.
    for number in range(1, 8):
        assert any(r.step(number).status == "passed" for r in report.results), number


NOXFILE = """\
from rollsafe.nox_sessions import upgrade_pairs_sessions

upgrade_pairs_sessions()
"""


def nox(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nox", "--noxfile", str(repo / "noxfile.py"), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.slow
def test_nox_lists_one_session_per_pair_and_runs_them(tmp_path: Path) -> None:
    pytest.importorskip("nox", reason="the nox sessions need nox in the test environment")
    config = make_repo(
        tmp_path,
        [
            (
                "owner",
                migration(
                    4,
                    "owner",
                    "ALTER TABLE items ADD COLUMN owner text NOT NULL;\n",
                    "ALTER TABLE items DROP COLUMN owner;\n",
                ),
            )
        ],
    )
    (config.repo / "noxfile.py").write_text(NOXFILE, encoding="utf-8")
    listed = nox(config.repo, "-l", "--json")
    assert listed.returncode == 0, listed.stderr
    sessions = [entry["session"] for entry in json.loads(listed.stdout)]
    assert sessions == ["upgrade_pairs(1->2)", "upgrade_pairs(2->3)", "upgrade_pairs(3->4)"]
    junit = tmp_path / "nox-junit.xml"
    done = nox(config.repo, "-s", "upgrade_pairs", "--", "--from", "2", "--junit", str(junit))
    assert done.returncode == 1
    assert "upgrade_pairs(1->2): skipped (not selected by --from 2)" in done.stderr
    assert "upgrade_pairs(2->3): success" in done.stderr
    assert "upgrade_pairs(3->4): failed" in done.stderr
    assert "step 3 migrate up: migration 4 fails on the populated database" in done.stderr
    root = ET.parse(junit).getroot()
    assert [s.get("name") for s in root] == ["upgrade_pairs(2->3)", "upgrade_pairs(3->4)"]


@pytest.mark.slow
def test_nox_reports_why_no_pairs_could_be_computed(tmp_path: Path) -> None:
    pytest.importorskip("nox", reason="the nox sessions need nox in the test environment")
    folder = tmp_path / "not-a-repo"
    folder.mkdir()
    (folder / "noxfile.py").write_text(NOXFILE, encoding="utf-8")
    listed = nox(folder, "-l")
    assert listed.returncode == 0
    assert "* upgrade_pairs" in listed.stdout
    done = nox(folder, "-s", "upgrade_pairs")
    assert done.returncode == 1
    assert "cannot compute the upgrade pairs" in done.stderr


def test_the_command_module_imports_without_the_database_stack() -> None:
    # The CLI imports every command module to build its parser; `release-table` must not
    # pay for psycopg, pglast, the engines or the pair runner.
    code = (
        "import sys, rollsafe.commands.pairs\n"
        "heavy = ('psycopg', 'pglast', 'git',\n"
        "         'rollsafe.pairs._runner', 'rollsafe.engines._base')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
