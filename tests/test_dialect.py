"""CockroachDB-only SQL: recognised in migration files, marked by lint, and stopping the pairs.

The migrations here are shaped like those of a bare-metal provisioning
service written for CockroachDB (timestamp versions, ``STRING`` columns,
``INDEX`` and ``FAMILY`` inside ``CREATE TABLE``, ``@`` index hints,
``STORING``, ``UPSERT``).  On PostgreSQL such a folder must stop
``upgrade-pairs`` before any server starts, with one line naming the file
and line, and exit 2; ``nox -s upgrade_pairs`` must fail once, not once per
pair.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rollsafe.cli import main
from rollsafe.config import Config, load_config
from rollsafe.engines import Server
from rollsafe.errors import EngineMismatch
from rollsafe.lint import cockroach_sql, lint_migration
from rollsafe.migrate import catalogue_from_files
from rollsafe.pairs import PairSuite, cockroach_need, require_engine
from tests.gitrepo import GitRepo

ROOT = Path(__file__).resolve().parent.parent

MACHINES_UP = """\
-- Machines known to the provisioner, and who holds them.
CREATE TABLE machines (
    machine_id UUID NOT NULL DEFAULT gen_random_uuid(),
    provider STRING NOT NULL,
    provider_id STRING(128) NOT NULL,
    bmc_secret BYTES,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (machine_id),
    UNIQUE INDEX machines_by_provider (provider, provider_id),
    FAMILY hot (machine_id, provider, provider_id)
);

CREATE TABLE leases (
    machine_id UUID NOT NULL REFERENCES machines (machine_id),
    holder STRING NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (machine_id),
    INDEX (expires_at)
);
"""

MACHINES_DOWN = "DROP TABLE leases;\nDROP TABLE machines;\n"

TAGS_UP = """\
CREATE TABLE machine_tags (
    machine_id UUID NOT NULL REFERENCES machines (machine_id),
    tag STRING NOT NULL,
    PRIMARY KEY (machine_id, tag)
);
CREATE INDEX tags_by_tag ON machine_tags (tag) STORING (machine_id);
UPSERT INTO machine_tags (machine_id, tag)
SELECT m.machine_id, 'new' FROM machines@machines_by_provider AS m;
"""

TAGS_DOWN = "DROP TABLE machine_tags;\n"

#: Plain PostgreSQL that happens to look close: INT8, a column named index, a prefix @.
LOOKALIKE = """\
CREATE TABLE racks (id INT8 PRIMARY KEY, index int NOT NULL, family text);
SELECT @ -5, 'STRING'::text AS string;
"""


def constructs(sql: str) -> list[tuple[int, str]]:
    return [(use.line, use.construct) for use in cockroach_sql(sql)]


def test_cockroach_constructs_are_found_with_their_lines() -> None:
    assert constructs(MACHINES_UP) == [
        (4, "STRING type"),
        (5, "STRING type"),
        (6, "BYTES type"),
        (9, "UNIQUE INDEX inside CREATE TABLE"),
        (10, "FAMILY inside CREATE TABLE"),
        (15, "STRING type"),
        (18, "INDEX inside CREATE TABLE"),
    ]
    assert constructs(TAGS_UP) == [
        (3, "STRING type"),
        (6, "STORING clause"),
        (7, "UPSERT statement"),
        (8, "@ index hint"),
    ]
    assert constructs("SELECT count(*) FROM leases@{FORCE_INDEX=leases_pkey};\n") == [
        (1, "@ index hint")
    ]
    assert constructs("SELECT holder::STRING, 1::INT64 FROM leases;\n") == [
        (1, "INT64 type"),
        (1, "STRING type"),
    ]


def test_postgres_sql_is_not_cockroach_sql() -> None:
    assert constructs(LOOKALIKE) == []
    assert constructs("SELECT FROM WHERE;\n") == []  # a syntax error is not a dialect
    own = sorted((ROOT / "migrations").glob("*.sql"))
    assert own
    for path in own:
        assert constructs(path.read_text(encoding="utf-8")) == [], path.name


def catalogue() -> object:
    return catalogue_from_files(
        "migrations",
        {
            "migrations/1662136250_machines.up.sql": MACHINES_UP,
            "migrations/1662136250_machines.down.sql": MACHINES_DOWN,
            "migrations/1667232160_tags.up.sql": TAGS_UP,
            "migrations/1667232160_tags.down.sql": TAGS_DOWN,
        },
    )


def test_lint_notes_each_cockroach_file_once() -> None:
    files = {
        "migrations/1_machines.up.sql": "-- compat: offline\n" + MACHINES_UP,
        "migrations/1_machines.down.sql": MACHINES_DOWN,
    }
    (migration,) = catalogue_from_files("migrations", files)
    notes = [f for f in lint_migration(migration) if f.rule == "cockroach-dialect"]
    assert len(notes) == 1
    note = notes[0]
    assert (note.severity, note.file, note.line) == ("info", "migrations/1_machines.up.sql", 5)
    assert note.message.startswith(
        "CockroachDB-only SQL: STRING type (line 5), BYTES type (line 7), "
        "UNIQUE INDEX inside CREATE TABLE (line 10), FAMILY inside CREATE TABLE (line 11), "
        "INDEX inside CREATE TABLE (line 19)"
    )
    ignored = {
        **files,
        "migrations/1_machines.up.sql": "-- lint: ignore cockroach-dialect\n" + MACHINES_UP,
    }
    (quiet,) = catalogue_from_files("migrations", ignored)
    assert not [f for f in lint_migration(quiet) if f.rule == "cockroach-dialect"]


def test_the_first_file_needing_cockroach_is_named() -> None:
    plain = catalogue_from_files(
        "migrations",
        {
            "migrations/1_hosts.up.sql": "CREATE TABLE hosts (id bigint PRIMARY KEY);\n",
            "migrations/1_hosts.down.sql": "DROP TABLE hosts;\n",
            "migrations/2_tags.up.sql": TAGS_UP,
            "migrations/2_tags.down.sql": TAGS_DOWN,
        },
    )
    found = cockroach_need(plain)
    assert found is not None
    assert (found[0], found[1].line, found[1].construct) == (
        "migrations/2_tags.up.sql",
        3,
        "STRING type",
    )
    # Pairs that stop at version 1 never run the CockroachDB file.
    assert cockroach_need(plain, up_to=1) is None
    require_engine(plain, engine="postgres", up_to=1)
    require_engine(plain, engine="cockroach")
    with pytest.raises(EngineMismatch, match=r"^migrations/2_tags.up.sql:3: "):
        require_engine(plain, engine="postgres")


def make_repo(path: Path) -> Config:
    """Three schema rows in git, each migration landing in its own commit."""
    repo = GitRepo(path / "repo")
    repo.commit("project", {"pyproject.toml": "[tool.rollsafe]\n"})
    repo.commit(
        "machines",
        {
            "migrations/1662136250_machines.up.sql": MACHINES_UP,
            "migrations/1662136250_machines.down.sql": MACHINES_DOWN,
        },
    )
    repo.commit(
        "tags",
        {
            "migrations/1667232160_tags.up.sql": TAGS_UP,
            "migrations/1667232160_tags.down.sql": TAGS_DOWN,
        },
    )
    repo.commit(
        "notes",
        {
            "migrations/1670000000_notes.up.sql": "ALTER TABLE machines ADD COLUMN note STRING;\n",
            "migrations/1670000000_notes.down.sql": "ALTER TABLE machines DROP COLUMN note;\n",
        },
    )
    return load_config(repo.path)


EXPECTED = (
    "rollsafe: migrations/1662136250_machines.up.sql:4: this migration needs CockroachDB "
    "(STRING type), but {reason}; no upgrade pair was run (put a `cockroach` binary "
    "(v22.1 or newer) on PATH, or set ROLLSAFE_DATABASE_URL to a CockroachDB cluster and "
    "pass `--engine external`)"
)


@pytest.mark.parametrize(
    ("engine", "reason"),
    [
        ("postgres", "the engine is PostgreSQL"),
        ("auto", "engine `auto` picked PostgreSQL: no `cockroach` binary on PATH"),
    ],
)
def test_upgrade_pairs_stops_with_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    reason: str,
) -> None:
    config = make_repo(tmp_path)
    monkeypatch.delenv("ROLLSAFE_ENGINE", raising=False)
    # A PATH with git and without cockroach, as on the machines these tests run on.
    binaries = tmp_path / "bin"
    binaries.mkdir()
    git = shutil.which("git")
    assert git is not None
    (binaries / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(binaries))
    code = main(["upgrade-pairs", "--repo", str(config.repo), "--engine", engine])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines() == [EXPECTED.format(reason=reason)]
    assert captured.out == ""  # no pair ran, so no pair line and no summary


@pytest.mark.db
def test_a_postgres_server_given_or_attached_is_refused_too(
    tmp_path: Path, pg_server: Server
) -> None:
    config = make_repo(tmp_path)
    with PairSuite(config, server=pg_server) as suite:
        with pytest.raises(EngineMismatch, match="but the database server is PostgreSQL"):
            suite.run(suite.pairs[0])
        assert suite.results == []


NOXFILE = """\
from rollsafe.nox_sessions import upgrade_pairs_sessions

upgrade_pairs_sessions()
"""


@pytest.mark.slow
def test_nox_fails_one_session_and_skips_the_others(tmp_path: Path) -> None:
    pytest.importorskip("nox", reason="the nox sessions need nox in the test environment")
    config = make_repo(tmp_path)
    (config.repo / "noxfile.py").write_text(NOXFILE, encoding="utf-8")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "nox", "--noxfile", str(config.repo / "noxfile.py")),
            *("-s", "upgrade_pairs", "--", "--engine", "postgres"),
        ],
        cwd=config.repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 1
    needs = [line for line in done.stderr.splitlines() if "needs CockroachDB" in line]
    assert len(needs) == 1, done.stderr
    assert "migrations/1662136250_machines.up.sql:4" in needs[0]
    assert "upgrade_pairs(1662136250->1667232160): aborted" in done.stderr
    assert "upgrade_pairs(1667232160->1670000000): skipped" in done.stderr
