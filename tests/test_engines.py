"""Throwaway servers: started for real, checked for their settings, and gone afterwards.

Why: a test run that leaves a postgres process or a temp folder behind, or
that needs root to be special-cased by hand, breaks the next run on a CI
machine; and a clone that replays history instead of copying makes every
upgrade pair cost the whole history.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rollsafe.engines import (
    ENGINE_ENV,
    URL_ENV,
    PostgresServer,
    Server,
    Snapshot,
    _postgres,
    _processes,
    ephemeral_server,
    resolve_engine,
)
from rollsafe.errors import ConfigError, EngineUnavailable

pytestmark = pytest.mark.db


def rows(dsn: str, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def execute(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def alive(pid: int) -> bool:
    """True while a process exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (the postmaster's backends and workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


@pytest.fixture(scope="module")
def local_pg() -> Iterator[PostgresServer]:
    """An embedded PostgreSQL of this module's own (whatever engine the session uses)."""
    with ephemeral_server("postgres") as server:
        assert isinstance(server, PostgresServer)
        yield server


# -- the embedded PostgreSQL ---------------------------------------------------------------------


def test_postgres_listens_on_its_socket_only_with_throwaway_settings(
    local_pg: PostgresServer,
) -> None:
    settings = dict(
        rows(
            local_pg.admin_dsn,
            "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', "
            "'unix_socket_directories', 'fsync', 'synchronous_commit', 'full_page_writes')",
        )
    )
    assert settings == {
        "listen_addresses": "",
        "unix_socket_directories": str(local_pg.folder),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the root path: run the suite as root")
def test_as_root_the_server_runs_as_an_unprivileged_account(local_pg: PostgresServer) -> None:
    account = pwd.getpwnam(local_pg.account)
    assert local_pg.account in _postgres.SERVER_ACCOUNTS
    assert account.pw_uid != 0
    assert uid_of(local_pg.pid) == account.pw_uid
    assert local_pg.folder.stat().st_uid == account.pw_uid
    assert (local_pg.folder / "data").stat().st_uid == account.pw_uid
    # No account was created for it.
    assert [p.pw_name for p in pwd.getpwall()].count(local_pg.account) == 1


def test_tcp_is_opened_only_when_asked() -> None:
    with ephemeral_server("postgres", tcp=True) as server:
        assert isinstance(server, PostgresServer)
        over_tcp = psycopg.conninfo.make_conninfo(
            server.admin_dsn, host="127.0.0.1", port=server.port
        )
        assert rows(over_tcp, "SELECT current_setting('listen_addresses')") == [("127.0.0.1",)]


def test_databases_are_created_and_dropped(pg_server: Server) -> None:
    first, second = pg_server.create_database(), pg_server.create_database()
    assert first.name != second.name
    assert rows(first.dsn, "SELECT current_database()") == [(first.name,)]
    holder = psycopg.connect(first.dsn)  # an open session must not block the drop
    try:
        pg_server.drop(first)
    finally:
        holder.close()
    pg_server.drop(second)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(first.dsn).close()


def test_snapshot_and_clone_copy_schema_and_rows_without_replay(pg_server: Server) -> None:
    source = pg_server.create_database()
    try:
        with psycopg.connect(source.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE machines (id int PRIMARY KEY, host text)")
            conn.execute("INSERT INTO machines VALUES (1, 'a'), (2, 'b')")
        holder = psycopg.connect(source.dsn)  # left open: the snapshot must still work
        snapshot = pg_server.snapshot(source, "at_v1")
        holder.close()
        first = pg_server.clone(snapshot)
        execute(first.dsn, "DELETE FROM machines")
        second = pg_server.clone(snapshot)
        assert rows(second.dsn, "SELECT id, host FROM machines ORDER BY id") == [
            (1, "a"),
            (2, "b"),
        ]
        assert rows(first.dsn, "SELECT count(*) FROM machines") == [(0,)]
        if pg_server.flavor == "postgres":
            with pytest.raises(psycopg.OperationalError, match="not currently accepting"):
                psycopg.connect(first.dsn.replace(first.name, snapshot.name)).close()
        for db in (first, second, snapshot):
            pg_server.drop(db)
    finally:
        pg_server.drop(source)


def test_the_snapshot_is_a_database_that_clones_come_from(pg_server: Server) -> None:
    source = pg_server.create_database()
    snapshot = pg_server.snapshot(source, "frozen")
    try:
        assert isinstance(snapshot, Snapshot)
        assert snapshot.source == source.name
        clone = pg_server.clone(snapshot, "copy_of_frozen")
        assert clone.name.startswith("copy_of_frozen")
        pg_server.drop(clone)
    finally:
        pg_server.drop(snapshot)
        pg_server.drop(source)


# -- cleanup -----------------------------------------------------------------------------------


def test_nothing_is_left_after_an_exception() -> None:
    seen: dict[str, Any] = {}
    with pytest.raises(RuntimeError, match="boom"), ephemeral_server("postgres") as server:
        assert isinstance(server, PostgresServer)
        db = server.create_database()
        held = psycopg.connect(db.dsn)  # a backend process, and a client that never closes
        seen.update(pid=server.pid, folder=server.folder, children=children(server.pid))
        assert seen["children"], "the postmaster has workers and a backend"
        raise RuntimeError("boom")
    held.close()
    assert not seen["folder"].exists()
    assert not alive(seen["pid"])
    assert [pid for pid in seen["children"] if alive(pid)] == []


CHILD = """
import json, signal, sys, time
# A job started in the background by a non-interactive shell (as CI runners do)
# inherits SIGINT ignored, and Python then keeps it ignored: restore Ctrl-C.
signal.signal(signal.SIGINT, signal.default_int_handler)
from rollsafe.engines import ephemeral_server
with ephemeral_server("postgres") as server:
    print(json.dumps({"pid": server.pid, "folder": str(server.folder)}), flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_nothing_is_left_after_ctrl_c_or_sigterm(sig: signal.Signals) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    started = json.loads(child.stdout.readline())
    workers = children(started["pid"])
    assert alive(started["pid"]) and Path(started["folder"]).is_dir()
    child.send_signal(sig)
    try:
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:  # never leave the child (and its server) behind
            child.kill()
            child.communicate()
    assert child.returncode != 0
    assert not Path(started["folder"]).exists()
    assert not alive(started["pid"])
    assert [pid for pid in workers if alive(pid)] == []


def test_a_missing_engine_is_one_line_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent = _postgres.temp_parent()
    before = set(parent.glob("rollsafe-pg-*"))
    monkeypatch.setattr(_postgres, "find_postgres_bindir", lambda: None)
    with pytest.raises(EngineUnavailable) as caught, ephemeral_server("postgres"):
        pass
    message = str(caught.value)
    assert "\n" not in message
    assert "apt-get install postgresql" in message
    assert "pip install 'rollsafe[pgserver]'" in message
    assert set(parent.glob("rollsafe-pg-*")) == before


def test_the_postgres_binaries_are_found() -> None:
    folder = _postgres.find_postgres_bindir()
    assert folder is not None
    assert (folder / "initdb").is_file() and (folder / "postgres").is_file()


# -- selection ---------------------------------------------------------------------------------


def test_auto_prefers_cockroach_when_its_binary_is_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resolve_engine("auto") == "postgres"
    binary = tmp_path / "cockroach"
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(0o755)
    assert resolve_engine("auto") == "cockroach"
    assert resolve_engine("postgres") == "postgres"


def test_the_environment_chooses_when_the_argument_is_auto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENGINE_ENV, "external")
    assert resolve_engine("auto") == "external"
    assert resolve_engine("postgres") == "postgres"
    monkeypatch.setenv(ENGINE_ENV, "oracle")
    with pytest.raises(ConfigError, match=r"ROLLSAFE_ENGINE: unknown engine `oracle`"):
        resolve_engine()


def test_external_needs_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    with (
        pytest.raises(EngineUnavailable, match="ROLLSAFE_DATABASE_URL"),
        ephemeral_server("external"),
    ):
        pass


def test_external_runners_share_one_cluster_and_clean_up(
    local_pg: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, local_pg.admin_dsn)
    with ephemeral_server("external") as first, ephemeral_server("external") as second:
        assert first.kind == second.kind == "external"
        assert first.flavor == "postgres"
        one, two = first.create_database("pair"), second.create_database("pair")
        assert one.name != two.name and one.name.startswith("pair_")
        snapshot = first.snapshot(one, "snap")
        clone = first.clone(snapshot)
        names = {one.name, two.name, snapshot.name, clone.name}
        existing = {r[0] for r in rows(local_pg.admin_dsn, "SELECT datname FROM pg_database")}
        assert names <= existing
    existing = {r[0] for r in rows(local_pg.admin_dsn, "SELECT datname FROM pg_database")}
    assert names.isdisjoint(existing)


def test_a_database_name_postgres_would_truncate_is_refused(local_pg: PostgresServer) -> None:
    with pytest.raises(ConfigError, match="longer than 63 bytes"):
        local_pg.create_database("x" * 80)


# -- CockroachDB -------------------------------------------------------------------------------


def test_cockroach_snapshots_are_backups_restored_as_clones(cockroach_server: Server) -> None:
    assert cockroach_server.kind == "cockroach"
    source = cockroach_server.create_database()
    execute(source.dsn, "CREATE TABLE machines (id INT PRIMARY KEY, host STRING)")
    execute(source.dsn, "INSERT INTO machines VALUES (1, 'a')")
    snapshot = cockroach_server.snapshot(source, "at_v1")
    assert snapshot.location is not None
    clone = cockroach_server.clone(snapshot)
    assert rows(clone.dsn, "SELECT id, host FROM machines") == [(1, "a")]
    for db in (clone, snapshot, source):
        cockroach_server.drop(db)


# -- interruptions: during initdb, a second signal during cleanup, kill -9 -------------------------

LOOP_CHILD = """
import json, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from rollsafe.engines import ephemeral_server
for _ in range(int(sys.argv[1])):
    try:
        with ephemeral_server("postgres") as server:
            print(json.dumps({"pid": server.pid, "folder": str(server.folder)}), flush=True)
            time.sleep(60)
    except KeyboardInterrupt:
        print("cleaned", flush=True)
"""

RUNS = 10


def initdb_of(pid: int) -> int | None:
    """The initdb process a child runs right now, or None."""
    for child in children(pid):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/comm").read_text().strip() == "initdb":
                return child
    return None


def in_folder(folder: str) -> list[int]:
    """Live processes whose command line names the folder (a server, initdb, a backend)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if folder.encode() in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
    return found


class Leaks:
    """What the interrupted runs left: folders, processes and shared-memory segments."""

    def __init__(self) -> None:
        self.runs = 0
        self.hit_initdb = 0
        self.left: list[str] = []
        self.seen: list[tuple[str, set[int], set[Path]]] = []

    def check(self, folder: str, pids: set[int], segments: set[Path]) -> None:
        self.runs += 1
        self.seen.append((folder, pids, segments))
        self._look(folder, pids, segments)

    def final(self) -> list[str]:
        """Everything left, looked at again after the last run (an orphan may write late)."""
        for folder, pids, segments in self.seen:
            self._look(folder, pids, segments)
        return sorted(set(self.left))

    def _look(self, folder: str, pids: set[int], segments: set[Path]) -> None:
        if Path(folder).exists():
            self.left.append(f"folder {folder}")
        self.left += [f"process {pid}" for pid in sorted(pids) if alive(pid)]
        self.left += [f"process {pid} in {folder}" for pid in in_folder(folder)]
        self.left += [f"segment {s}" for s in sorted(segments) if s.exists()]


def watched(pgid: int) -> tuple[set[int], set[Path]]:
    members = set(_processes.group_members(pgid))
    return members, _processes.segments_of(sorted(members))


def loop_child(runs: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LOOP_CHILD, str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Children:
    """The loop children of one test: a new one when a late signal ended the last.

    A second signal that lands just after the cleanup finished meets the
    default handlers again and ends the child, as it would end any program;
    the cleanup was done by then, so the runs go on in a new child.
    """

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def current(self, runs_left: int) -> subprocess.Popen[str]:
        if not self.started or self.started[-1].poll() is not None:
            self.started.append(loop_child(runs_left))
        return self.started[-1]

    def finish(self) -> None:
        for child in self.started:
            try:
                child.communicate(timeout=60)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.communicate()


def until_cleaned(child: subprocess.Popen[str]) -> None:
    """Wait for the child's ``cleaned``, or for the second signal to end it.

    A second signal that lands after the cleanup restored the handlers, but
    before the child printed ``cleaned``, ends it as it ends any program
    (SIGTERM's default action, or an uncaught KeyboardInterrupt).  That is no
    failure of the cleanup: the leak check that follows tells whether the
    cleanup was done.  Any other end (a traceback, exit 1) is a failure.
    """
    assert child.stdout is not None
    while (line := child.stdout.readline()) and line.strip() != "cleaned":
        pass
    if not line:
        child.wait(timeout=60)
        assert child.returncode in (-signal.SIGTERM, -signal.SIGINT), (
            f"the child ended with {child.returncode} instead of cleaning up"
        )


def next_server(kids: Children, runs_left: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """The next server a loop child started, and that child.

    The previous run's second signal may land after its cleanup finished:
    it then ends the child (a new child takes over) or interrupts the next
    start, which cleans up and says ``cleaned`` again; either way the next
    line with a server is the one this run signals.
    """
    for _ in range(5):
        child = kids.current(runs_left)
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            child.wait(timeout=60)
            continue
        if line.strip() != "cleaned":
            started: dict[str, Any] = json.loads(line)
            return child, started
    raise AssertionError("no loop child started a server in five tries")


#: Alternated over the runs of one timing: SIGINT and SIGTERM in every order.
FIRST = (signal.SIGINT, signal.SIGTERM)
SECOND = (signal.SIGTERM, signal.SIGINT, signal.SIGINT, signal.SIGTERM)


@pytest.mark.parametrize("count", [1, 2], ids=["one signal", "two signals"])
def test_an_interrupt_during_initdb_leaves_nothing(count: int) -> None:
    """RUNS times each: 0-360 ms into initdb, a second signal 1-20 ms after the first."""
    leaks = Leaks()
    kids = Children()
    try:
        for run in range(RUNS):
            child = kids.current(RUNS - run)
            initdb, folder = None, ""
            while initdb is None:
                child = kids.current(RUNS - run)
                initdb = initdb_of(child.pid)
                try:
                    folder = str(Path(f"/proc/{initdb}/cwd").readlink())
                except OSError:  # gone already: the next run's initdb is the one
                    initdb = None
                    time.sleep(0.002)
            time.sleep(run * 0.04)
            pids, segments = watched(initdb)
            leaks.hit_initdb += alive(initdb)
            child.send_signal(FIRST[run % 2])
            if count == 2:
                time.sleep(0.001 + run * 0.002)
                more, mapped = watched(initdb)
                child.send_signal(SECOND[run % 4])
                pids, segments = pids | more, segments | mapped
            until_cleaned(child)
            leaks.check(folder, pids, segments)
    finally:
        kids.finish()
    assert leaks.runs == RUNS and leaks.hit_initdb >= RUNS // 2
    assert leaks.final() == []


def test_a_second_signal_during_cleanup_leaves_nothing() -> None:
    """The server runs; a signal, then another 1-20 ms later, in the middle of its cleanup."""
    leaks = Leaks()
    kids = Children()
    try:
        for run in range(RUNS):
            child, started = next_server(kids, RUNS - run)
            pids, segments = watched(started["pid"])
            child.send_signal(FIRST[run % 2])
            time.sleep(0.001 + run * 0.002)
            child.send_signal(SECOND[run % 4])
            until_cleaned(child)
            leaks.check(started["folder"], pids | {started["pid"]}, segments)
    finally:
        kids.finish()
    assert leaks.runs == RUNS
    assert leaks.final() == []


def test_a_running_server_keeps_no_shared_memory_outside_its_folder(
    local_pg: PostgresServer,
) -> None:
    with psycopg.connect(local_pg.admin_dsn) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        processes = [local_pg.pid, *children(local_pg.pid)]
        assert _processes.segments_of(processes) == set()


def test_after_kill_9_the_next_run_removes_the_stale_server_and_folder() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    try:
        started = json.loads(child.stdout.readline())
        workers = children(started["pid"])
    finally:
        child.kill()  # nothing can clean up after SIGKILL: the server and its folder stay
        child.communicate()
    assert alive(started["pid"]) and Path(started["folder"]).is_dir()
    with ephemeral_server("postgres") as server:
        assert isinstance(server, PostgresServer)
        assert not Path(started["folder"]).exists()
        assert not alive(started["pid"])
        assert [pid for pid in workers if alive(pid)] == []
        assert server.folder.is_dir()  # the run itself is not disturbed
