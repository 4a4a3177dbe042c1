"""golang-migrate's lock, measured on golang-migrate itself: its ids on both routes, and exclusion.

The ids are read from ``pg_locks`` while the real CLI holds its lock, and
from golang-migrate's own ``GenerateAdvisoryLockId`` compiled from its source
(CockroachDB's lock rows, where no cockroach binary is at hand); none is
typed in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from rollsafe.engines import Database
from rollsafe.errors import DatabaseError
from rollsafe.migrate import Migrator, load_catalogue
from rollsafe.migrate._lock import cockroach_lock_ids, cockroach_lock_sql, lock_id
from tests.interop.conftest import Tools, go_url, rows, state

SOURCE_ENV = "ROLLSAFE_GOLANG_MIGRATE_SOURCE"
REPOSITORY = Path(__file__).resolve().parents[2]

#: A Go program printing golang-migrate's GenerateAdvisoryLockId for each argument list.
LOCK_IDS_GO = """package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/golang-migrate/migrate/v4/database"
)

func main() {
	var calls [][]string
	if err := json.Unmarshal([]byte(os.Args[1]), &calls); err != nil {
		panic(err)
	}
	for _, call := range calls {
		id, _ := database.GenerateAdvisoryLockId(call[0], call[1:]...)
		fmt.Println(id)
	}
}
"""


def _advisory_keys(db: Database) -> set[int]:
    found = rows(
        db,
        "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
        "WHERE locktype = 'advisory' AND granted",
    )
    return {int(str(key)) for (key,) in found}


def _wait_for_lock(db: Database, process: subprocess.Popen[str]) -> set[int]:
    """The advisory keys held while ``process`` runs its slow migration."""
    for _ in range(400):
        keys = _advisory_keys(db)
        if keys or process.poll() is not None:
            return keys
        time.sleep(0.025)
    return set()


@pytest.mark.parametrize("path", [True, False], ids=["url-path", "current-database"])
def test_rollsafe_holds_the_id_golang_migrate_takes_on_both_routes(
    tools: Tools, database: Database, path: bool
) -> None:
    tools.write({"1_slow.up.sql": "SELECT pg_sleep(1);\n"})
    url = go_url(database, path=path)
    process = subprocess.Popen(
        [str(tools.binary), "-path", str(tools.folder), "-database", url, "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        held = _wait_for_lock(database, process)
    finally:
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert len(held) == 1, "golang-migrate holds one advisory lock"
    with Migrator(database.dsn, load_catalogue(tools.folder.parent, "migrations")) as migrator:
        assert held <= set(migrator.lock_ids)
        assert list(migrator.lock_ids) == sorted(migrator.lock_ids)


def _source() -> Path:
    value = os.environ.get(SOURCE_ENV) or str(REPOSITORY.parent / "shared/tools/golang-migrate/src")
    source = Path(value)
    if not (source / "database" / "util.go").is_file() or shutil.which("go") is None:
        pytest.skip(f"golang-migrate's source ({SOURCE_ENV}) and `go` are needed")
    return source


def _golang_migrate_lock_ids(calls: list[list[str]], tmp_path: Path) -> list[int]:
    """GenerateAdvisoryLockId from golang-migrate's source, built as build.sh builds the CLI."""
    gopath = tmp_path / "gopath"
    module = gopath / "src/github.com/golang-migrate/migrate"
    module.mkdir(parents=True)
    (module / "v4").symlink_to(_source())
    program = gopath / "src/lockids"
    program.mkdir()
    (program / "main.go").write_text(LOCK_IDS_GO, encoding="utf-8")
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{gopath}:/usr/share/gocode",
        "GOCACHE": str(tmp_path / "gocache"),
    }
    done = subprocess.run(
        ["go", "run", "lockids", json.dumps(calls)],
        cwd=program,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [int(line) for line in done.stdout.split()]


def test_lock_ids_equal_golang_migrates_own_function(tmp_path: Path) -> None:
    calls = [
        ["/app", "public", "schema_migrations"],
        ["app", "public", "schema_migrations"],
        ["app", "my schema", "deploy.versions"],
        ["/app"],
        ["app"],
    ]
    expected = _golang_migrate_lock_ids(calls, tmp_path)
    assert [lock_id(call[0], *call[1:]) for call in calls] == expected
    # CockroachDB: golang-migrate's lock row carries GenerateAdvisoryLockId(database name).
    assert cockroach_lock_ids("app") == tuple(sorted(expected[3:]))
    sql = cockroach_lock_sql("schema_lock", cockroach_lock_ids("app"))
    low, high = sorted(expected[3:])
    assert sql == f'INSERT INTO "schema_lock" (lock_id) VALUES ({low}), ({high})'


RUN_ROLLSAFE = """
import json, sys
from pathlib import Path
from rollsafe.migrate import Migrator, load_catalogue
with Migrator(sys.argv[1], load_catalogue(Path(sys.argv[2]), "migrations")) as migrator:
    print(json.dumps(migrator.up()), flush=True)
"""

SLOW_FOLDER = {
    "1_log.up.sql": "CREATE TABLE applied (version int);\nINSERT INTO applied VALUES (1);\n",
    "2_slow.up.sql": "SELECT pg_sleep(2);\nINSERT INTO applied VALUES (2);\n",
    "3_more.up.sql": "INSERT INTO applied VALUES (3);\n",
}


def _rollsafe_process(db: Database, tools: Tools) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", RUN_ROLLSAFE, db.dsn, str(tools.folder.parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _go_process(db: Database, tools: Tools, *, path: bool) -> subprocess.Popen[str]:
    url = go_url(db, path=path)
    return subprocess.Popen(
        [str(tools.binary), "-path", str(tools.folder), "-database", url, "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_until_running_slow(db: Database) -> None:
    for _ in range(800):
        if rows(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%' "
            "AND pid <> pg_backend_pid()",
        ) != [(0,)]:
            return
        time.sleep(0.025)
    raise AssertionError("the slow migration never started")


@pytest.mark.parametrize(
    ("first", "path"),
    [("golang-migrate", True), ("golang-migrate", False), ("rollsafe", True), ("rollsafe", False)],
    ids=["go-first-url", "go-first-current-db", "rollsafe-first-url", "rollsafe-first-current-db"],
)
def test_the_two_migrators_exclude_each_other(
    tools: Tools, database: Database, first: str, path: bool
) -> None:
    """A slow migration in one tool; the other starts during it; each migration runs once."""
    tools.write(SLOW_FOLDER)
    starters = {
        "golang-migrate": lambda: _go_process(database, tools, path=path),
        "rollsafe": lambda: _rollsafe_process(database, tools),
    }
    one = starters[first]()
    try:
        _wait_until_running_slow(database)
        other = starters["rollsafe" if first == "golang-migrate" else "golang-migrate"]()
        outputs = [other.communicate(timeout=120)[0], one.communicate(timeout=120)[0]]
    finally:
        one.kill()
    assert one.returncode == 0 and other.returncode == 0, outputs
    assert sorted(rows(database, "SELECT version FROM applied")) == [(1,), (2,), (3,)]
    assert state(database) == [(3, False)]


def test_a_held_lock_times_out_in_rollsafe_naming_the_holder(
    tools: Tools, database: Database
) -> None:
    """rollsafe gives up (naming who holds the lock); golang-migrate's CLI waits on.

    golang-migrate's ``-lock-timeout`` bounds only ``Migrate.lock``; the
    postgres driver's ``ensureVersionTable`` takes the lock at start-up first,
    with ``pg_advisory_lock`` and no limit, so the CLI outlives its timeout and
    runs once the lock is free.
    """
    tools.write(SLOW_FOLDER)
    with Migrator(database.dsn, load_catalogue(tools.folder.parent, "migrations")) as migrator:
        ids = migrator.lock_ids
    url_route = lock_id(f"/{database.name}", "public", "schema_migrations")
    heard: list[str] = []
    with psycopg.connect(database.dsn, autocommit=True) as holder:
        holder.execute("SET application_name = 'the-holder'")
        holder.execute("SELECT pg_advisory_lock(%s)", (url_route,))
        pid = holder.info.backend_pid
        go = subprocess.Popen(
            [
                str(tools.binary),
                "-lock-timeout",
                "1",
                "-path",
                str(tools.folder),
                "-database",
                go_url(database),
                "up",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            catalogue = load_catalogue(tools.folder.parent, "migrations")
            with (
                Migrator(
                    database.dsn, catalogue, lock_timeout=1.5, notify=heard.append
                ) as migrator,
                pytest.raises(DatabaseError, match=f"timeout: .*pid {pid}.*the-holder"),
            ):
                migrator.up()
            still_waiting = go.poll() is None
        except BaseException:
            go.kill()
            raise
    output = go.communicate(timeout=120)[0]
    assert url_route in ids
    assert len(heard) == 1 and f"pid {pid}" in heard[0]
    assert still_waiting and go.returncode == 0, output
    assert sorted(rows(database, "SELECT version FROM applied")) == [(1,), (2,), (3,)]
